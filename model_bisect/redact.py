"""Keep tokens out of anything the tool writes: comment bodies, logs, error messages.

Redaction must happen before escaping, since an HTML-escaped token no longer matches a plain
search-and-replace yet still renders as the token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from .report import Report

__all__ = ["MASK", "redact", "redact_report"]

MASK = "***"

# Shapes of GitHub tokens (classic, fine-grained, app, OAuth): text must not leak one even
# when it is not the token this process holds.
_TOKEN_SHAPES = re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each of ``secrets`` and anything shaped like a GitHub token masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return _TOKEN_SHAPES.sub(MASK, text)


def redact_report(report: Report, secrets: Iterable[str]) -> Report:
    """The same report with secrets removed from every string field, labels included."""
    text = json.dumps(report.to_json())
    forms = [json.dumps(s)[1:-1] for s in secrets if s]  # as they appear inside JSON strings
    clean = redact(text, forms)
    return report if clean == text else Report.from_json(json.loads(clean))
