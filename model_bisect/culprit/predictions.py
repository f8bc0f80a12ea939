"""Where two prediction vectors part: their agreement, and both models' error per group of
rows (deciles of the target, values of a string column), worst group first.

Pure functions over arrays. Per-group sums run a block of rows at a time (``np.add.at``, in
row order, which is ``np.bincount``'s order), so a breakdown of 500,000 rows costs
milliseconds and at 10M rows no float64 copy of a whole column is made: the predictions stay
in their float32, the culprit section's peak is set by what the search left alive.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ..metrics import CHUNK_ROWS, exact_mean, float64_chunks, pairwise_sum
from .record import Agreement, SliceChange

__all__ = ["DECILES", "agreement", "by_decile", "by_value", "plcc", "plcc_loaded"]

DECILES = "target decile"


def plcc(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's r in float64; NaN when either side is constant or has fewer than 3 rows."""
    return plcc_loaded(lambda: a, lambda: b)


def plcc_loaded(load_a: Callable[[], np.ndarray], load_b: Callable[[], np.ndarray]) -> float:
    """``plcc(load_a(), load_b())``, holding one of the two inputs at a time: with
    predictions read back from disk, the other waits there while a centred copy is made."""
    a = np.asarray(load_a()).reshape(-1)
    if a.size < 3:
        return math.nan
    # The centred copies are the only whole float64 vectors of the section: the dot products
    # are BLAS's, and summing them in blocks would move the last bits of the report.
    x = np.subtract(a, exact_mean(a), dtype=np.float64)
    del a
    b = np.asarray(load_b()).reshape(-1)
    y = np.subtract(b, exact_mean(b), dtype=np.float64)
    del b
    scale = math.sqrt(float(x @ x) * float(y @ y))
    return float(x @ y) / scale if scale > 0 else math.nan


def agreement(
    before: np.ndarray, after: np.ndarray, *, known_plcc: float | None = None
) -> Agreement:
    """PLCC between the two models' predictions (``known_plcc`` when the caller computed it
    already) and their mean and largest absolute gap."""
    before = np.asarray(before).reshape(-1)
    after = np.asarray(after).reshape(-1)
    n = int(before.size)

    def gap(a: int, b: int) -> np.ndarray:
        block: np.ndarray = np.abs(np.asarray(after[a:b], dtype=np.float64) - before[a:b])
        return block

    largest = max(
        (float(gap(a, a + CHUNK_ROWS).max()) for a in range(0, n, CHUNK_ROWS)), default=0.0
    )
    return Agreement(
        plcc=plcc(before, after) if known_plcc is None else known_plcc,
        mean_abs=pairwise_sum(gap, n) / n if n else math.nan,
        max_abs=largest if n else math.nan,
        rows=n,
    )


def _grouped(
    groups: Callable[[int, int], np.ndarray],
    names: Sequence[str],
    column: str,
    target: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
) -> tuple[SliceChange, ...]:
    """Both models' RMSE and PLCC on each group ``0 .. len(names) - 1`` (other codes are
    ignored) of the rows, whose group numbers ``groups(start, stop)`` gives a block at a
    time; ranked by how much RMSE grew, then by name."""
    k = len(names)
    count = np.zeros(k, dtype=np.int64)
    sums_t, sums_tt = np.zeros(k), np.zeros(k)
    stats = [tuple(np.zeros(k) for _ in range(4)) for _ in (before, after)]
    rows = int(np.asarray(target).size)
    blocks = float64_chunks(np.asarray(target).reshape(-1), before, after)
    for start, (t, p_before, p_after) in zip(range(0, rows, CHUNK_ROWS), blocks, strict=True):
        g = np.asarray(groups(start, start + t.size))
        inside = (g >= 0) & (g < k)
        if not inside.all():  # the usual case needs no copy through a mask
            g, t, p_before, p_after = g[inside], t[inside], p_before[inside], p_after[inside]
        g = g.astype(np.intp, copy=False)
        count += np.bincount(g, minlength=k)
        np.add.at(sums_t, g, t)
        np.add.at(sums_tt, g, t * t)
        for p, (squared, s_p, s_pp, s_pt) in zip((p_before, p_after), stats, strict=True):
            e = p - t
            np.add.at(squared, g, e * e)
            np.add.at(s_p, g, p)
            np.add.at(s_pp, g, p * p)
            np.add.at(s_pt, g, p * t)
    found = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for i, name in enumerate(names):
            n = float(count[i])
            if n == 0:
                continue
            row = []
            for squared, s_p, s_pp, s_pt in stats:
                rmse = math.sqrt(squared[i] / n)
                cov = s_pt[i] - s_p[i] * sums_t[i] / n
                var_p = s_pp[i] - s_p[i] ** 2 / n
                var_t = sums_tt[i] - sums_t[i] ** 2 / n
                ok = n >= 3 and var_p > 1e-12 * max(1.0, s_pp[i]) and var_t > 0
                r = cov / math.sqrt(var_p * var_t) if ok else math.nan
                row.append((rmse, max(-1.0, min(1.0, r)) if ok else math.nan))
            (rmse_a, r_a), (rmse_b, r_b) = row
            found.append(SliceChange(column, name, int(n), rmse_a, rmse_b, r_a, r_b))
    found.sort(key=lambda s: (-s.rmse_growth, s.value))
    return tuple(found)


def by_decile(target: np.ndarray, before: np.ndarray, after: np.ndarray) -> tuple[SliceChange, ...]:
    """The rows cut into ten groups by the target's deciles (ties stay in one group, so a
    coarse target may give fewer), each named ``d1 [low, high]`` by its target range."""
    t = np.asarray(target).reshape(-1)  # float32 as the file stores it, or float64
    if t.size == 0:
        return ()
    # The quantiles of the float64 values, as np.quantile gives them on a float64 target:
    # on one float64 copy that it may reorder (overwrite_input), so that a float32 target
    # costs no float64 copy beside the one numpy would make to partition.
    whole = np.array(t, dtype=np.float64)
    edges = np.unique(np.quantile(whole, np.linspace(0.0, 1.0, 11)[1:-1], overwrite_input=True))
    del whole
    # Named by the cut points, not by each group's own extremes: np.minimum.at over 500,000
    # rows would cost more than the whole breakdown.
    bounds = [float(t.min()), *edges.tolist(), float(t.max())]
    names = [f"d{i + 1} [{bounds[i]:.4g}, {bounds[i + 1]:.4g}]" for i in range(edges.size + 1)]

    def groups(start: int, stop: int) -> np.ndarray:
        return np.searchsorted(edges, np.asarray(t[start:stop], dtype=np.float64), side="right")

    return _grouped(groups, names, DECILES, t, before, after)


def by_value(
    column: str,
    codes: np.ndarray,
    vocabulary: Sequence[str],
    target: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
) -> tuple[SliceChange, ...]:
    """One group per value of a dictionary-coded string column (code -1, a null, is its own
    group ``(null)``)."""
    codes = np.asarray(codes).reshape(-1)
    null = len(vocabulary)

    def groups(start: int, stop: int) -> np.ndarray:
        block = codes[start:stop]
        return np.where(block < 0, null, block)

    return _grouped(groups, [*vocabulary, "(null)"], column, target, before, after)
