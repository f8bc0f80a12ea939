"""Untrusted text made safe to encode and to show."""

from __future__ import annotations

import io
import os
import re

import pytest

from model_bisect.safetext import GuardedStream, own_command, printable, unicode_safe


def test_an_undecodable_file_name_byte_is_shown_as_a_byte_escape() -> None:
    name = os.fsdecode(b"model_\xff.onnx")
    assert unicode_safe(name) == "model_\\xff.onnx"
    unicode_safe(name).encode("utf-8")  # would raise UnicodeEncodeError before


def test_other_lone_surrogates_are_shown_as_unicode_escapes() -> None:
    assert unicode_safe("a\ud800b\udfffc") == "a\\ud800b\\udfffc"


def test_ordinary_text_is_untouched() -> None:
    text = "modèle №3 — 良い | <b> \\ `x`"
    assert unicode_safe(text) == text
    assert printable(text) == text


@pytest.mark.parametrize(
    ("hostile", "shown"),
    [
        ("red\x1b[31mtext\x1b[0m", "redtext"),
        ("clear\x1b[2J\x1b[Hscreen", "clearscreen"),
        ("title\x1b]0;owned\x07set", "titleset"),
        ("title\x1b]8;;http://x\x1b\\link", "titlelink"),
        ("c1\x9b31mcsi", "c1csi"),
        ("bell\x07back\x08space\x7f", "bellbackspace"),
        ("two\nlines\rcarriage\ttab", "two lines carriage tab"),
        ("bidi\u202eflipped\u2066iso\u2069", "bidiflippediso"),
        ("lone\x1b", "lone"),
    ],
)
def test_printable_removes_escape_sequences_and_controls(hostile: str, shown: str) -> None:
    assert printable(hostile) == shown


# --- the stream guard: no line begins with a workflow command we did not write -------------


def _guarded(*writes: str, own: tuple[str, ...] = ()) -> str:
    sink = io.StringIO()
    stream = GuardedStream(sink)
    for line in own:
        own_command(line)
    for text in writes:
        stream.write(text)
    stream.finish()
    return sink.getvalue()


def _starts_a_command(text: str) -> bool:
    return any(line.lstrip().startswith("::") for line in re.split(r"[\r\n]", text))


@pytest.mark.parametrize(
    "writes",
    [
        ("::error::x\n",),
        ("  \t::warning::indented\n",),
        ("fine\n::add-mask::secret",),  # no newline at the end: released at finish
        (":", ":error::split across writes\n"),
        ("a\r::error::after a carriage return\n",),
        ("one\n", "  ", "::", "stop-commands::t\n"),
    ],
)
def test_a_line_that_would_be_a_command_is_made_inert(writes: tuple[str, ...]) -> None:
    shown = _guarded(*writes)
    assert not _starts_a_command(shown)
    assert shown.replace("\u200b", "") == "".join(writes)  # only a zero-width space added


def test_our_own_annotation_passes_and_a_lookalike_does_not() -> None:
    ours = "::error title=model-bisect::regression at #5"
    shown = _guarded(ours, "\n", ours + " forged\n", own=(ours,))
    assert shown.splitlines() == [ours, "\u200b" + ours + " forged"]


def test_text_mid_line_and_plain_lines_are_untouched() -> None:
    text = "gates: plcc >= 0.85 ::error:: is mid-line\n: one colon\n\n"
    assert _guarded(text) == text


def test_bytes_through_the_buffer_are_guarded_too() -> None:
    raw = io.BytesIO()
    inner = io.TextIOWrapper(raw, encoding="utf-8")
    stream = GuardedStream(inner)
    stream.buffer.write("::error::é\n".encode())
    stream.finish()
    assert raw.getvalue() == "\u200b::error::é\n".encode()
