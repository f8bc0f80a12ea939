"""The timeline from git history: every committed version of one model file, with the
external data and sidecar of its own commit."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from ..errors import InputError
from ..evaluation.features import sidecar_path
from .entry import TimelineEntry, inside, make_entries, named_locations

__all__ = ["from_git"]


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
            self._locations[blob] = named_locations(self._stored(blob))
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

    def good_end(self, rev_range: str | None) -> list[str] | None:
        """``[full, short, subject]`` of A in ``A..B``: the good end, which `git log A..B`
        leaves out but a bisect must start from (as `git bisect start B A` does). None for
        no range, a symmetric ``A...B`` or an empty A."""
        if rev_range is None or "..." in rev_range or ".." not in rev_range:
            return None
        start = rev_range.split("..", 1)[0]
        if not start:
            return None
        shown = _git(
            ["log", "-1", "--format=%H%x00%h%x00%s", f"{start}^{{commit}}", "--"],
            self.root,
            self.where,
        )
        if shown.returncode != 0:
            raise InputError(
                f"git cannot find the start of --rev-range {start!r} ({_first_error(shown)})",
                self.where,
                "check --rev-range (A..B with commits that exist)",
            )
        fields = shown.stdout.decode(errors="replace").strip().split("\0", 2)
        return fields if len(fields) == 3 else None

    def companions(self, commit: str, scratch: Path) -> list[str]:
        """Repository paths of the sidecar and the safe external-data files of one version."""
        names = [sidecar_path(Path(self.relative)).name]
        names += inside(self._model_locations(commit), scratch)
        return [(self.folder / name).as_posix() for name in dict.fromkeys(names)]


def _single_version(history: _History, relative: str, rev_range: str | None) -> InputError:
    """A bisect needs two versions; say why there is one. A shallow clone (what
    actions/checkout makes by default) holds only its newest commits, so there the fix is
    the whole history, not another model."""
    shallow = _git(["rev-parse", "--is-shallow-repository"], history.root, history.where)
    in_range = f" in {rev_range}" if rev_range else " in this history"
    problem = f"only one version of {relative}{in_range}, and a bisect needs two"
    if shallow.returncode == 0 and shallow.stdout.strip() == b"true":
        return InputError(
            f"{problem}: the clone is shallow",
            history.where,
            "fetch the whole history (git fetch --unshallow; in GitHub Actions "
            "actions/checkout with fetch-depth: 0)",
        )
    fix = "widen --rev-range" if rev_range else "bisect a file with two or more committed versions"
    return InputError(problem, history.where, fix)


def from_git(path: Path, rev_range: str | None, workdir: Path) -> list[TimelineEntry]:
    """Every committed version of one model file, oldest first, each written to
    ``workdir/<n>_<shortsha>/<name>`` with its external-data files and sidecar JSON from the
    same commit (a model is only runnable with the weights of its own commit).

    A commit that changes only a companion (new weights in ``m.onnx.data``, a new sidecar)
    is a new version too, so the history follows the companions' paths as well. With
    ``rev_range`` ``A..B`` the first version is the one in effect at A (labelled with A), then
    each commit of ``A..B`` that changes it: A is the known-good end, as for `git bisect`.
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
    good_end = history.good_end(rev_range)
    for _ in range(4):  # companions found in old versions may add commits: reach a fixed point
        commits = ([good_end] if good_end else []) + history.commits(rev_range, tracked)
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
    if len(versions) == 1:
        raise _single_version(history, relative, rev_range)
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
        for entry, (full, _, subject) in zip(make_entries(items), versions, strict=True)
    ]
