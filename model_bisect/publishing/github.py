"""Keep one sticky comment on a tracking issue current, through ghapi.

ghapi 2.x (checked in its source): a client made with ``sync=True`` returns results
instead of coroutines; it reads ``GITHUB_TOKEN`` but never ``GH_TOKEN``, so the token is
passed explicitly; ``gh_host`` is a full base URL; HTTP failures surface as
``fasttransport.errors.APIError`` carrying ``status_code`` and the httpx2 ``response``,
whose ``request`` still holds the Authorization header. That error is therefore reduced
to status, headers and GitHub's message inside the ``except`` block and never chained.

Nothing a server sends is trusted: an answer of the wrong shape (HTML from a proxy, JSON that
is not a comment), a ``Retry-After`` of ``nan``, ``inf`` or ``-1``, an endless ``Link: next``
chain, each ends as one ``PublishError`` line or a bounded wait, never a traceback or a hang.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from ..errors import PublishError, UsageError, first_line
from .comment import GITHUB_COMMENT_LIMIT, marker
from .redact import mask_error, redact

__all__ = [
    "ACTIONS_BOT",
    "DEFAULT_API_URL",
    "MAX_PAGES",
    "Compose",
    "PublishResult",
    "check_api_url",
    "check_repo",
    "check_token",
    "publish_comment",
    "resolve_token",
    "shown_url",
]

DEFAULT_API_URL = "https://api.github.com"
ACTIONS_BOT = "github-actions[bot]"  # who the Actions token comments as; it cannot read /user
PER_PAGE = 100  # GitHub's maximum page size for listings
MAX_WAIT = 60.0  # cap on one wait, even when Retry-After or the rate-limit reset asks for more
BACKOFF = 1.0  # first 5xx backoff; doubles per attempt
MAX_PAGES = 200  # 20,000 comments: a server whose `next` never ends cannot keep us listing

# GitHub's own rules for names: an owner (user or organisation) is alphanumerics and single
# hyphens, neither first nor last, at most 39 characters; a repository is letters, digits,
# `.`, `_`, `-`, at most 100 characters, and never `.` or `..` (which would climb the URL).
_OWNER = re.compile(r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}")
_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
# A token is sent in an HTTP header: printable ASCII without spaces, or httpx refuses it with
# a message that quotes the header, token and all.
_TOKEN = re.compile(r"[!-~]+")


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


def check_repo(repo: str, source: str = "--repo") -> tuple[str, str]:
    """``OWNER/NAME`` split in two, or a UsageError naming ``source``: a name GitHub could
    not have (``../..``, ``a/b/c``, spaces) would otherwise send the request elsewhere."""
    owner, slash, name = repo.partition("/")
    if slash and _OWNER.fullmatch(owner) and _NAME.fullmatch(name) and name not in (".", ".."):
        return owner, name
    shown = repr(repo) if len(repo) <= 80 else repr(repo[:77]) + "..."
    raise UsageError(
        f"invalid repository {shown}",
        source,
        "use OWNER/NAME: the owner is letters, digits and single inner hyphens (at most 39),"
        " the name letters, digits, '.', '_', '-' (at most 100, not '.' or '..')",
    )


def shown_url(url: str) -> str:
    """``url`` fit to show: any user name or password in it replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unparsable URL)"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"***@{host}").geturl()


def check_api_url(url: str, source: str = "--api-url") -> str:
    """The API base without a trailing slash, or a UsageError that never shows credentials.

    Credentials in the URL are refused rather than used: the token travels in its header,
    and a password in a URL ends up in logs and messages.
    """
    fix = "pass an http(s) base URL such as https://api.github.com or https://HOST/api/v3"
    if any(ord(c) <= 32 or ord(c) == 127 for c in url):
        raise UsageError("the API URL holds spaces or control characters", source, fix)
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError:
        raise UsageError(f"unparsable API URL {shown_url(url)!r}", source, fix) from None
    if "@" in parts.netloc:
        raise UsageError(
            f"the API URL {shown_url(url)!r} carries a user name or password",
            source,
            "drop it from the URL; the token comes from GH_TOKEN or GITHUB_TOKEN",
        )
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise UsageError(f"not an http(s) API URL: {shown_url(url)!r}", source, fix)
    if parts.query or parts.fragment:
        raise UsageError(f"the API URL {shown_url(url)!r} has a query or fragment", source, fix)
    return url.rstrip("/")


def check_token(token: str) -> None:
    """A token that cannot be an HTTP header value is refused without being shown."""
    if not _TOKEN.fullmatch(token):
        raise UsageError(
            "the token holds spaces, control or non-ASCII characters",
            "GH_TOKEN / GITHUB_TOKEN",
            "set it to the token alone, without quotes or line breaks",
        )


def _retry_delay(failure: _Failure, attempt: int, now: float) -> float | None:
    """Seconds to wait before retrying, or None when retrying cannot help.

    GitHub signals rate limits as 403 or 429 with ``Retry-After`` (secondary limits) or
    ``x-ratelimit-remaining: 0`` plus ``x-ratelimit-reset`` (primary limit, epoch seconds).
    """
    headers = {k.lower(): v for k, v in failure.headers.items()}
    status = failure.status
    retry_after = _retry_after(headers.get("retry-after"), now)
    if status is None:
        return None  # transport failures: ghapi's transport already retried the connection
    if (status >= 500 or status in (403, 429)) and retry_after is not None:
        return min(retry_after, MAX_WAIT)
    if status in (403, 429):
        reset = _number(headers.get("x-ratelimit-reset"))
        if headers.get("x-ratelimit-remaining") == "0" and reset is not None:
            return min(max(reset - now, 1.0), MAX_WAIT)
        if status == 429 or "rate limit" in failure.message.lower():
            return min(BACKOFF * 2.0**attempt, MAX_WAIT)
        return None
    return min(BACKOFF * 2.0**attempt, MAX_WAIT) if status >= 500 else None


def _number(text: str | None) -> float | None:
    """A finite number from a header, else None: ``nan``, ``inf`` and junk count as absent,
    so a header can neither crash ``time.sleep`` nor make it wait forever."""
    try:
        value = None if text is None else float(text)
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _retry_after(text: str | None, now: float) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), None when absent, negative
    or unusable; the caller caps it at MAX_WAIT."""
    seconds = _number(text)
    if seconds is None and text:
        try:
            seconds = parsedate_to_datetime(text).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            seconds = None
    return seconds if seconds is not None and seconds >= 0 else None


def _shape_error(what: str, expected: str, got: Any) -> PublishError:
    kind = "an HTML page" if isinstance(got, str) and "<" in got[:200] else type(got).__name__
    return PublishError(
        f"unexpected answer while trying to {what}: expected {expected}, got {kind}",
        None,
        "check --api-url / GITHUB_API_URL: it must be the GitHub REST API, not a web page or proxy",
    )


def _is_list(value: Any) -> bool:
    """ghapi turns JSON arrays into fastcore ``L``, which is no ``list``: test the behaviour."""
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping))


def _comment(value: Any, what: str) -> Mapping[str, Any]:
    """A comment as GitHub sends it: a positive integer id, a string (or null) body, a user
    object with a string login; anything else is a server we must not act on."""
    if not isinstance(value, Mapping):
        raise _shape_error(what, "a comment object", value)
    ident, body, user = value.get("id"), value.get("body"), value.get("user")
    login = user.get("login") if isinstance(user, Mapping) else None
    if (
        type(ident) is not int
        or ident < 1
        or not isinstance(body, (str, type(None)))
        or not isinstance(user, (Mapping, type(None)))
        or not isinstance(login, (str, type(None)))
        or not isinstance(value.get("created_at"), (str, type(None)))
    ):
        raise PublishError(
            f"unexpected answer while trying to {what}: a comment without a numeric id,"
            " a text body or a user login",
            None,
            "check --api-url / GITHUB_API_URL: it must be the GitHub REST API",
        )
    url = value.get("html_url")
    return value if isinstance(url, (str, type(None))) else {**value, "html_url": None}


def _has_next(link: str) -> bool:
    """Whether an RFC 8288 ``Link`` header has a ``rel="next"``; junk reads as no link."""
    for rel in re.findall(r';\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))', link):
        if "next" in " ".join(rel).split():
            return True
    return False


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
        from ghapi.core import GhApi  # ghapi.all adds actions, auth, pages, events: unused

        factory: Any = GhApi  # ghapi ships py.typed but its functions are unannotated

        self.owner, self.name = check_repo(repo)
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
        expect: Callable[[Any, str], Any] = lambda value, what: value,
        **kwargs: Any,
    ) -> Any:
        """``fn(owner, repo, **kwargs)`` with retries; ``on_failure`` may turn a refusal into a
        value (anything but None) instead of an error; ``expect`` checks the answer's shape."""
        for attempt in range(self.max_retries + 1):
            outcome = self._attempt(what, fn, kwargs)
            if not isinstance(outcome, _Failure):
                return expect(outcome[0], what)
            handled = on_failure(outcome)
            if handled is not None:
                return handled
            delay = _retry_delay(outcome, attempt, time.time())
            if delay is None or attempt == self.max_retries:
                raise self._error(what, outcome, attempt + 1)
            self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(
        self, what: str, fn: Callable[..., Any], kwargs: dict[str, Any]
    ) -> tuple[Any] | _Failure:
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
        except Exception as exc:  # third-party code meeting a hostile server
            # A 2xx answer ghapi cannot decode (JSON that does not parse, a bad header): not
            # chained, since httpx messages can quote the request and so the token.
            said = self._scrub(f"{type(exc).__name__}: {first_line(exc)}")
            raise PublishError(
                f"unreadable answer from {self._shown_api()} while trying to {what} ({said})",
                None,
                "check --api-url / GITHUB_API_URL: it must be the GitHub REST API",
            ) from None

    def _scrub(self, text: str) -> str:
        """GitHub's message, one line, short, and without the token should a server echo it."""
        text = " ".join(mask_error(redact(text, (self._token,)), (self._token,)).split())
        return text[:200]

    def _shown_api(self) -> str:
        """The API URL for a message: no credentials, and no token even in its path."""
        return mask_error(shown_url(self.api_url), (self._token,))

    def _error(self, what: str, failure: _Failure, attempts: int) -> PublishError:
        api, repo, said = (
            self._shown_api(),
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
        if failure.status == 403 and "locked" in failure.message.lower():
            return PublishError(
                f"403: issue {self.issue} in {repo} is locked, so its comments cannot change{said}",
                None,
                "unlock the conversation on GitHub, or point --issue at an open tracking issue",
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

        def login(value: Any, what: str) -> str:
            name = value.get("login") if isinstance(value, Mapping) else None
            if not isinstance(name, str) or not name:
                raise _shape_error(what, "a user object with a login", value)
            return name

        user: str = self.call(
            "read the authenticated user",
            lambda owner, repo: self.api.users.get_authenticated(),
            on_failure=actions_token,
            expect=login,
        )
        return user

    def comments(self) -> list[Any]:
        """Every comment of the issue, following the Link header's `next` page by page, at
        most MAX_PAGES pages."""
        what = f"list the comments of {self.repo}#{self.issue}"

        def page_of_comments(value: Any, what: str) -> list[Mapping[str, Any]]:
            if value is None:
                return []
            if not _is_list(value):
                raise _shape_error(what, "a list of comments", value)
            return [_comment(item, what) for item in value]

        found: list[Mapping[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            batch = self.call(
                what,
                self.api.issues.list_comments,
                expect=page_of_comments,
                issue_number=self.issue,
                per_page=PER_PAGE,
                page=page,
            )
            found.extend(batch)
            link = self.api.recv_hdrs.get("Link")
            has_next = _has_next(str(link)) if link else len(batch) == PER_PAGE
            if not batch or not has_next:
                return found
        raise PublishError(
            f"the issue's comments run past {MAX_PAGES} pages of {PER_PAGE} while trying to {what}",
            None,
            "check --api-url / GITHUB_API_URL, or use a fresh tracking issue",
        )


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
    check_repo(repo)
    check_token(token)
    client = _Client(
        repo=repo,
        issue=issue,
        token=token,
        api_url=check_api_url(api_url or DEFAULT_API_URL),
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
            f"comment on {repo}#{issue}",
            issues.create_comment,
            expect=_comment,
            issue_number=issue,
            body=body,
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
            expect=_comment,
        )
        if edited is _GONE:  # deleted by someone between listing and editing: start afresh
            created = client.call(
                f"comment on {repo}#{issue}",
                issues.create_comment,
                expect=_comment,
                issue_number=issue,
                body=body,
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
