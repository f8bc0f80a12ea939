"""The on-disk evaluation cache: a rerun with unchanged inputs evaluates nothing.

One entry is ``<key>.json`` (the record, plus the checksum and row count of the predictions)
and, optionally, ``<key>.npy``. The ``.npy`` is written first and the ``.json`` last, each
through a temporary file and ``os.replace``, so a reader that finds the JSON finds complete
predictions; anything that does not check out is a miss and is removed.

A cache folder may be shared, so its entries are as untrusted as a model: they are opened
with ``O_NOFOLLOW`` and must be regular files (a symlink, dangling or not, a directory or a
FIFO named like an entry is a miss), a write goes through a temporary file of our own that
``os.replace`` renames over the entry's name (a planted link is replaced, its target never
touched), and the JSON carries a checksum of its own content, so a hand-edited record is a
miss rather than an answer. The checksum is not a signature: whoever can write the folder
can recompute it, which is why the cache folder must be the user's own.

The folder is kept under a size bound by ``prune``: least recently used entries go first (a hit
refreshes its entry's time), never one this process read or wrote. An entry is removed JSON
first, so an interrupted eviction leaves at most predictions without a record, which is a miss
and the next prune's first candidate; links and anything not named like an entry are left alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePath
from typing import Any, TypeVar, overload

import numpy as np

from ..errors import InputError
from ..safetext import unicode_safe

__all__ = ["CACHE_FORMAT", "DEFAULT_MAX_MB", "EvalCache", "Pruned"]

# Bumped when the entry layout changes, so old entries become misses instead of wrong hits.
CACHE_FORMAT = 1
_T = TypeVar("_T")
_KEY = re.compile(r"[0-9a-f]{64}")
_MAX_RECORD_BYTES = 16 << 20  # a record is a few kB of metrics
_MAX_PREDICTIONS_BYTES = 1 << 31
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NEW_FILE_MODE = 0o666  # the umask applies, as for any file the user creates
_ENTRY_FILE = re.compile(r"([0-9a-f]{64})\.(json|npy)")
# The folder's bound when neither --cache-max-mb nor MODEL_BISECT_CACHE_MAX_MB says: records
# are a few kB, predictions (kept for --significance) 8 MB per million rows.
DEFAULT_MAX_MB = 2048


@dataclass(frozen=True)
class Pruned:
    """What one ``prune`` did: entries removed, bytes freed, bytes the folder's entries hold now."""

    removed: int
    freed_bytes: int
    kept_bytes: int


@dataclass
class _Stored:
    """One key's files as found on disk (regular files only, sizes and times from lstat)."""

    names: list[str]
    size: int = 0
    used: float = 0.0  # the record's mtime (refreshed on every hit); the predictions' if orphaned
    has_record: bool = False


def _stored_entries(folder: Path) -> Iterator[tuple[str, str, os.stat_result]]:
    """(key, file name, lstat) of every regular file named like an entry; links, folders and
    temporaries are not entries and are never touched."""
    try:
        listing = list(os.scandir(folder))
    except OSError:
        return
    for item in listing:
        found = _ENTRY_FILE.fullmatch(item.name)
        if found is None:
            continue
        try:
            info = item.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            yield found.group(1), item.name, info


class _NotAnEntry(OSError):
    """The name holds something other than a regular file: a miss, never read or written."""


def _read_entry(path: Path, limit: int) -> bytes:
    """The bytes of a regular file at ``path`` itself (a symlink there is ``_NotAnEntry``,
    never followed), at most ``limit`` of them."""
    flags = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) and not os.path.lexists(path):
            raise
        raise _NotAnEntry(str(path)) from None  # ELOOP: a link; EISDIR; a dangling link
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _NotAnEntry(str(path))
        if info.st_size > limit:
            raise _NotAnEntry(str(path))
        data = handle.read(info.st_size + 1)  # sized from the file: no limit-sized buffer
        if len(data) > info.st_size:  # grew since fstat: read on, still bounded
            data += handle.read(limit + 1 - len(data))
    if len(data) > limit:
        raise _NotAnEntry(str(path))
    return data


def _write_entry(path: Path, data: bytes) -> None:
    """Put ``data`` at ``path`` through a new temporary file in the same folder and
    ``os.replace``: a symlink at ``path`` is replaced by the file, its target untouched.

    ``_NotAnEntry`` when ``path`` is a directory (nothing can replace it); the entry then
    stays a miss."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISDIR(os.lstat(path).st_mode):
            raise _NotAnEntry(str(path))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_BINARY", 0)
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(temporary, flags, _NEW_FILE_MODE)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except IsADirectoryError:
        temporary.unlink(missing_ok=True)
        raise _NotAnEntry(str(path)) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _checksum(meta: dict[str, Any]) -> str:
    """sha256 of the entry's JSON without its checksum field, keys sorted."""
    body = {k: v for k, v in meta.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(value: object) -> object:
    """JSON-able stand-ins for the few non-JSON types a key part can reasonably be."""
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Enum):
        return _canonical(value.value)
    if isinstance(value, (set, frozenset)):
        return sorted((_canonical(v) for v in value), key=repr)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cache key part of type {type(value).__name__} is not JSON-able")


class EvalCache:
    """Evaluation records and predictions by key, in one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.used: set[str] = set()  # keys this process read or wrote: prune keeps them

    @staticmethod
    def default_folder() -> Path:
        """``$MODEL_BISECT_CACHE_DIR``, else ``$XDG_CACHE_HOME/model-bisect``, else the
        platform's user cache folder (``~/.cache/model-bisect`` on Linux and macOS)."""
        override = os.environ.get("MODEL_BISECT_CACHE_DIR")
        if override:
            return Path(override).expanduser()
        xdg = os.environ.get("XDG_CACHE_HOME")
        if xdg and os.path.isabs(xdg):  # the XDG spec says relative values are to be ignored
            return Path(xdg) / "model-bisect"
        local = os.environ.get("LOCALAPPDATA")
        if os.name == "nt" and local:
            return Path(local) / "model-bisect" / "Cache"
        return Path.home() / ".cache" / "model-bisect"

    @staticmethod
    def key(**parts: object) -> str:
        """sha256 of the parts as canonical JSON (sorted keys, tuples as lists), with the
        cache format folded in."""
        text = json.dumps(
            {"cache_format": CACHE_FORMAT, "parts": parts},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=True,
            default=_canonical,
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def check_usable(self) -> None:
        """Fail before any work when the folder cannot hold entries (it is a file, cannot be
        created, or is not writable), instead of after a whole bisect."""
        fix = "choose another with --cache-dir or MODEL_BISECT_CACHE_DIR, or pass --no-cache"
        where = unicode_safe(str(self.folder))[:300]
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            probe = self.folder / f".probe-{os.getpid()}-{secrets.token_hex(4)}"
            probe.write_bytes(b"")
            probe.unlink()
        except (OSError, ValueError) as exc:
            problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise InputError(
                f"the evaluation cache folder cannot be used ({unicode_safe(problem)})",
                where,
                fix,
            ) from None

    def _paths(self, key: str) -> tuple[Path, Path]:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a cache key: {key!r}")  # keys come from EvalCache.key only
        return self.folder / f"{key}.json", self.folder / f"{key}.npy"

    @overload
    def get(self, key: str) -> tuple[dict[str, Any], np.ndarray | None] | None: ...

    @overload
    def get(
        self, key: str, decode: Callable[[dict[str, Any]], _T]
    ) -> tuple[_T, np.ndarray | None] | None: ...

    def get(
        self, key: str, decode: Callable[[dict[str, Any]], Any] | None = None
    ) -> tuple[Any, np.ndarray | None] | None:
        """The stored record (passed through ``decode``) and predictions, or None on a miss.

        An entry that does not check out (corrupt, or a record ``decode`` cannot read, such as
        one an older version wrote) is a miss and is removed; the caller evaluates afresh and
        ``put`` writes the entry again.
        """
        meta_path, npy_path = self._paths(key)
        try:
            # Only regular files, bounded: a shared cache folder is as untrusted as a model's.
            meta = json.loads(_read_entry(meta_path, _MAX_RECORD_BYTES).decode("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError):
            self._remove(key)
            return None
        try:
            if meta["format"] != CACHE_FORMAT or not isinstance(meta["record"], dict):
                raise ValueError("layout")
            if meta["checksum"] != _checksum(meta):
                raise ValueError("checksum")  # edited by hand, or by someone else
            predictions = None
            if meta["rows"] is not None:
                data = _read_entry(npy_path, _MAX_PREDICTIONS_BYTES)
                predictions = np.load(io.BytesIO(data), allow_pickle=False)
                if (
                    predictions.dtype != np.float64
                    or predictions.shape != (int(meta["rows"]),)
                    or hashlib.sha256(predictions.tobytes()).hexdigest() != meta["sha256"]
                ):
                    raise ValueError("predictions")
            record = meta["record"] if decode is None else decode(meta["record"])
        except (
            OSError,
            ValueError,
            LookupError,
            TypeError,
            AttributeError,
            EOFError,
            RecursionError,
        ):
            self._remove(key)
            return None
        self.used.add(key)
        with contextlib.suppress(OSError, NotImplementedError):  # least recently *used*
            os.utime(meta_path, follow_symlinks=False)
        return record, predictions

    def put(self, key: str, record: dict[str, Any], predictions: np.ndarray | None = None) -> None:
        """Store a record (JSON-able) and optional predictions (saved as float64 [rows])."""
        meta_path, npy_path = self._paths(key)
        meta: dict[str, Any] = {"format": CACHE_FORMAT, "record": record, "rows": None}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if predictions is not None:
                values = np.ascontiguousarray(predictions, dtype=np.float64).reshape(-1)
                meta["rows"] = int(values.shape[0])
                meta["sha256"] = hashlib.sha256(values.tobytes()).hexdigest()
                buffer = io.BytesIO()
                np.save(buffer, values, allow_pickle=False)
                _write_entry(npy_path, buffer.getvalue())
            else:
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    npy_path.unlink()  # a link is removed, never its target
            meta["checksum"] = _checksum(meta)
            _write_entry(meta_path, json.dumps(meta, sort_keys=True).encode("utf-8"))
            self.used.add(key)
        except _NotAnEntry:
            return  # a directory squats the entry's name: it stays a miss, the run goes on
        except OSError as exc:
            raise InputError(
                f"cannot write the evaluation cache ({exc.__class__.__name__}: {exc.strerror})",
                str(self.folder),
                "make the folder writable, choose another with MODEL_BISECT_CACHE_DIR, "
                "or pass --no-cache",
            ) from None

    def prune(self, max_bytes: int) -> Pruned:
        """Remove least recently used entries until the folder's entries fit in ``max_bytes``;
        entries this process used stay even when they alone exceed it. Each entry goes record
        first: a reader then misses, it never sees a record without its predictions."""
        stored: dict[str, _Stored] = {}
        for key, name, info in _stored_entries(self.folder):
            entry = stored.setdefault(key, _Stored([]))
            entry.names.append(name)
            entry.size += info.st_size
            if name.endswith(".json"):
                entry.has_record, entry.used = True, info.st_mtime
            elif not entry.has_record:
                entry.used = max(entry.used, info.st_mtime)
        total = sum(entry.size for entry in stored.values())
        removed = freed = 0
        # Orphaned predictions first (an interrupted eviction), then the oldest use.
        order = sorted(stored.items(), key=lambda item: (item[1].has_record, item[1].used))
        for key, entry in order:
            if total <= max_bytes:
                break
            if key in self.used:
                continue
            for name in sorted(entry.names, key=lambda n: not n.endswith(".json")):
                with contextlib.suppress(OSError):  # unlink never follows a link
                    os.unlink(self.folder / name)
            total -= entry.size
            freed += entry.size
            removed += 1
        return Pruned(removed, freed, total)

    def _remove(self, key: str) -> None:
        for path in self._paths(key):
            with contextlib.suppress(OSError):  # a read-only cache still answers "miss"
                path.unlink(missing_ok=True)
