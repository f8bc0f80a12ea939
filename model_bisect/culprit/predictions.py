"""Where two prediction vectors part: their agreement, and both models' error per group of
rows (deciles of the target, values of a string column), worst group first.

Pure functions over arrays. Per-group sums come from ``np.bincount``, one pass per sum, so a
breakdown of 500,000 rows costs milliseconds, not a Python loop per row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .record import Agreement, SliceChange

__all__ = ["DECILES", "agreement", "by_decile", "by_value", "plcc"]

DECILES = "target decile"


def plcc(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's r in float64; NaN when either side is constant or has fewer than 3 rows."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.size < 3:
        return math.nan
    x = x - x.mean()
    y = y - y.mean()
    scale = math.sqrt(float(x @ x) * float(y @ y))
    return float(x @ y) / scale if scale > 0 else math.nan


def agreement(before: np.ndarray, after: np.ndarray) -> Agreement:
    """PLCC between the two models' predictions and their mean and largest absolute gap."""
    gap = np.abs(np.asarray(after, dtype=np.float64) - np.asarray(before, dtype=np.float64))
    return Agreement(
        plcc=plcc(before, after),
        mean_abs=float(gap.mean()) if gap.size else math.nan,
        max_abs=float(gap.max()) if gap.size else math.nan,
        rows=int(gap.size),
    )


def _grouped(
    groups: np.ndarray,
    names: Sequence[str],
    column: str,
    target: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
) -> tuple[SliceChange, ...]:
    """Both models' RMSE and PLCC on each group ``0 .. len(names) - 1`` (other codes are
    ignored), ranked by how much RMSE grew, then by name."""
    k = len(names)
    inside = (groups >= 0) & (groups < k)
    every = bool(inside.all())  # the usual case: no copy of every array through a mask
    g = (groups if every else groups[inside]).astype(np.intp, copy=False)
    t = np.asarray(target, dtype=np.float64)
    t = t if every else t[inside]
    count = np.bincount(g, minlength=k).astype(np.float64)
    sums_t = np.bincount(g, weights=t, minlength=k)
    sums_tt = np.bincount(g, weights=t * t, minlength=k)
    found = []
    stats = []
    for predictions in (before, after):
        p = np.asarray(predictions, dtype=np.float64)
        p = p if every else p[inside]
        e = p - t
        squared = np.bincount(g, weights=e * e, minlength=k)
        s_p = np.bincount(g, weights=p, minlength=k)
        s_pp = np.bincount(g, weights=p * p, minlength=k)
        s_pt = np.bincount(g, weights=p * t, minlength=k)
        stats.append((squared, s_p, s_pp, s_pt))
    with np.errstate(invalid="ignore", divide="ignore"):
        for i, name in enumerate(names):
            n = count[i]
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
    t = np.asarray(target, dtype=np.float64)
    if t.size == 0:
        return ()
    edges = np.unique(np.quantile(t, np.linspace(0.0, 1.0, 11)[1:-1]))
    groups = np.searchsorted(edges, t, side="right")
    # Named by the cut points, not by each group's own extremes: np.minimum.at over 500,000
    # rows would cost more than the whole breakdown.
    bounds = [float(t.min()), *edges.tolist(), float(t.max())]
    names = [f"d{i + 1} [{bounds[i]:.4g}, {bounds[i + 1]:.4g}]" for i in range(edges.size + 1)]
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
    groups = np.where(np.asarray(codes) < 0, len(vocabulary), codes)
    return _grouped(groups, [*vocabulary, "(null)"], column, target, before, after)
