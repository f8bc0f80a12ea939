"""The rows on which the first bad model got worse the most: pure numpy, a block of rows at
a time (each block's own leaders are candidates), so the growth of every row is never held
at once: at 10M rows that would be one more float64 vector (80 MB) at the section's peak."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..metrics import CHUNK_ROWS
from .record import RowChange

__all__ = ["DEFAULT_ROWS", "error_growth", "worst_rows"]

DEFAULT_ROWS = 10


def error_growth(target: np.ndarray, before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """|after - target| - |before - target| per row, in float64."""
    t = np.asarray(target, dtype=np.float64)
    return np.abs(np.asarray(after, dtype=np.float64) - t) - np.abs(
        np.asarray(before, dtype=np.float64) - t
    )


def worst_rows(
    target: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    n: int = DEFAULT_ROWS,
    *,
    row_numbers: np.ndarray | None = None,
    ids: Callable[[np.ndarray], list[str | None]] | None = None,
) -> tuple[RowChange, ...]:
    """The ``n`` rows whose absolute error grew the most (only rows where it grew), largest
    growth first, ties by row. ``row_numbers`` maps positions to rows of the features file
    (rows dropped for non-finite values shift them); ``ids`` looks up an id per chosen row,
    so only ``n`` values of an id column are ever turned into strings."""
    size = int(np.asarray(target).size)
    if n <= 0 or size == 0:
        return ()
    k = min(n, size)
    index, growth = _leaders(target, before, after, k)
    # The first k by growth, ties by row: every one of them is among its own block's k
    # leaders (ties at a block's cut all kept), so the candidates hold them all.
    order = np.lexsort((index, -growth))[:k]
    order = order[growth[order] > 0]
    order = index[order]
    rows = order if row_numbers is None else np.asarray(row_numbers)[order]
    names = ids(rows) if ids is not None else [None] * order.size
    return tuple(
        RowChange(int(r), float(target[i]), float(before[i]), float(after[i]), name)
        for i, r, name in zip(order, rows, names, strict=True)
    )


def _leaders(
    target: np.ndarray, before: np.ndarray, after: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions and growth of the rows that rank among the first ``k`` of their block."""
    found_index, found_growth = [], []
    for start in range(0, int(np.asarray(target).size), CHUNK_ROWS):
        stop = start + CHUNK_ROWS
        growth = error_growth(target[start:stop], before[start:stop], after[start:stop])
        if growth.size > k:
            cut = np.partition(growth, growth.size - k)[growth.size - k]  # k-th largest
            keep = np.flatnonzero(growth >= cut)
        else:
            keep = np.arange(growth.size)
        found_index.append(keep + start)
        found_growth.append(growth[keep])
    return np.concatenate(found_index), np.concatenate(found_growth)
