"""Keep one sticky comment on a tracking issue current, through ghapi.

ghapi 2.x (checked in its source): a client made with ``sync=True`` returns results
instead of coroutines; it reads ``GITHUB_TOKEN`` but never ``GH_TOKEN``, so the token is
passed explicitly; ``gh_host`` is a full base URL; HTTP failures surface as
``fasttransport.errors.APIError`` carrying ``status_code`` and the httpx2 ``response``,
whose ``request`` still holds the Authorization header. That error is therefore reduced
to status, headers and GitHub's message inside the ``except`` block and never chained.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .comment import GITHUB_COMMENT_LIMIT, marker
from .errors import PublishError, UsageError
from .redact import redact

__all__ = [
    "ACTIONS_BOT",
    "DEFAULT_API_URL",
    "Compose",
    "PublishResult",
    "publish_comment",
    "resolve_token",
]

DEFAULT_API_URL = "https://api.github.com"
ACTIONS_BOT = "github-actions[bot]"  # who the Actions token comments as; it cannot read /user
PER_PAGE = 100  # GitHub's maximum page size for listings
MAX_WAIT = 60.0  # cap on one wait, even when Retry-After or the rate-limit reset asks for more
BACKOFF = 1.0  # first 5xx backoff; doubles per attempt


@dataclass(frozen=True)
class PublishResult:
    """What publishing did; ``deleted`` lists duplicate comments a race had left behind."""

    action: str  # "created" | "updated" | "unchanged"
    comment_id: int
    deleted: tuple[int, ...]
    url: str | None


@dataclass(frozen=True)
class _Failure:
    """An HTTP failure reduced to what is safe to keep: no request, so no token."""

    status: int | None
    headers: Mapping[str, str]
    message: str


def resolve_token(env: Mapping[str, str]) -> str | None:
    """GH_TOKEN (the gh CLI's name) first, else GITHUB_TOKEN (what Actions provides)."""
    for name in ("GH_TOKEN", "GITHUB_TOKEN"):
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def _retry_delay(failure: _Failure, attempt: int, now: float) -> float | None:
    """Seconds to wait before retrying, or None when retrying cannot help.

    GitHub signals rate limits as 403 or 429 with ``Retry-After`` (secondary limits) or
    ``x-ratelimit-remaining: 0`` plus ``x-ratelimit-reset`` (primary limit, epoch seconds).
    """
    headers = {k.lower(): v for k, v in failure.headers.items()}
    status = failure.status
    retry_after = _number(headers.get("retry-after"))
    if status is None:
        return None  # transport failures: ghapi's transport already retried the connection
    if (status >= 500 or status in (403, 429)) and retry_after is not None:
        return min(max(retry_after, 0.0), MAX_WAIT)
    if status in (403, 429):
        reset = _number(headers.get("x-ratelimit-reset"))
        if headers.get("x-ratelimit-remaining") == "0" and reset is not None:
            return min(max(reset - now, 1.0), MAX_WAIT)
        if status == 429 or "rate limit" in failure.message.lower():
            return min(BACKOFF * 2.0**attempt, MAX_WAIT)
        return None
    return min(BACKOFF * 2.0**attempt, MAX_WAIT) if status >= 500 else None


def _number(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


class _Client:
    """ghapi calls with retries, and every failure turned into a PublishError at the border."""

    def __init__(
        self,
        *,
        repo: str,
        issue: int,
        token: str,
        api_url: str,
        max_retries: int,
        sleep: Callable[[float], None],
    ) -> None:
        import httpx2
        from ghapi.all import GhApi

        factory: Any = GhApi  # ghapi ships py.typed but its functions are unannotated

        self.owner, self.name = repo.split("/", 1)
        self.repo, self.issue, self.api_url = repo, issue, api_url
        self._token = token
        self.max_retries, self.sleep = max_retries, sleep
        self.api: Any = factory(token=token, gh_host=api_url, sync=True, timeout=30.0)
        # One connection pool for the whole publish instead of a new client (and TLS
        # handshake) per request, which is what ghapi's transport does unless given one.
        self.api.transport.client = httpx2.Client(timeout=30.0, follow_redirects=True)

    def close(self) -> None:
        self.api.transport.close()

    def call(
        self,
        what: str,
        fn: Callable[..., Any],
        *,
        on_failure: Callable[[_Failure], Any] = lambda failure: None,
        **kwargs: Any,
    ) -> Any:
        """``fn(owner, repo, **kwargs)`` with retries; ``on_failure`` may turn a refusal into a
        value (anything but None) instead of an error."""
        for attempt in range(self.max_retries + 1):
            outcome = self._attempt(fn, kwargs)
            if not isinstance(outcome, _Failure):
                return outcome[0]
            handled = on_failure(outcome)
            if handled is not None:
                return handled
            delay = _retry_delay(outcome, attempt, time.time())
            if delay is None or attempt == self.max_retries:
                raise self._error(what, outcome, attempt + 1)
            self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, fn: Callable[..., Any], kwargs: dict[str, Any]) -> tuple[Any] | _Failure:
        from ghapi.core import APIError  # fasttransport's, re-exported

        try:
            return (fn(owner=self.owner, repo=self.name, **kwargs),)
        except APIError as exc:
            response = exc.response
            headers = {} if response is None else dict(response.headers.items())
            if isinstance(exc.status_code, int):
                return _Failure(exc.status_code, headers, self._scrub(str(exc.message)))
            # Transport failures (refused, timeout): the exception class says enough.
            return _Failure(None, headers, self._scrub(f"{type(exc.raw).__name__}: {exc.message}"))

    def _scrub(self, text: str) -> str:
        """GitHub's message, one line, short, and without the token should a server echo it."""
        text = " ".join(redact(text, (self._token,)).split())
        return text[:200]

    def _error(self, what: str, failure: _Failure, attempts: int) -> PublishError:
        api, repo, said = (
            self.api_url,
            self.repo,
            f" ({failure.message})" if failure.message else "",
        )
        token_fix = "set GH_TOKEN to a token with `issues: write`"
        if failure.status is None:
            return PublishError(
                f"cannot reach {api} while trying to {what}{said}",
                None,
                "check --api-url / GITHUB_API_URL and the network",
            )
        if failure.status == 401:
            return PublishError(
                f"401 Unauthorized from {api}{said}",
                None,
                f"the token is invalid or expired; {token_fix}",
            )
        if failure.status in (403, 429) and _retry_delay(failure, 0, time.time()) is not None:
            return PublishError(
                f"{failure.status} rate limited by {api} after {attempts} attempts{said}",
                None,
                "wait for the rate limit to reset, then publish again",
            )
        if failure.status == 403:
            return PublishError(
                f"403 Forbidden while trying to {what}{said}",
                None,
                f"the token lacks `issues: write` on {repo}; grant it"
                " (in Actions: `permissions: issues: write`)",
            )
        if failure.status == 404:
            return PublishError(
                f"404: issue {self.issue} not found in {repo}, or the token cannot see it",
                None,
                "check --issue and --repo, and that the token can read the repository",
            )
        if failure.status == 422:
            return PublishError(
                f"422 from {api}: GitHub rejected the comment{said}",
                None,
                f"keep the body under {GITHUB_COMMENT_LIMIT:,} characters",
            )
        suffix = f" after {attempts} attempts" if failure.status >= 500 else ""
        return PublishError(
            f"{failure.status} from {api} while trying to {what}{suffix}{said}",
            None,
            "retry later; if it persists, check GitHub's status page",
        )

    def identity(self) -> str:
        """The login our comments carry; the Actions token is refused /user by design."""

        def actions_token(failure: _Failure) -> str | None:
            integration = "not accessible by integration" in failure.message.lower()
            return ACTIONS_BOT if failure.status == 403 and integration else None

        user = self.call(
            "read the authenticated user",
            lambda owner, repo: self.api.users.get_authenticated(),
            on_failure=actions_token,
        )
        return user if isinstance(user, str) else str(user["login"])

    def comments(self) -> list[Any]:
        """Every comment of the issue, following the Link header's `next` page by page."""
        from ghapi.page import parse_link_hdr

        parse_links: Callable[[str], dict[str, Any]] = parse_link_hdr

        found: list[Any] = []
        page = 1
        while True:
            batch = self.call(
                f"list the comments of {self.repo}#{self.issue}",
                self.api.issues.list_comments,
                issue_number=self.issue,
                per_page=PER_PAGE,
                page=page,
            )
            found.extend(batch or [])
            link = self.api.recv_hdrs.get("Link")
            has_next = "next" in parse_links(link) if link else len(batch or []) == PER_PAGE
            if not batch or not has_next:
                return found
            page += 1


Compose = Callable[[str | None], str]  # our comment's current body (None: none yet) -> new body


def publish_comment(
    body: str | Compose,
    *,
    repo: str,
    issue: int,
    token: str,
    api_url: str | None = None,
    marker_key: str = "nightly",
    author: str | None = None,
    max_retries: int = 4,
    sleep: Callable[[float], None] = time.sleep,
) -> PublishResult:
    """Create, edit or leave alone the one comment that starts with the marker.

    Only comments written by the publishing identity count, so a marker pasted by someone
    else is never edited or deleted. The newest is kept; older ones are duplicates from a
    race between two runs and are removed.

    ``body`` may instead be a function of the kept comment's current body (None when there is
    none), so that what the comment remembers is read from our own comment only, found by the
    same listing that decides which comment to edit.
    """
    tag = marker(marker_key)
    if isinstance(body, str):
        _check_body(body, tag)  # before any request
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise UsageError(f"invalid repository {repo!r}", "--repo", "use OWNER/NAME")
    client = _Client(
        repo=repo,
        issue=issue,
        token=token,
        api_url=(api_url or DEFAULT_API_URL).rstrip("/"),
        max_retries=max_retries,
        sleep=sleep,
    )
    compose = _constant(body) if isinstance(body, str) else body
    try:
        return _reconcile(client, compose, tag, author)
    finally:
        client.close()


def _constant(body: str) -> Compose:
    return lambda _current: body


def _check_body(body: str, tag: str) -> None:
    if not body.startswith(tag):
        raise UsageError(
            "the comment body does not start with its marker",
            "publish",
            f"render it with render_markdown/render_wiring_broke or start it with {tag}",
        )
    if len(body) > GITHUB_COMMENT_LIMIT:
        raise PublishError(
            f"the comment body has {len(body):,} characters",
            None,
            f"GitHub accepts at most {GITHUB_COMMENT_LIMIT:,}; render it with a smaller limit",
        )


def _reconcile(client: _Client, compose: Compose, tag: str, author: str | None) -> PublishResult:
    """Make the issue hold exactly one comment of ours with this body, sending the least."""
    repo, issue = client.repo, client.issue
    login = author or client.identity()
    mine = sorted(
        (
            c
            for c in client.comments()
            if str(c.get("body") or "").startswith(tag)
            and str((c.get("user") or {}).get("login", "")).lower() == login.lower()
        ),
        key=lambda c: (str(c.get("created_at") or ""), int(c["id"])),
    )
    body = compose(str(mine[-1].get("body") or "") if mine else None)
    _check_body(body, tag)
    issues = client.api.issues
    if not mine:
        created = client.call(
            f"comment on {repo}#{issue}", issues.create_comment, issue_number=issue, body=body
        )
        return PublishResult("created", int(created["id"]), (), created.get("html_url"))
    keep, duplicates = mine[-1], mine[:-1]
    action, url = "unchanged", keep.get("html_url")
    if keep.get("body") != body:
        edited = client.call(
            f"edit comment {keep['id']} on {repo}#{issue}",
            issues.update_comment,
            comment_id=int(keep["id"]),
            body=body,
            on_failure=_gone,
        )
        if edited is _GONE:  # deleted by someone between listing and editing: start afresh
            created = client.call(
                f"comment on {repo}#{issue}", issues.create_comment, issue_number=issue, body=body
            )
            keep, action, url = created, "created", created.get("html_url")
        else:
            action, url = "updated", edited.get("html_url") or url
    deleted = []
    for dup in duplicates:
        client.call(
            f"delete duplicate comment {dup['id']} on {repo}#{issue}",
            issues.delete_comment,
            comment_id=int(dup["id"]),
            on_failure=_gone,  # another run removed it first: the goal is met
        )
        deleted.append(int(dup["id"]))
    return PublishResult(action, int(keep["id"]), tuple(deleted), url)


_GONE = object()


def _gone(failure: _Failure) -> object | None:
    return _GONE if failure.status == 404 else None
