"""Bounds on what a MANIFEST.json may ask for, and the checks that hold its values to them.

A manifest is read from a folder anyone can edit, and `check` acts on it: `models: 1000000`
would write a million files and `rows: -1` would crash numpy. So every value is checked for
its JSON type (an integer is an integer: not a bool, not 1.5, not "12", not NaN) and its range
before it is used, and a bad one names its field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_ARTIFACT_BYTES",
    "MAX_MANIFEST_BYTES",
    "MAX_MODELS",
    "MAX_ROWS",
    "MAX_SEED",
    "FieldError",
    "artifact_name",
    "integer",
    "mapping",
    "sha256",
    "text",
]

MAX_ROWS = 1_000_000  # the committed fixture has 256; public MOS/DMOS sets have < 100,000
MAX_MODELS = 100  # model files are numbered with two digits: model_00 .. model_99
MAX_SEED = 2**63 - 1
MAX_ARTIFACT_BYTES = 1 << 40
MAX_MANIFEST_BYTES = 4 << 20  # a 100-model manifest is about 15 KB

_SHA256 = re.compile(r"[0-9a-f]{64}")


class FieldError(ValueError):
    """One manifest value is unusable; ``field`` is its dotted path (``origin.rows``)."""

    def __init__(self, field: str, problem: str) -> None:
        self.field, self.problem = field, problem
        super().__init__(f"{field} {problem}")


def integer(value: Any, field: str, low: int, high: int) -> int:
    """A JSON integer within ``low..high``."""
    if type(value) is not int:
        raise FieldError(field, f"must be an integer, not {_kind(value)}")
    if not low <= value <= high:
        shown = str(value) if len(str(value)) <= 30 else f"a {len(str(value))}-digit number"
        raise FieldError(field, f"is {shown}, outside {low:,}..{high:,}")
    return value


def text(value: Any, field: str, limit: int = 200) -> str:
    """A JSON string of at most ``limit`` characters, without NUL or other control bytes."""
    if not isinstance(value, str):
        raise FieldError(field, f"must be a string, not {_kind(value)}")
    if len(value) > limit:
        raise FieldError(field, f"is longer than {limit} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise FieldError(field, "holds control characters")
    return value


def sha256(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise FieldError(field, "must be 64 lowercase hex digits")
    return value


def mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FieldError(field, f"must be an object, not {_kind(value)}")
    return value


def artifact_name(value: str, field: str) -> str:
    """A relative POSIX path inside the fixture: no absolute path, no `..`, no backslash."""
    text(value, field, 255)
    parts = value.split("/")
    if (
        not value
        or value.startswith("/")
        or "\\" in value
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise FieldError(field, "must be a relative path inside the fixture folder")
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return f"the number {value!r}"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "a string"
    return {dict: "an object", list: "a list", int: "an integer"}.get(type(value), "a value")
