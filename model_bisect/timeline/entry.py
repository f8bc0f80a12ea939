"""A timeline's entries: one model each, its content hashes, labels and natural order."""

from __future__ import annotations

import hashlib
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..catalogue import Direction
from ..errors import InputError
from ..evaluation.features import sidecar_path
from ..evaluation.inputs import InputDescription
from ..evaluation.onnxfile import external_data_locations, unsafe_location_reason
from ..files import FileKind, file_sha256, special_file_kind
from ..safetext import unicode_safe

__all__ = [
    "TimelineEntry",
    "content_hashes",
    "inside",
    "make_entries",
    "named_locations",
    "natural_key",
    "path_kind",
    "require_two",
    "sorted_naturally",
    "unique_labels",
]


@dataclass(frozen=True)
class TimelineEntry:
    """One model of the timeline.

    ``sha256`` is the model file's own hash (the report shows it). ``content_sha256`` also
    covers its external-data files and sidecar JSON, which decide its predictions as much as
    the graph does (a retrained model often changes only ``model.onnx.data``): deduplicate on
    it. ``weights_sha256`` covers the model and its external data but not the sidecar: the
    evaluation cache keys on it plus the model's inputs (its sidecar's column list), so a
    sidecar edit that keeps them still hits. All are None when the model file cannot be read.
    ``inputs`` is the timeline file's description of the model's inputs, which overrides its
    sidecar (None: the sidecar or the default rule decides). ``companions`` are the sidecar
    and external-data files that exist beside it (outputs must not replace them).

    A git timeline also records where each version came from: ``commit`` (full SHA),
    ``subject``, and ``source``, the file's path inside the repository (``path`` is the copy
    in a temporary folder that is gone once the run ends).
    """

    index: int
    label: str
    path: Path
    sha256: str | None
    content_sha256: str | None = None
    inputs: InputDescription | None = None
    weights_sha256: str | None = None
    companions: tuple[Path, ...] = ()
    commit: str | None = None
    subject: str | None = None
    source: str | None = None
    # The timeline entry's ``direction``: LOWER_IS_BETTER negates the model's scores before
    # anything else; None leaves it to the run's --direction.
    direction: Direction | None = None


_Pieces = tuple[tuple[int, int | str], ...]


def _pieces(text: str) -> _Pieces:
    parts = re.split(r"(\d+)", text)
    return tuple((1, int(p)) if p.isdigit() else (0, p.casefold()) for p in parts if p)


def natural_key(text: str) -> tuple[_Pieces, _Pieces]:
    """Sort key that reads digit runs as numbers, so ``model_2`` comes before ``model_10``.

    The extension is compared last, after the rest of the name: ``name.onnx`` comes before
    its own variants ``name.int8.onnx`` and ``name_v2.onnx`` (character by character, ``.i``
    sorts before ``.o``, and a quantized copy would come first)."""
    head, dot, extension = text.rpartition(".")
    if not dot or not head or head.endswith(("/", os.sep)) or {"/", os.sep} & set(extension):
        return _pieces(text), ()
    return _pieces(head), _pieces(dot + extension)


def sorted_naturally(paths: Iterable[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: (natural_key(str(p)), str(p)))


def named_locations(model: Path) -> list[str]:
    """The external-data locations a model names, unchecked; [] when unparsable."""
    try:
        return external_data_locations(model)
    except Exception:  # not a model we can parse: the evaluator will skip it and say why
        return []


def inside(locations: Iterable[str], folder: Path) -> list[str]:
    """The ``locations`` that stay inside ``folder``."""
    return [loc for loc in locations if unsafe_location_reason(loc, folder) is None]


@dataclass(frozen=True)
class _Hashes:
    own: str | None = None
    content: str | None = None
    weights: str | None = None
    companions: tuple[Path, ...] = ()


def content_hashes(path: Path) -> _Hashes:
    """The model file's sha256, the sha256 of the model with its companions, and of the model
    with its external data only. A FIFO or device is never opened (it could block forever):
    ``file_sha256`` refuses it, and the evaluator skips the model with the reason."""
    try:
        own = file_sha256(path)
    except (OSError, ValueError):
        return _Hashes()
    content = hashlib.sha256(f"model {own}\n".encode())
    weights = hashlib.sha256(f"model {own}\n".encode())
    # The sidecar is named after the model, so it is keyed by role, not name: two copies of
    # one model under different names must hash alike.
    companions = [("sidecar", sidecar_path(path).name)]
    companions += [(name, name) for name in sorted(set(inside(named_locations(path), path.parent)))]
    present = []
    for role, name in companions:
        try:
            part = file_sha256(path.parent / name)
            present.append(path.parent / name)
        except FileNotFoundError:
            part = "absent"
        except (OSError, ValueError) as exc:
            part = f"unreadable {exc.__class__.__name__}"
        content.update(f"{role} {part}\n".encode())
        if role != "sidecar":
            weights.update(f"{role} {part}\n".encode())
    return _Hashes(own, content.hexdigest(), weights.hexdigest(), tuple(present))


def make_entries(
    items: Sequence[tuple[Path, str]],
    inputs: Sequence[InputDescription | None] | None = None,
) -> list[TimelineEntry]:
    described = list(inputs) if inputs is not None else [None] * len(items)
    entries = []
    for index, ((path, label), given) in enumerate(zip(items, described, strict=True)):
        found = content_hashes(path)
        entries.append(
            TimelineEntry(
                index,
                unicode_safe(label),
                path,
                found.own,
                found.content,
                given,
                weights_sha256=found.weights,
                companions=found.companions,
            )
        )
    return entries


def unique_labels(paths: Sequence[Path], given: Sequence[str | None] | None = None) -> list[str]:
    """A label per path: ``given`` when set, else the file name, lengthened by the fewest
    parent folders that tell it apart from other files of the same name (``a/m.onnx`` and
    ``b/m.onnx``). The same file listed twice keeps one label: it is one model."""
    chosen = list(given) if given is not None else [None] * len(paths)
    parts = [Path(os.path.abspath(p)).parts for p in paths]
    by_name: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for i, path in enumerate(paths):
        if chosen[i] is None:
            by_name[path.name].add(parts[i])
    labels = []
    for i, path in enumerate(paths):
        label = chosen[i]
        if label is None:
            others = by_name[path.name] - {parts[i]}
            depth = 1
            # Distinct absolute paths differ somewhere, so some suffix tells them apart.
            while depth < len(parts[i]) and any(o[-depth:] == parts[i][-depth:] for o in others):
                depth += 1
            label = "/".join(parts[i][-depth:])
        labels.append(label)
    return labels


def path_kind(path: Path, where: str) -> FileKind | None:
    """None when ``path`` is missing, else what it is (``FileKind.REGULAR``, ``FIFO``,
    ``DIRECTORY``...); a name the OS refuses to look up (too long, ...) is an InputError."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except ValueError:  # an embedded NUL byte
        return None
    except OSError as exc:
        raise InputError(
            f"cannot look up {unicode_safe(str(path)[:200])!r} ({exc.strerror or exc})",
            where,
            "pass an existing model file, folder or glob",
        ) from None
    return special_file_kind(info) or FileKind.REGULAR


def require_two(entries: Sequence[TimelineEntry]) -> None:
    """A bisect needs a first model to anchor the gate and at least one to compare."""
    if len(entries) < 2:
        raise InputError(
            f"a timeline needs at least two models, got {len(entries)}",
            "the model arguments",
            "pass two or more models, a folder, a glob or a timeline file",
        )
