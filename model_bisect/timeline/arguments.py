"""The timeline from MODEL arguments: files in the order given, folders and globs expanded."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError
from ..files import FileKind
from ..safetext import unicode_safe
from .entry import TimelineEntry, make_entries, path_kind, sorted_naturally, unique_labels

__all__ = ["from_arguments"]


def _expand(argument: str) -> list[Path]:
    path = Path(argument)
    kind = path_kind(path, unicode_safe(argument))
    if kind is FileKind.DIRECTORY:
        # A FIFO or device named *.onnx is kept: the evaluator skips it and says what it is.
        found = [p for p in path.glob("*.onnx") if not p.is_dir()]
        if not found:
            raise InputError(
                "folder holds no *.onnx model", argument, "pass a folder of .onnx files"
            )
        return sorted_naturally(found)
    if kind is not None:  # a FIFO or device too: the evaluator skips it, saying what it is
        return [path]
    if glob.has_magic(argument):
        matches = [Path(m) for m in glob.glob(argument)]
        files = [m for m in matches if not m.is_dir()]
        if not files:
            raise InputError(
                "glob matches no model file",
                unicode_safe(argument),
                "check the pattern and the folder",
            )
        return sorted_naturally(files)
    raise InputError(
        "model not found", unicode_safe(argument), "pass an existing file, folder or glob"
    )


def from_arguments(models: Sequence[str]) -> list[TimelineEntry]:
    """MODEL arguments in the order given; each glob or folder expands in natural order."""
    paths = [p for argument in models for p in _expand(argument)]
    return make_entries(list(zip(paths, unique_labels(paths), strict=True)))
