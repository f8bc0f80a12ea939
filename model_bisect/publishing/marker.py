"""The sticky comment's marker: the key's rule, its default and the hidden first line.

Its own module, standard library only, so `config.py` can check a `marker` key without
importing the Markdown renderer.
"""

from __future__ import annotations

import re

from ..errors import UsageError

__all__ = ["DEFAULT_MARKER", "KEY_PATTERN", "marker"]

DEFAULT_MARKER = "nightly"
KEY_PATTERN = r"[A-Za-z0-9._-]+"  # also the JSON Schema of [tool.model-bisect] marker
_KEY = re.compile(KEY_PATTERN)


def marker(key: str) -> str:
    """The sticky comment's first line; publish finds its comment by it."""
    if not _KEY.fullmatch(key):
        raise UsageError(
            f"invalid marker key {key!r}", "--marker", "use letters, digits, '.', '_' or '-'"
        )
    return f"<!-- model-bisect:{key} -->"
