"""The on-disk evaluation cache: a rerun with unchanged inputs evaluates nothing.

One entry is ``<key>.json`` (the record, plus the checksum and row count of the predictions)
and, optionally, ``<key>.npy``. The ``.npy`` is written first and the ``.json`` last, each
through a temporary file and ``os.replace``, so a reader that finds the JSON finds complete
predictions; anything that does not check out is a miss and is removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import secrets
from collections.abc import Callable
from enum import Enum
from pathlib import Path, PurePath
from typing import Any, TypeVar, overload

import numpy as np

from ..errors import InputError
from ..files import open_regular, read_bytes_bounded, write_bytes_atomic, write_text_atomic
from ..safetext import unicode_safe

__all__ = ["CACHE_FORMAT", "EvalCache"]

# Bumped when the entry layout changes, so old entries become misses instead of wrong hits.
CACHE_FORMAT = 1
_T = TypeVar("_T")
_KEY = re.compile(r"[0-9a-f]{64}")
_MAX_RECORD_BYTES = 16 << 20  # a record is a few kB of metrics


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
            meta = json.loads(read_bytes_bounded(meta_path, _MAX_RECORD_BYTES).decode("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError):
            self._remove(key)
            return None
        try:
            if meta["format"] != CACHE_FORMAT or not isinstance(meta["record"], dict):
                raise ValueError("layout")
            predictions = None
            if meta["rows"] is not None:
                with open_regular(npy_path) as handle:
                    predictions = np.load(handle, allow_pickle=False)
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
                write_bytes_atomic(npy_path, buffer.getvalue())
            else:
                npy_path.unlink(missing_ok=True)
            write_text_atomic(meta_path, json.dumps(meta, sort_keys=True))
        except OSError as exc:
            raise InputError(
                f"cannot write the evaluation cache ({exc.__class__.__name__}: {exc.strerror})",
                str(self.folder),
                "make the folder writable, choose another with MODEL_BISECT_CACHE_DIR, "
                "or pass --no-cache",
            ) from None

    def _remove(self, key: str) -> None:
        for path in self._paths(key):
            with contextlib.suppress(OSError):  # a read-only cache still answers "miss"
                path.unlink(missing_ok=True)
