"""Where a command may write: output paths are checked before any work, so a bad one costs a
second, not a whole bisect, and an output never overwrites the files it is computed from.
`model-bisect run`, `model-bisect publish` and `cache_builder` all check here.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

from .errors import InputError, UsageError
from .safetext import unicode_safe

__all__ = ["STDOUT", "check_outputs", "check_writable", "file_identity", "refuse_inputs"]

# Write ends of FIFOs that passed the reader probe (see _unwritable).
_HELD_WRITERS: list[int] = []

STDOUT = "-"  # an output path meaning standard output


def _shown(path: Path) -> str:
    return unicode_safe(str(path))[:300]


def _unwritable(path: Path) -> str | None:
    """Why ``path`` cannot take an atomic write (which replaces it through a sibling file,
    following symlinks), or None when it can."""
    try:
        info: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        info = None
    except NotADirectoryError:
        return "a folder above it is a file"
    except (OSError, ValueError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return f"cannot be looked up ({problem})"
    if info is not None and stat.S_ISDIR(info.st_mode):
        return "is a directory"
    if info is not None and stat.S_ISFIFO(info.st_mode):
        try:  # a FIFO with no reader would block the write forever; this probe does not
            probe = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return "is a FIFO that nothing reads"
        # Held open until the process ends: closing it now would be the reader's end of
        # file when we are its only writer, and the real write would then find no reader.
        _HELD_WRITERS.append(probe)
    if info is not None and not os.access(path, os.W_OK):
        return "is not writable"
    if info is not None and not stat.S_ISREG(info.st_mode):
        return None  # a FIFO or a device (/dev/stdout) is written straight into, not replaced
    try:
        folder = Path(os.path.realpath(path)).parent
    except (OSError, ValueError) as exc:
        return f"cannot be resolved ({exc.__class__.__name__})"
    for candidate in [folder, *folder.parents]:  # missing folders are created on write
        try:
            found = os.stat(candidate)
        except FileNotFoundError:
            continue
        except OSError as exc:
            return f"cannot be looked up ({exc.strerror or exc.__class__.__name__})"
        if not stat.S_ISDIR(found.st_mode):
            return f"a folder above it, {_shown(candidate)}, is a file"
        if not os.access(candidate, os.W_OK | os.X_OK):
            return f"is in a read-only folder, {_shown(candidate)}"
        return None
    return "has no existing folder above it"


WRITABLE_FIX = "pass a file path you can write"


def check_writable(flag: str, path: Path, fix: str = WRITABLE_FIX) -> None:
    """Refuse a file path (not ``-``) that an atomic write could not land at: a directory, a
    FIFO nobody reads, a read-only file or folder, a file used as a folder."""
    problem = _unwritable(path)
    if problem is not None:
        raise InputError(f"{flag} target {problem}", _shown(path), fix)


def check_outputs(outputs: Sequence[tuple[str, Path]]) -> None:
    """Refuse output paths that cannot be written (a directory, a read-only folder, a file
    used as a folder), two flags naming one file, or two flags both sent to stdout."""
    to_stdout = [flag for flag, path in outputs if str(path) == STDOUT]
    if len(to_stdout) > 1:
        raise UsageError(
            f"{' and '.join(to_stdout)} both write to standard output",
            "model-bisect run",
            "send at most one of them to -",
        )
    files = [(flag, path) for flag, path in outputs if str(path) != STDOUT]
    for flag, path in files:
        check_writable(flag, path)
    if len(files) == 2 and file_identity(files[0][1]) == file_identity(files[1][1]):
        raise UsageError(
            "--json and --markdown name the same file",
            _shown(files[0][1]),
            "give each its own file",
        )


def file_identity(path: Path | str) -> tuple[object, ...]:
    """The file ``path`` is (device and inode, so hard links and symlinks match), or its
    resolved name when it does not exist yet."""
    try:
        info = os.stat(path)
        return ("inode", info.st_dev, info.st_ino)
    except (OSError, ValueError):
        try:
            return ("name", os.path.realpath(path))
        except (OSError, ValueError):
            return ("name", os.path.abspath(path))


def refuse_inputs(
    outputs: Sequence[tuple[str, Path]],
    inputs: Iterable[Path | str],
    *,
    noun: str = "the run's input",
    fix: str = "write the output to another file",
) -> None:
    """Refuse an output path that is one of the inputs (for a run: features, a model, its
    sidecar or external data, the timeline file), through a symlink or a hard link too:
    writing the output must never destroy what it was computed from."""
    files = [(flag, path) for flag, path in outputs if str(path) != STDOUT]
    if not files:
        return
    known = {file_identity(path): path for path in inputs}
    for flag, path in files:
        found = known.get(file_identity(path))
        if found is not None:
            raise InputError(
                f"{flag} would overwrite {noun} {_shown(Path(found))}", _shown(path), fix
            )
