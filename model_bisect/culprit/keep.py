"""Predictions kept through a bisect for the two models that end up at the boundary.

The search cannot know in advance which models those are, but in a good...bad timeline they
are always the highest good index and the lowest bad index seen so far: holding just those
two (and the ones still being judged) costs two arrays, not one per visited model. Models
are keyed by content, as the engine's memo is, so a duplicate of a kept model (evaluated
once) still finds its predictions. Standard library only: the engine creates one every run.

From SPILL_MIN_ROWS rows the two kept arrays wait in anonymous temporary files, not in
memory: at 10M rows they were 80 MB of the search's peak, which is set while a third
model's predictions are being ranked. Writing one costs tens of milliseconds (the page cache
takes it) against the model's second of inference; reading them back happens once, for the
section, after the search.
"""

from __future__ import annotations

import tempfile
import threading
import weakref
from typing import IO, TYPE_CHECKING

from ..report import Status

if TYPE_CHECKING:
    import numpy as np

__all__ = ["SPILL_MIN_ROWS", "Boundary"]

SPILL_MIN_ROWS = 1 << 21  # predictions this long are kept on disk until the section


class _Spilled:
    """An array written to an unnamed temporary file (gone when this is)."""

    def __init__(self, predictions: np.ndarray) -> None:
        import numpy as np

        values = np.ascontiguousarray(predictions)
        self._dtype, self._shape = values.dtype, values.shape
        # Open for the life of this object (no with): closing the file deletes it.
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="model-bisect-boundary-")  # noqa: SIM115
        weakref.finalize(self, self._file.close)
        # The array's own bytes, both ways: np.save and np.load would go through a bytes
        # object as large as the array (a buffered file is no "real" file to them).
        self._file.write(values.data.cast("B"))
        self._file.flush()

    def load(self) -> np.ndarray:
        import numpy as np

        loaded = np.empty(self._shape, dtype=self._dtype)
        self._file.seek(0)
        if self._file.readinto(loaded.data.cast("B")) != loaded.nbytes:  # type: ignore[attr-defined]
            raise OSError("a kept prediction file came back short")
        return loaded


def _stored(predictions: np.ndarray | _Spilled) -> np.ndarray | _Spilled:
    if isinstance(predictions, _Spilled) or predictions.size < SPILL_MIN_ROWS:
        return predictions
    try:
        return _Spilled(predictions)
    except OSError:  # no room in the temporary folder: keep it in memory, as before
        return predictions


class Boundary:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, np.ndarray] = {}
        self._good: tuple[int, str, np.ndarray | _Spilled] | None = None
        self._bad: tuple[int, str, np.ndarray | _Spilled] | None = None

    def offer(self, key: str, predictions: np.ndarray) -> None:
        """A model's predictions, before it is judged."""
        with self._lock:
            self._pending[key] = predictions

    def judged(self, index: int, key: str, status: Status) -> None:
        """Keep the predictions when the model is the new highest good or lowest bad one."""
        with self._lock:
            predictions: np.ndarray | _Spilled | None = self._pending.pop(key, None)
            for kept in (self._good, self._bad):
                if predictions is None and kept is not None and kept[1] == key:
                    predictions = kept[2]
            if status is Status.BAD and self._bad is None:
                _warm_up()
            if predictions is None:
                return
            if status is Status.GOOD and (self._good is None or index > self._good[0]):
                self._good = None  # the one it replaces goes before this one is written
                self._good = (index, key, _stored(predictions))
            elif status is Status.BAD and (self._bad is None or index < self._bad[0]):
                self._bad = None
                self._bad = (index, key, _stored(predictions))

    def spilled(self, index: int) -> bool:
        """Whether the model's kept predictions wait on disk (each ``get`` reads them)."""
        with self._lock:
            return any(
                kept is not None and kept[0] == index and isinstance(kept[2], _Spilled)
                for kept in (self._good, self._bad)
            )

    def get(self, index: int) -> np.ndarray | None:
        with self._lock:
            for kept in (self._good, self._bad):
                if kept is not None and kept[0] == index:
                    found = kept[2]
                    return found.load() if isinstance(found, _Spilled) else found
            return None


def _warm_up() -> None:
    """Import what the section needs on a background thread once a model fails: the search
    still has models to run (ONNX Runtime releases the GIL), and a bad model makes a culprit
    section likely. ``import onnx`` alone costs about a quarter of a second."""

    def load() -> None:
        import importlib

        for name in ("onnx",):
            try:
                importlib.import_module(name)
            except ImportError:  # reported where it is needed, not here
                return

    threading.Thread(target=load, name="culprit-imports", daemon=True).start()
