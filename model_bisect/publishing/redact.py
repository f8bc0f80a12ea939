"""Keep tokens out of anything the tool writes: comment bodies, logs, error messages.

Redaction must happen before escaping, since an HTML-escaped token no longer matches a plain
search-and-replace yet still renders as the token.

It must also never break what it cleans. A secret shorter than ``MIN_SECRET_LENGTH`` is not
searched for: no GitHub token is that short, and masking every ``0`` of a body because
``GH_TOKEN=0`` would wreck it. A report is cleaned string by string (labels, paths, reasons),
never as JSON text, so keys, numbers and booleans stay intact whatever the token is; and the
tool's own ``<!-- model-bisect:... -->`` lines in a body are left alone, so a token that
happens to spell part of one cannot unhook the sticky comment. The report file that
``run --json`` writes is the user's own and is not redacted; only what leaves the machine is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from ..report import Report

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "TOKEN_VARIABLES",
    "env_secrets",
    "mask_error",
    "redact",
    "redact_body",
    "redact_report",
]

# Where a token can come from; their values are masked in every error whatever they look like.
TOKEN_VARIABLES = ("GH_TOKEN", "GITHUB_TOKEN")

MASK = "***"
MIN_SECRET_LENGTH = 8

# Shapes of GitHub tokens (classic, fine-grained, app, OAuth): text must not leak one even
# when it is not the token this process holds.
_TOKEN_SHAPES = re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")
# The tool's own machine-read lines in a comment body (the sticky marker and its kin).
_OWN_LINE = re.compile(r"<!-- model-bisect:[^\n]*-->")


def _searched(secrets: Iterable[str]) -> list[str]:
    """The secrets worth searching for, longest first so one inside another is masked whole."""
    return sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each of ``secrets`` (of at least MIN_SECRET_LENGTH characters) and
    anything shaped like a GitHub token masked."""
    for secret in _searched(secrets):
        text = text.replace(secret, MASK)
    return _TOKEN_SHAPES.sub(MASK, text)


def env_secrets(env: Mapping[str, str]) -> tuple[str, ...]:
    """The token values the environment holds, as given and stripped."""
    values = (env.get(name, "") for name in TOKEN_VARIABLES)
    return tuple({form for v in values for form in (v, v.strip()) if form.strip()})


def mask_error(text: str, secrets: Iterable[str] = ()) -> str:
    """An error or warning line with each secret masked by value, however short or oddly
    shaped, also where a URL carries it percent-encoded; then GitHub token shapes.

    Unlike ``redact`` no length floor applies: an error text is one line for a person, and a
    masked letter there costs little, whereas the token reaching a CI log costs the token."""
    forms = {f for s in secrets if s for f in (s, quote(s, safe=""), quote(s, safe="/"))}
    for secret in sorted(forms, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _TOKEN_SHAPES.sub(MASK, text)


def redact_body(body: str, secrets: Iterable[str] = ()) -> str:
    """A rendered comment body with secrets masked everywhere but in the tool's own
    ``<!-- model-bisect:... -->`` lines, which carry no user text."""
    kept = tuple(secrets)
    return "".join(
        line if _OWN_LINE.fullmatch(line.rstrip("\n")) else redact(line, kept)
        for line in body.splitlines(keepends=True)
    )


def redact_report(report: Report, secrets: Iterable[str]) -> Report:
    """The same report with secrets masked in every string value, labels included; keys and
    non-string values are never touched, so the result is always a valid report."""
    searched = _searched(secrets)
    data = report.to_json()
    clean = _walk(data, searched)
    return report if clean == data else Report.from_json(clean)


def _walk(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {key: _walk(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk(item, secrets) for item in value]
    return value
