"""The timeline from a TOML or JSON file that lists the models (and their inputs) in order."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..catalogue import Direction
from ..errors import InputError, first_line
from ..evaluation.inputs import InputDescription, from_timeline_table, output_name
from ..files import BoundedReadError, FileKind, ReadProblem, read_text_bounded
from ..safetext import unicode_safe
from .entry import TimelineEntry, make_entries, path_kind, unique_labels

__all__ = ["MAX_TIMELINE_BYTES", "from_file"]


# A timeline lists paths and labels: even 100,000 models fit in a few MB, and a bound keeps
# /dev/zero or a runaway file from filling memory.
MAX_TIMELINE_BYTES = 8 << 20


_READ_PROBLEMS = {
    ReadProblem.MISSING: "timeline file not found",
    ReadProblem.NOT_REGULAR: "timeline is not a regular file ({detail})",
    ReadProblem.TOO_LARGE: f"timeline file is larger than {MAX_TIMELINE_BYTES >> 20} MB",
    ReadProblem.UNREADABLE: "unreadable timeline file ({detail})",
}
_READ_FIXES = {
    ReadProblem.MISSING: "pass an existing file",
    ReadProblem.NOT_REGULAR: "pass a TOML or JSON file",
    ReadProblem.TOO_LARGE: "list only paths and labels in it",
    ReadProblem.UNREADABLE: "pass a UTF-8 file",
}


def _parse_timeline(path: Path, text: str) -> Any:
    if path.suffix.lower() == ".json":
        return json.loads(text)
    if path.suffix.lower() == ".toml":
        return tomllib.loads(text)
    try:
        return json.loads(text)
    except ValueError:
        return tomllib.loads(text)


def from_file(path: Path) -> list[TimelineEntry]:
    """A TOML ``[[models]]`` / JSON ``{"models": [...]}`` manifest, oldest first; entries are
    ``{path, label?, inputs?}`` with paths relative to the manifest's folder (``inputs``: see
    ``inputs.from_timeline_table``)."""
    where = unicode_safe(str(path))
    example = 'list entries as [[models]] path = "model_00.onnx" (TOML) or {"models": [...]}'
    try:
        text = read_text_bounded(path, MAX_TIMELINE_BYTES)
    except BoundedReadError as exc:
        raise InputError(exc.worded(_READ_PROBLEMS), where, _READ_FIXES[exc.problem]) from None
    try:
        data = _parse_timeline(path, text)
    except RecursionError:
        raise InputError("timeline nests too deeply to parse", where, example) from None
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise InputError(
            f"timeline does not parse ({unicode_safe(first_line(exc))})",
            where,
            example,
        ) from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        raise InputError("timeline has no list of models", where, example)
    items: list[tuple[Path, str | None]] = []
    described: list[InputDescription | None] = []
    directions: list[Direction | None] = []
    for number, entry in enumerate(models, start=1):
        if isinstance(entry, str):
            entry = {"path": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise InputError(f"entry {number} has no path", where, example)
        unknown = sorted(set(entry) - {"path", "label", "inputs", "direction", "output"})
        if unknown:
            raise InputError(
                f"entry {number} has unknown key {', '.join(map(repr, unknown))}",
                where,
                "entries take only path, label, inputs, direction and output",
            )
        directions.append(_direction(entry.get("direction"), where, number))
        given = entry.get("inputs")
        output = output_name(entry.get("output"), where, f"entry {number}")
        if output is not None and given is None:
            raise InputError(
                f"entry {number} names an output but has no inputs table",
                where,
                "describe the model's inputs in the entry, or drop output",
            )
        described.append(
            None if given is None else from_timeline_table(given, where, number, output=output)
        )
        label = entry.get("label")
        if label is not None and not isinstance(label, str):
            raise InputError(f"entry {number} has a non-string label", where, "quote the label")
        model = Path(entry["path"])
        resolved = model if model.is_absolute() else path.parent / model
        kind = path_kind(resolved, where)
        if kind is None or kind is FileKind.DIRECTORY:
            missing = "a folder, not a" if kind else "a missing"
            raise InputError(
                f"entry {number} names {missing} model {unicode_safe(repr(entry['path'][:200]))}",
                where,
                "paths are relative to the timeline file's folder",
            )
        items.append((resolved, label or None))
    paths = [p for p, _ in items]
    labels = unique_labels(paths, [lb for _, lb in items])
    entries = make_entries(list(zip(paths, labels, strict=True)), described)
    return [replace(e, direction=d) for e, d in zip(entries, directions, strict=True)]


def _direction(value: object, where: str, number: int) -> Direction | None:
    """A timeline entry's ``direction``: "higher" or "lower" (which scores mean better)."""
    if value is None:
        return None
    if not isinstance(value, str) or value not in tuple(Direction):
        raise InputError(
            f"entry {number} has direction {unicode_safe(repr(value)[:40])}",
            where,
            'write direction = "lower" when lower scores mean better quality, else "higher"',
        )
    return Direction(value)
