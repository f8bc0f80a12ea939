"""The rows on which the first bad model got worse the most: pure numpy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

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
    growth = error_growth(target, before, after)
    if n <= 0 or growth.size == 0:
        return ()
    k = min(n, growth.size)
    top = np.argpartition(-growth, k - 1)[:k] if k < growth.size else np.arange(growth.size)
    # argpartition may cut a tie at the boundary arbitrarily: widen to every tied row first
    cut = growth[top].min()
    top = np.flatnonzero(growth >= cut)
    order = top[np.lexsort((top, -growth[top]))][:k]
    order = order[growth[order] > 0]
    rows = order if row_numbers is None else np.asarray(row_numbers)[order]
    names = ids(rows) if ids is not None else [None] * order.size
    return tuple(
        RowChange(int(r), float(target[i]), float(before[i]), float(after[i]), name)
        for i, r, name in zip(order, rows, names, strict=True)
    )
