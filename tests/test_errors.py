"""first_line: third-party messages shrink to the one line a skip reason or error may hold."""

from __future__ import annotations

from model_bisect.errors import first_line


def test_first_non_blank_line_is_kept_stripped() -> None:
    error = ValueError("\n   Parquet magic bytes not found  \nsecond line\n")
    assert first_line(error) == "Parquet magic bytes not found"


def test_exception_without_a_message_is_named_by_its_class() -> None:
    assert first_line(KeyError()) == "KeyError"
    assert first_line(OSError("  \n ")) == "OSError"


def test_text_is_accepted_as_well_as_exceptions() -> None:
    assert first_line("one\ntwo") == "one"
    assert first_line("") == ""


def test_long_line_is_cut_to_300_characters_with_an_ellipsis() -> None:
    line = first_line(RuntimeError("x" * 1000))
    assert len(line) == 300
    assert line.endswith("...")
    assert first_line("y" * 300) == "y" * 300
