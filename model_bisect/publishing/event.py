"""Which pull request an Actions run belongs to, read from the event payload GitHub wrote.

The payload is untrusted input (a fork's pull request shapes much of it): it is read only when
it is a regular file of sane size, parsed as JSON, and only ``pull_request.number`` is taken,
checked to be a number GitHub could have given. Standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from ..errors import InputError, first_line
from ..files import BoundedReadError, read_bounded

__all__ = ["MAX_EVENT_BYTES", "PULL_REQUEST_EVENTS", "commit_url_base", "pull_request_number"]

PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")
MAX_EVENT_BYTES = 16 << 20  # a pull request's payload is tens of kilobytes
MAX_NUMBER = 2**31 - 1
_FIX = "run inside a pull_request workflow as GitHub writes it, or pass --pr N or --issue N"


def pull_request_number(env: Mapping[str, str]) -> int | None:
    """The pull request's number inside an Actions run triggered by one; None for any other
    event or outside Actions. A payload that cannot be read or holds no valid number is an
    InputError: commenting on the tracking issue instead would hide the PR's verdict."""
    if env.get("GITHUB_ACTIONS") != "true":
        return None
    if env.get("GITHUB_EVENT_NAME", "").strip() not in PULL_REQUEST_EVENTS:
        return None
    where = env.get("GITHUB_EVENT_PATH", "").strip()
    if not where:
        raise InputError("a pull-request event without GITHUB_EVENT_PATH", "the environment", _FIX)
    try:
        data = json.loads(read_bounded(Path(where), MAX_EVENT_BYTES))
    except BoundedReadError as exc:
        raise InputError(f"cannot read the event ({exc.problem.value})", where, _FIX) from None
    except (ValueError, RecursionError) as exc:
        problem = f"the event is not JSON ({first_line(exc)})"
        raise InputError(problem, where, _FIX) from None
    pull = data.get("pull_request") if isinstance(data, dict) else None
    number = pull.get("number") if isinstance(pull, dict) else None
    if type(number) is not int or not 1 <= number <= MAX_NUMBER:
        raise InputError("the event holds no valid pull_request.number", where, _FIX)
    return number


def commit_url_base(env: Mapping[str, str]) -> str | None:
    """``$GITHUB_SERVER_URL/<repo>/commit/``, to which a commit's SHA is appended; None
    unless both variables are set."""
    server = env.get("GITHUB_SERVER_URL", "").strip().rstrip("/")
    repo = env.get("GITHUB_REPOSITORY", "").strip()
    if not (server and repo):
        return None
    return f"{server}/{repo}/commit/"
