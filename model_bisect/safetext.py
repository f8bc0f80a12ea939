"""Text from untrusted names made safe to encode and to show.

File names that are not UTF-8 reach Python as lone surrogates (``surrogateescape``), and JSON
timeline labels can hold them too; either makes ``str.encode("utf-8")`` raise when the report
or the comment is written. Labels, commit subjects and skip reasons can also carry terminal
escape sequences that would recolour, retitle or rewrite the user's terminal, and begin a
line with `::`, which a CI runner would obey as a workflow command.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from typing import Any

__all__ = [
    "GuardedStream",
    "defuse",
    "guarded_streams",
    "own_command",
    "printable",
    "unicode_safe",
]

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


# --- workflow commands ---------------------------------------------------------------------
# A CI runner (GitHub Actions) reads any output line whose text, after leading whitespace,
# begins with `::` as a command: `::error`, `::add-mask::`, `::stop-commands::`. Untrusted
# text can reach column 0 however it is filtered (rich's word wrap, a commit subject, a
# label), so the streams themselves are guarded: a line that would begin with `::` gets a
# zero-width space before it, unless it is exactly one of our own annotations.

_DEFUSE = "\u200b"  # not whitespace to .NET's TrimStart nor to Python: the line is inert
_LINE_END = re.compile(r"(?<=[\r\n])")  # the runner splits lines at \n, \r and \r\n
_OWN_COMMANDS: set[str] = set()


def own_command(line: str) -> str:
    """Register ``line`` (one of our escaped annotations) as allowed to start with `::`."""
    _OWN_COMMANDS.add(line)
    return line


def _is_command(text: str) -> bool:
    return text.lstrip().startswith("::")


def defuse(line: str) -> str:
    """``line`` made inert if it would read as a workflow command and is not our own."""
    body = line.rstrip("\r\n")
    if not _is_command(body) or body in _OWN_COMMANDS:
        return line
    indent = len(line) - len(line.lstrip())
    return line[:indent] + _DEFUSE + line[indent:]


class _LineGuard:
    """Where lines begin across writes: the start of a line is held back until it is known
    not to begin with `::` (or is a whole line that can be checked)."""

    def __init__(self) -> None:
        self.pending = ""  # the current line's start, not yet written
        self.open = False  # the current line is already known safe

    def feed(self, text: str) -> str:
        pieces = _LINE_END.split(self.pending + text)
        self.pending = ""
        out: list[str] = []
        for piece in pieces[:-1]:  # whole lines
            out.append(piece if self.open else defuse(piece))
            self.open = False
        last = pieces[-1]
        if self.open or not last:
            out.append(last)
        else:
            head = last.lstrip()
            if head.startswith("::") or head in ("", ":"):
                self.pending = last  # undecided, or needs the whole line to compare
            else:
                out.append(last)
                self.open = True
        return "".join(out)

    def release(self) -> str:
        """The held start of the line, made inert if it looks like a command."""
        held, self.pending = self.pending, ""
        if held:
            self.open = True
            return defuse(held)
        return ""


class _GuardedBytes:
    """``buffer`` of a guarded stream: bytes are decoded (UTF-8, escapes kept) and guarded."""

    def __init__(self, owner: GuardedStream) -> None:
        self._owner = owner

    def write(self, data: bytes) -> int:
        self._owner.write(data.decode("utf-8", "surrogateescape"))
        return len(data)

    def flush(self) -> None:
        self._owner.flush()


class GuardedStream:
    """A text stream whose lines never begin with a workflow command we did not write.

    Installed over ``sys.stdout`` and ``sys.stderr`` for the whole of a CLI call; output goes
    out as UTF-8 through the wrapped stream's ``buffer`` when it has one."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._guard = _LineGuard()
        self._bytes = getattr(inner, "buffer", None)
        self.buffer = _GuardedBytes(self)

    def _emit(self, text: str) -> None:
        if not text:
            return
        if self._bytes is None:
            self._inner.write(text)
            return
        self._inner.flush()
        self._bytes.write(text.encode("utf-8", "surrogateescape"))

    def write(self, text: str) -> int:
        self._emit(self._guard.feed(text))
        return len(text)

    def flush(self) -> None:
        if _is_command(self._guard.pending):
            self._emit(self._guard.release())
        if self._bytes is not None:
            self._bytes.flush()
        self._inner.flush()

    def finish(self) -> None:
        """Write whatever start of a line is still held (inert if need be)."""
        self._emit(self._guard.release())
        self.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # isatty, fileno, encoding, errors, ...


@contextlib.contextmanager
def guarded_streams() -> Iterator[None]:
    """``sys.stdout`` and ``sys.stderr`` guarded for the duration (see ``GuardedStream``)."""
    saved = sys.stdout, sys.stderr
    out, err = GuardedStream(saved[0]), GuardedStream(saved[1])
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        for stream in (out, err):
            with contextlib.suppress(Exception):
                stream.finish()
        sys.stdout, sys.stderr = saved
