"""Untrusted text made safe to encode and to show."""

from __future__ import annotations

import os

import pytest

from model_bisect.safetext import printable, unicode_safe


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
