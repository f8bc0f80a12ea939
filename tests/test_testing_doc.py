"""docs/testing.md names tests that exist, so its list of promises cannot go stale silently."""

from __future__ import annotations

import ast
import re

from tests.conftest import REPO_ROOT

DOC = REPO_ROOT / "docs" / "testing.md"
TESTS = REPO_ROOT / "tests"


def _test_names(filename: str) -> set[str]:
    tree = ast.parse((TESTS / filename).read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }


def _references() -> list[tuple[str, str]]:
    """`file.py::name` and, after it in the same table cell, `::name` for the same file."""
    found = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        current = None
        for file, name in re.findall(r"`(test_\w+\.py)?::(test_\w+)`", line):
            current = file or current
            assert current is not None, f"`::{name}` without a file before it: {line}"
            found.append((current, name))
    return found


def test_every_test_the_testing_doc_names_exists() -> None:
    references = _references()
    assert len(references) > 60
    missing = [f"{file}::{name}" for file, name in references if name not in _test_names(file)]
    assert missing == []


def test_every_file_the_testing_doc_names_exists() -> None:
    files = set(re.findall(r"`(test_\w+\.py)", DOC.read_text(encoding="utf-8")))
    assert files
    assert sorted(f for f in files if not (TESTS / f).is_file()) == []
