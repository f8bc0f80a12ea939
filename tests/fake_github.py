"""A stateful fake of the GitHub REST API's issue comments, served on loopback.

Real HTTP through ghapi reaches it, so tests exercise the same client code as production:
pagination by ``per_page``/``page`` with RFC 5988 ``Link`` headers, the token check, ``/user``
(or the Actions token's 403), the 65,536-character body limit, locked issues, and injectable
faults: any status, headers (``Retry-After: nan``), body and content type, so a 200 with an
HTML page or with JSON of the wrong shape can be served, and a ``Link: next`` that never ends.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

__all__ = ["BODY_LIMIT", "FakeGitHub", "fake_github"]

BODY_LIMIT = 65536
_COMMENTS = re.compile(r"/repos/([^/]+/[^/]+)/issues/(\d+)/comments")
_COMMENT = re.compile(r"/repos/([^/]+/[^/]+)/issues/comments/(\d+)")
_REASONS = {401: "Bad credentials", 403: "Forbidden", 404: "Not Found", 422: "Validation Failed"}
LOCKED_MESSAGE = "Unable to create comment because issue is locked."  # GitHub's words


@dataclass(frozen=True)
class _Fault:
    status: int
    headers: dict[str, str]
    body: str | None
    method: str | None
    content_type: str


@dataclass
class _State:
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> comment
    issues: set[tuple[str, int]] = field(default_factory=set)
    locked: set[tuple[str, int]] = field(default_factory=set)
    faults: list[_Fault] = field(default_factory=list)
    next_id: int = 1000
    clock: int = 0


class FakeGitHub:
    """The issue-comments corner of GitHub, with state a test can seed and inspect."""

    def __init__(
        self,
        *,
        token: str = "ghp_fake_token_for_tests",
        login: str = "nightly-bot",
        integration: bool = False,
        issues: Iterable[tuple[str, int]] = (("acme/models", 1),),
    ) -> None:
        self.token = token
        self.login = login
        self.integration = integration
        self.endless_pages = False  # every listing page claims a `next` one
        self.requests: list[tuple[str, str]] = []
        self._state = _State(issues=set(issues))
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- what tests use -------------------------------------------------------------------

    @property
    def identity(self) -> str:
        """Who comments made through the API are attributed to."""
        return "github-actions[bot]" if self.integration else self.login

    def seed_comment(self, repo: str, issue: int, body: str, login: str) -> int:
        with self._lock:
            self._state.issues.add((repo, issue))
            return self._add(repo, issue, body, login)["id"]  # type: ignore[no-any-return]

    def comments(self, repo: str, issue: int) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(c)
                for c in self._state.comments.values()
                if c["_repo"] == repo and c["_issue"] == issue
            ]

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: str | None = None,
        method: str | None = None,
        content_type: str = "application/json; charset=utf-8",
    ) -> None:
        """Answer the next ``times`` requests (only those with ``method``, when given) with
        ``status`` instead; ``body`` defaults to GitHub's JSON ``{"message": ...}``. A 200
        with an HTML ``body`` and ``content_type="text/html"`` is a captive portal or proxy."""
        with self._lock:
            fault = _Fault(
                status, dict(headers or {}), body, method and method.upper(), content_type
            )
            self._state.faults.extend([fault] * times)

    def lock(self, repo: str, issue: int) -> None:
        """Lock the conversation: creating or editing its comments is refused with a 403."""
        with self._lock:
            self._state.issues.add((repo, issue))
            self._state.locked.add((repo, issue))

    def count(self, method: str, path_prefix: str = "") -> int:
        return sum(1 for m, p in self.requests if m == method and p.startswith(path_prefix))

    def __enter__(self) -> FakeGitHub:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- the server side ------------------------------------------------------------------

    def _add(self, repo: str, issue: int, body: str, login: str) -> dict[str, Any]:
        state = self._state
        state.next_id += 1
        state.clock += 1
        stamp = f"2026-01-01T00:{state.clock // 60 % 60:02d}:{state.clock % 60:02d}Z"
        comment = {
            "id": state.next_id,
            "body": body,
            "user": {"login": login, "type": "Bot" if login.endswith("[bot]") else "User"},
            "created_at": stamp,
            "updated_at": stamp,
            "html_url": f"https://github.com/{repo}/issues/{issue}#issuecomment-{state.next_id}",
            "_repo": repo,
            "_issue": issue,
        }
        state.comments[state.next_id] = comment
        return comment

    def _handle(
        self, method: str, path: str, query: dict[str, list[str]], auth: str | None, data: bytes
    ) -> tuple[int, dict[str, str], Any, str]:
        with self._lock:
            self.requests.append((method, path))
            fault = next((f for f in self._state.faults if f.method in (None, method)), None)
            if fault is not None:
                self._state.faults.remove(fault)
                body = fault.body
                if body is None:
                    body = json.dumps({"message": _REASONS.get(fault.status, "Server Error")})
                return fault.status, fault.headers, body, fault.content_type
            return (*self._answer(method, path, query, auth, data), _JSON)

    def _answer(
        self, method: str, path: str, query: dict[str, list[str]], auth: str | None, data: bytes
    ) -> tuple[int, dict[str, str], Any]:
        """The stateful part; the caller holds the lock."""
        if auth not in (f"token {self.token}", f"Bearer {self.token}"):
            return 401, {}, {"message": "Bad credentials"}
        if method == "GET" and path == "/user":
            if self.integration:
                return 403, {}, {"message": "Resource not accessible by integration"}
            return 200, {}, {"login": self.login, "id": 1, "type": "User"}
        if match := _COMMENTS.fullmatch(path):
            repo, issue = match[1], int(match[2])
            if (repo, issue) not in self._state.issues:
                return 404, {}, {"message": "Not Found"}
            if method == "GET":
                return self._list(repo, issue, query, path)
            if method == "POST" and (repo, issue) in self._state.locked:
                return 403, {}, {"message": LOCKED_MESSAGE}
            if method == "POST":
                text = _body_of(data)
                if text is None or len(text) > BODY_LIMIT:
                    return 422, {}, _too_long()
                return 201, {}, _public(self._add(repo, issue, text, self.identity))
        if match := _COMMENT.fullmatch(path):
            comment = self._state.comments.get(int(match[2]))
            if comment is None or comment["_repo"] != match[1]:
                return 404, {}, {"message": "Not Found"}
            locked = (comment["_repo"], comment["_issue"]) in self._state.locked
            if method in ("PATCH", "DELETE") and locked:
                return 403, {}, {"message": LOCKED_MESSAGE}
            if method == "PATCH":
                text = _body_of(data)
                if text is None or len(text) > BODY_LIMIT:
                    return 422, {}, _too_long()
                self._state.clock += 1
                comment["body"] = text
                return 200, {}, _public(comment)
            if method == "DELETE":
                del self._state.comments[comment["id"]]
                return 204, {}, None
        return 404, {}, {"message": "Not Found"}

    def _list(
        self, repo: str, issue: int, query: dict[str, list[str]], path: str
    ) -> tuple[int, dict[str, str], Any]:
        per_page = min(max(int(query.get("per_page", ["30"])[0]), 1), 100)
        page = max(int(query.get("page", ["1"])[0]), 1)
        items = [
            _public(c)
            for c in self._state.comments.values()
            if c["_repo"] == repo and c["_issue"] == issue
        ]
        last = max((len(items) + per_page - 1) // per_page, 1)
        links = []
        url = f"{self.url}{path}?per_page={per_page}&page="
        if page < last or self.endless_pages:
            links += [f'<{url}{page + 1}>; rel="next"', f'<{url}{last}>; rel="last"']
        if page > 1:
            links += [f'<{url}1>; rel="first"', f'<{url}{page - 1}>; rel="prev"']
        headers = {"Link": ", ".join(links)} if links else {}
        if self.endless_pages:  # past the end, the last page again, and `next` once more
            page = min(page, last)
        return 200, headers, items[(page - 1) * per_page : page * per_page]


_JSON = "application/json; charset=utf-8"


def _public(comment: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in comment.items() if not k.startswith("_")}


def _body_of(data: bytes) -> str | None:
    try:
        payload = json.loads(data or b"{}")
    except ValueError:
        return None
    body = payload.get("body") if isinstance(payload, dict) else None
    return body if isinstance(body, str) else None


def _too_long() -> dict[str, Any]:
    return {
        "message": "Validation Failed",
        "errors": [
            {
                "resource": "IssueComment",
                "code": "custom",
                "field": "body",
                "message": "body is too long (maximum is 65536 characters)",
            }
        ],
    }


class _Handler(BaseHTTPRequestHandler):
    owner: FakeGitHub

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        status, headers, payload, content_type = self.owner._handle(
            self.command, parts.path, parse_qs(parts.query), self.headers.get("Authorization"), data
        )
        raw = (
            b""
            if payload is None
            else (payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
        )
        self.send_response(status)
        if raw:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if raw:
            self.wfile.write(raw)

    do_GET = do_POST = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest output is for failures."""


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake
