"""The ordered list of models to bisect: from arguments, a timeline file, or git history."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from ..catalogue import Direction
from ..errors import InputError, first_line
from ..evaluation.features import sidecar_path
from ..evaluation.inputs import InputDescription, from_timeline_table
from ..evaluation.onnxfile import external_data_locations, unsafe_location_reason
from ..files import (
    NotRegularFileError,
    TooLargeError,
    file_sha256,
    read_bytes_bounded,
    special_file_kind,
)
from ..safetext import unicode_safe

__all__ = [
    "TimelineEntry",
    "from_arguments",
    "from_file",
    "from_git",
    "natural_key",
    "require_two",
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


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that reads digit runs as numbers, so ``model_2`` comes before ``model_10``."""
    parts = re.split(r"(\d+)", text)
    return tuple((1, int(p)) if p.isdigit() else (0, p.casefold()) for p in parts if p)


def _sorted_naturally(paths: Iterable[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: (natural_key(str(p)), str(p)))


def _named_locations(model: Path) -> list[str]:
    """The external-data locations a model names, unchecked; [] when unparsable."""
    try:
        return external_data_locations(model)
    except Exception:  # not a model we can parse: the evaluator will skip it and say why
        return []


def _inside(locations: Iterable[str], folder: Path) -> list[str]:
    """The ``locations`` that stay inside ``folder``."""
    return [loc for loc in locations if unsafe_location_reason(loc, folder) is None]


@dataclass(frozen=True)
class _Hashes:
    own: str | None = None
    content: str | None = None
    weights: str | None = None
    companions: tuple[Path, ...] = ()


def _hashes(path: Path) -> _Hashes:
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
    companions += [
        (name, name) for name in sorted(set(_inside(_named_locations(path), path.parent)))
    ]
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


def _entries(
    items: Sequence[tuple[Path, str]],
    inputs: Sequence[InputDescription | None] | None = None,
) -> list[TimelineEntry]:
    described = list(inputs) if inputs is not None else [None] * len(items)
    entries = []
    for index, ((path, label), given) in enumerate(zip(items, described, strict=True)):
        found = _hashes(path)
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


def _kind(path: Path, where: str) -> str | None:
    """None when ``path`` is missing, "file" for a regular file, else what it is ("a FIFO",
    "a directory", ...); a name the OS refuses to look up (too long, ...) is an InputError."""
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
    return special_file_kind(info) or "file"


def _expand(argument: str) -> list[Path]:
    path = Path(argument)
    kind = _kind(path, unicode_safe(argument))
    if kind == "a directory":
        # A FIFO or device named *.onnx is kept: the evaluator skips it and says what it is.
        found = [p for p in path.glob("*.onnx") if not p.is_dir()]
        if not found:
            raise InputError(
                "folder holds no *.onnx model", argument, "pass a folder of .onnx files"
            )
        return _sorted_naturally(found)
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
        return _sorted_naturally(files)
    raise InputError(
        "model not found", unicode_safe(argument), "pass an existing file, folder or glob"
    )


def from_arguments(models: Sequence[str]) -> list[TimelineEntry]:
    """MODEL arguments in the order given; each glob or folder expands in natural order."""
    paths = [p for argument in models for p in _expand(argument)]
    return _entries(list(zip(paths, unique_labels(paths), strict=True)))


# A timeline lists paths and labels: even 100,000 models fit in a few MB, and a bound keeps
# /dev/zero or a runaway file from filling memory.
MAX_TIMELINE_BYTES = 8 << 20


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
        text = read_bytes_bounded(path, MAX_TIMELINE_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise InputError("timeline file not found", where, "pass an existing file") from None
    except NotRegularFileError as exc:
        raise InputError(
            f"timeline is not a regular file ({exc.kind})",
            where,
            "pass a TOML or JSON file",
        ) from None
    except TooLargeError:
        raise InputError(
            f"timeline file is larger than {MAX_TIMELINE_BYTES >> 20} MB",
            where,
            "list only paths and labels in it",
        ) from None
    except (OSError, ValueError) as exc:  # ValueError: UnicodeDecodeError, a NUL in the name
        raise InputError(
            f"unreadable timeline file ({exc.__class__.__name__})", where, "pass a UTF-8 file"
        ) from None
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
        unknown = sorted(set(entry) - {"path", "label", "inputs", "direction"})
        if unknown:
            raise InputError(
                f"entry {number} has unknown key {', '.join(map(repr, unknown))}",
                where,
                "entries take only path, label, inputs and direction",
            )
        directions.append(_direction(entry.get("direction"), where, number))
        given = entry.get("inputs")
        described.append(None if given is None else from_timeline_table(given, where, number))
        label = entry.get("label")
        if label is not None and not isinstance(label, str):
            raise InputError(f"entry {number} has a non-string label", where, "quote the label")
        model = Path(entry["path"])
        resolved = model if model.is_absolute() else path.parent / model
        kind = _kind(resolved, where)
        if kind is None or kind == "a directory":
            missing = "a folder, not a" if kind else "a missing"
            raise InputError(
                f"entry {number} names {missing} model {unicode_safe(repr(entry['path'][:200]))}",
                where,
                "paths are relative to the timeline file's folder",
            )
        items.append((resolved, label or None))
    paths = [p for p, _ in items]
    labels = unique_labels(paths, [lb for _, lb in items])
    entries = _entries(list(zip(paths, labels, strict=True)), described)
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


def _git(
    args: Sequence[str], cwd: Path, where: str, *, sink: BinaryIO | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run git; its output is captured, or streamed into ``sink`` (a blob, never in memory)."""
    git = shutil.which("git")
    if git is None:
        raise InputError("git is not installed", where, "install git or pass the models directly")
    output: dict[str, Any] = (
        {"capture_output": True} if sink is None else {"stdout": sink, "stderr": subprocess.PIPE}
    )
    try:
        return subprocess.run(
            [git, "--literal-pathspecs", "-c", "core.quotepath=off", *args],
            cwd=cwd,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
            **output,
        )
    except OSError as exc:
        raise InputError(f"cannot run git ({exc})", where, "check the git installation") from None


def _first_error(done: subprocess.CompletedProcess[bytes]) -> str:
    """git's first line on stderr, for a one-line message."""
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    return lines[0] if lines else "no message"


def _existing_ancestor(path: Path) -> Path:
    for candidate in [path, *path.parents]:
        if candidate.is_dir():
            return candidate
    return Path.cwd()


class _History:
    """Reads one model's versions out of a repository. Each distinct blob goes from git into
    a file in ``store`` once (a model file unchanged across commits is read once) and is
    linked from there: a history of large weights is never held in memory."""

    def __init__(self, root: Path, relative: str, where: str, store: Path) -> None:
        self.root = root
        self.relative = relative
        self.folder = PurePosixPath(relative).parent
        self.where = where
        self.store = store
        self._ids: dict[tuple[str, str], str | None] = {}  # (commit, path) -> blob id
        self._locations: dict[str, list[str]] = {}  # model blob id -> locations it names

    def blobs(self, commit: str, paths: Iterable[str]) -> list[str | None]:
        """The blob ids of ``paths`` at ``commit`` (None: no file there), one git call for
        those not known yet."""
        wanted = list(paths)
        todo = [p for p in dict.fromkeys(wanted) if (commit, p) not in self._ids]
        if todo:
            listed = _git(["ls-tree", "-z", commit, "--", *todo], self.root, self.where)
            found: dict[str, str] = {}
            for record in listed.stdout.split(b"\0") if listed.returncode == 0 else []:
                meta, _, name = record.partition(b"\t")  # "<mode> blob <id>\t<path>"
                fields = meta.split()
                if len(fields) == 3 and fields[1] == b"blob":
                    found[os.fsdecode(name)] = fields[2].decode()
            for p in todo:
                self._ids[(commit, p)] = found.get(p)
        return [self._ids[(commit, p)] for p in wanted]

    def _stored(self, blob: str) -> Path:
        """The blob's bytes as a file of the store, streamed from git the first time."""
        path = self.store / blob
        if not path.exists():
            self.store.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            with partial.open("wb") as sink:
                done = _git(["cat-file", "blob", blob], self.root, self.where, sink=sink)
            if done.returncode != 0:
                raise InputError(
                    f"git cannot read blob {blob[:12]} ({_first_error(done)})",
                    self.where,
                    "check the repository (git fsck)",
                )
            partial.replace(path)
        return path

    def copy(self, blob: str, target: Path) -> None:
        """The blob as ``target``: a hard link into the store, or a copy where links fail."""
        source = self._stored(blob)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)

    def _model_locations(self, commit: str) -> list[str]:
        """The external-data locations the model names at ``commit``, unchecked."""
        (blob,) = self.blobs(commit, [self.relative])
        if blob is None:
            return []
        if blob not in self._locations:
            self._locations[blob] = _named_locations(self._stored(blob))
        return self._locations[blob]

    def commits(self, rev_range: str | None, paths: Iterable[str]) -> list[list[str]]:
        log = _git(
            [
                "log",
                "--reverse",
                "--format=%H%x00%h%x00%s",
                *([rev_range] if rev_range else []),
                "--",
                *sorted(paths),
            ],
            self.root,
            self.where,
        )
        if log.returncode != 0:
            raise InputError(
                f"git log failed ({_first_error(log)})",
                self.where,
                "check --rev-range (A..B with commits that exist)",
            )
        text = log.stdout.decode(errors="replace")
        return [line.split("\0", 2) for line in text.splitlines() if line.count("\0") >= 2]

    def companions(self, commit: str, scratch: Path) -> list[str]:
        """Repository paths of the sidecar and the safe external-data files of one version."""
        names = [sidecar_path(Path(self.relative)).name]
        names += _inside(self._model_locations(commit), scratch)
        return [(self.folder / name).as_posix() for name in dict.fromkeys(names)]


def from_git(path: Path, rev_range: str | None, workdir: Path) -> list[TimelineEntry]:
    """Every committed version of one model file, oldest first, each written to
    ``workdir/<n>_<shortsha>/<name>`` with its external-data files and sidecar JSON from the
    same commit (a model is only runnable with the weights of its own commit).

    A commit that changes only a companion (new weights in ``m.onnx.data``, a new sidecar)
    is a new version too, so the history follows the companions' paths as well.
    """
    where = str(path)
    absolute = Path(os.path.abspath(path))
    top = _git(["rev-parse", "--show-toplevel"], _existing_ancestor(absolute.parent), where)
    if top.returncode != 0:
        raise InputError(
            "not inside a git repository", where, "pass --git-path a file tracked by git"
        )
    root = Path(top.stdout.decode().strip())
    real = Path(os.path.realpath(absolute.parent)) / absolute.name
    try:
        relative = real.relative_to(os.path.realpath(root)).as_posix()
    except ValueError:
        raise InputError(
            "path is outside its git repository", where, "pass a tracked file"
        ) from None
    if rev_range is not None and (not rev_range or rev_range.startswith("-")):
        raise InputError(f"bad revision range {rev_range!r}", where, "pass --rev-range A..B")
    history = _History(root, relative, where, workdir / ".blobs")
    workdir.mkdir(parents=True, exist_ok=True)
    tracked = {relative, f"{relative}.data", (history.folder / sidecar_path(real).name).as_posix()}
    for _ in range(4):  # companions found in old versions may add commits: reach a fixed point
        commits = history.commits(rev_range, tracked)
        found: set[str] = set()
        for full, _, _ in commits:
            history.blobs(full, sorted(tracked))  # one git listing per commit answers them all
            found.update(history.companions(full, workdir))
        if found <= tracked:
            break
        tracked |= found
    versions = [c for c in commits if history.blobs(c[0], [relative])[0] is not None]
    if not versions:
        in_range = f" in {rev_range}" if rev_range else ""
        raise InputError(
            f"no commit{in_range} touches {relative}",
            where,
            "commit the model, or widen --rev-range",
        )
    width = max(2, len(str(len(versions) - 1)))
    items: list[tuple[Path, str]] = []
    for number, (full, short, subject) in enumerate(versions):
        folder = workdir / f"{number:0{width}d}_{short}"
        model = folder / real.name
        folder.mkdir(parents=True, exist_ok=True)
        files = [relative, *history.companions(full, folder)]  # every version has the model
        for name, blob in zip(files, history.blobs(full, files), strict=True):
            if blob is not None:
                target = folder / PurePosixPath(name).relative_to(history.folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                history.copy(blob, target)
        items.append((model, f"{short} {subject}".strip()))
    shutil.rmtree(history.store, ignore_errors=True)  # the versions keep their links
    return [
        replace(entry, commit=full, subject=subject, source=relative)
        for entry, (full, _, subject) in zip(_entries(items), versions, strict=True)
    ]


def require_two(entries: Sequence[TimelineEntry]) -> None:
    """A bisect needs a first model to anchor the gate and at least one to compare."""
    if len(entries) < 2:
        raise InputError(
            f"a timeline needs at least two models, got {len(entries)}",
            "the model arguments",
            "pass two or more models, a folder, a glob or a timeline file",
        )
