"""Text from untrusted names made safe to encode and to show.

File names that are not UTF-8 reach Python as lone surrogates (``surrogateescape``), and JSON
timeline labels can hold them too; either makes ``str.encode("utf-8")`` raise when the report
or the comment is written. Labels, commit subjects and skip reasons can also carry terminal
escape sequences that would recolour, retitle or rewrite the user's terminal.
"""

from __future__ import annotations

import re

__all__ = ["printable", "unicode_safe"]

_SURROGATE = re.compile("[\ud800-\udfff]")
# CSI / OSC / other ESC sequences first (so their parameters go too), then single controls:
# C0 (tab and newline included: a label or reason is one line), DEL, C1, and the bidi
# overrides and isolates that can make a label read differently from what it is.
_ESCAPE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"  # CSI ... final byte
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC ... BEL or ST
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC ... ST
    r"|\x1b[ -/]*[0-~]?"  # two-byte and nF escapes
    r"|\x9b[0-?]*[ -/]*[@-~]?"  # 8-bit CSI
)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape_surrogate(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, smuggled by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def unicode_safe(text: str) -> str:
    """``text`` with every lone surrogate written as an escape (``\\xff`` for an undecodable
    byte of a file name), so it always encodes as UTF-8; other text is unchanged."""
    return _SURROGATE.sub(_escape_surrogate, text)


def printable(text: str) -> str:
    """``unicode_safe(text)`` with escape sequences and control characters removed (tabs and
    newlines become spaces): what may reach a terminal."""
    text = _ESCAPE.sub("", unicode_safe(text))
    text = text.replace("\t", " ").replace("\n", " ").replace("\r", " ")
    return _CONTROL.sub("", text)
