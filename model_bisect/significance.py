"""Is a model's drop from the anchor (the first model) real, or noise of these rows?

Both models are scored on the same rows against the same target, so their metrics are
dependent: an independent-samples test would be far too conservative. Each metric's catalogue
entry names its test: Williams' test for two correlations sharing a variable (PLCC), or a
paired bootstrap (each resample draws the same rows for both models) of the metric's own
statistic (SROCC, KROCC, RMSE), on at most the entry's ``boot_rows`` rows.

scipy is imported only inside ``williams_test`` (Student's t has no closed form worth
writing), so a run without --significance never loads it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from .catalogue import DropTest, MappingName, metric_spec
from .metrics import apply_mapping, as_vectors, kendall, pearson
from .ranks import mid_ranks

__all__ = ["drop_p_value", "williams_test"]

# The paired bootstrap works on at most the catalogue's ``boot_rows`` rows (a fixed-seed
# subsample above it). Above the cap the resampled deltas are shrunk by sqrt(m/n) around the
# full-data delta (the m-out-of-n bootstrap, valid for these asymptotically normal
# statistics), so the test keeps the power of all n rows.
_CHUNK_CELLS = 1_000_000  # resamples x rows handled at once, about 8 MB per array


def williams_test(r_ta: float, r_tb: float, r_ab: float, n: int) -> float:
    """One-sided p-value that corr(target, b) < corr(target, a), Williams' T2.

    Steiger (1980, Psychological Bulletin 87:245, eq. 7) recommends T2 for comparing two
    correlations that share a variable; it follows Student's t with n - 3 degrees of
    freedom. NaN when n <= 3 or a correlation is undefined.
    """
    rs = (r_ta, r_tb, r_ab)
    if n <= 3 or not all(math.isfinite(r) for r in rs):
        return math.nan
    r_ta, r_tb, r_ab = (max(-1.0, min(1.0, r)) for r in rs)
    det = 1.0 - r_ta**2 - r_tb**2 - r_ab**2 + 2.0 * r_ta * r_tb * r_ab
    det = max(det, 0.0)  # a correlation matrix is positive semi-definite; rounding is not
    mean = (r_ta + r_tb) / 2.0
    denom = 2.0 * (n - 1) / (n - 3) * det + mean**2 * (1.0 - r_ab) ** 3
    diff = r_ta - r_tb
    if denom <= 0.0:
        # Only a degenerate matrix gets here (e.g. b identical to a): the difference is
        # then either exactly zero or infinitely many standard errors.
        return 0.5 if diff == 0.0 else (0.0 if diff > 0.0 else 1.0)
    t2 = diff * math.sqrt((n - 1) * (1.0 + r_ab) / denom)
    from scipy import stats

    return float(stats.t.sf(t2, n - 3))


def _draws(rng: np.random.Generator, m: int, resamples: int) -> Iterator[np.ndarray]:
    """Row counts of each resample, a chunk at a time: resample b is rng.integers(0, m,
    size=m), drawn in order (so a plain loop with the same seed draws the same rows)."""
    chunk = max(1, _CHUNK_CELLS // m)
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        idx = rng.integers(0, m, size=(rows, m))
        flat = (idx + m * np.arange(rows)[:, None]).ravel()
        yield np.bincount(flat, minlength=rows * m).reshape(rows, m).astype(np.float64)


class _MidRanks:
    """Mid-ranks of one column inside resamples given as row counts, in O(rows) each.

    A row drawn c times occupies c consecutive ranks; rows with equal values share a tie
    group, whose members all get the group's average rank, as scipy's rankdata does.
    """

    def __init__(self, values: np.ndarray) -> None:
        self.order = np.argsort(values, kind="stable")
        ordered = values[self.order]
        new_group = np.concatenate([[True], ordered[1:] != ordered[:-1]])
        self.starts = np.flatnonzero(new_group)
        self.group = np.empty(values.size, dtype=np.intp)
        self.group[self.order] = np.cumsum(new_group) - 1

    def ranks(self, counts: np.ndarray) -> np.ndarray:
        ordered = counts[:, self.order]
        if self.starts.size == counts.shape[1]:  # no ties: every row is its own group
            out = np.empty_like(counts)
            out[:, self.order] = np.cumsum(ordered, axis=1) - (ordered - 1.0) / 2.0
            return out
        sums = np.add.reduceat(ordered, self.starts, axis=1)
        # A group of g draws ending at rank e holds ranks e-g+1 .. e, averaging e - (g-1)/2.
        return np.asarray((np.cumsum(sums, axis=1) - (sums - 1.0) / 2.0)[:, self.group])


class _SpearmanDeltas:
    """Spearman's rho of the model minus the anchor's, per resample, from row counts."""

    def __init__(self, t: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
        self.rankers = (_MidRanks(t), _MidRanks(a), _MidRanks(b))

    def deltas(self, counts: np.ndarray) -> np.ndarray:
        # Mid-ranks of m draws always average (m + 1) / 2, so centring needs no weighted mean.
        centre = (counts.shape[1] + 1) / 2.0
        rt, ra, rb = (r.ranks(counts) - centre for r in self.rankers)
        wt = counts * rt
        st = (wt * rt).sum(axis=1)
        rho = []
        for r in (ra, rb):
            denom = np.sqrt(st * (counts * r * r).sum(axis=1))
            out = np.full(denom.shape, np.nan)
            np.divide((wt * r).sum(axis=1), denom, out=out, where=denom > 0)
            rho.append(out)
        return np.asarray(rho[1] - rho[0])


class _KendallForms:
    """Tau-b of resamples as quadratic forms in the row counts c.

    With S_x[i, j] = sign(x_i - x_j), a resample's concordant minus discordant pairs are
    c' (S_t * S_a) c / 2 and its pairs untied in x are c' |S_x| c / 2 (draws of one row tie
    with each other, and the zero diagonal says so), so tau-b is exact for every resample.
    Integer counts and signs make float32 products exact below 2**24.
    """

    def __init__(self, t: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
        st, sa, sb = (np.sign(v[:, None] - v[None, :]).astype(np.float32) for v in (t, a, b))
        self.m = t.size
        self.forms = np.hstack([st * sa, st * sb, np.abs(st), np.abs(sa), np.abs(sb)])

    def deltas(self, counts: np.ndarray) -> np.ndarray:
        c = counts.astype(np.float32)
        q = ((c @ self.forms).reshape(c.shape[0], 5, self.m) * c[:, None, :]).sum(axis=2)
        q = q.astype(np.float64)
        tau = np.full((c.shape[0], 2), np.nan)
        for k, own in ((0, 3), (1, 4)):
            denom = np.sqrt(q[:, 2] * q[:, own])
            np.divide(q[:, k], denom, out=tau[:, k], where=denom > 0)
        return np.asarray(tau[:, 1] - tau[:, 0])


class _RmseDeltas:
    """RMSE of the model minus the anchor's, per resample, from row counts."""

    def __init__(self, ea: np.ndarray, eb: np.ndarray) -> None:
        self.ea, self.eb = ea, eb  # squared errors

    def deltas(self, counts: np.ndarray) -> np.ndarray:
        total = counts.sum(axis=1)
        return np.asarray(np.sqrt(counts @ self.eb / total) - np.sqrt(counts @ self.ea / total))


def _change(test: DropTest, t: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """b's statistic minus a's on these rows; for RMSE, a and b hold the squared errors."""
    if test is DropTest.SPEARMAN_BOOTSTRAP:
        rt = mid_ranks(t)  # ranked once for both models
        return pearson(mid_ranks(b), rt) - pearson(mid_ranks(a), rt)
    if test is DropTest.KENDALL_BOOTSTRAP:
        return kendall(b, t) - kendall(a, t)
    if test is DropTest.RMSE_BOOTSTRAP:
        return math.sqrt(float(np.mean(b))) - math.sqrt(float(np.mean(a)))
    raise ValueError(f"no {test.value} bootstrap is implemented")


def _resampled(
    test: DropTest, t: np.ndarray, a: np.ndarray, b: np.ndarray
) -> _SpearmanDeltas | _KendallForms | _RmseDeltas:
    if test is DropTest.SPEARMAN_BOOTSTRAP:
        return _SpearmanDeltas(t, a, b)
    if test is DropTest.KENDALL_BOOTSTRAP:
        return _KendallForms(t, a, b)
    if test is DropTest.RMSE_BOOTSTRAP:
        return _RmseDeltas(a, b)
    raise ValueError(f"no {test.value} bootstrap is implemented")


def drop_p_value(
    metric: str,
    target: np.ndarray,
    anchor_pred: np.ndarray,
    model_pred: np.ndarray,
    *,
    mapping: str = MappingName.NONE.value,
    resamples: int = 1000,
    seed: int = 0,
) -> float:
    """One-sided p-value that the model is worse than the anchor on ``metric``, same rows.

    The catalogue entry's ``drop_test`` decides how. Williams' test runs on the mapped
    predictions. A paired bootstrap gives p = (1 + #resamples where the model is not worse) /
    (resamples + 1), a resample whose metric is undefined counting as not worse; for RMSE
    the mapping is fitted once on all rows and held fixed in the resamples. Above the entry's
    ``boot_rows`` the bootstrap runs on a fixed-seed subsample, rescaled as described above.
    NaN when undefined or when the metric has no test. UnknownMetricError for a name outside
    the catalogue.
    """
    spec = metric_spec(metric)
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    test = spec.drop_test
    if test is DropTest.NONE:
        return math.nan
    t, a, b = as_vectors(target, anchor_pred, model_pred)
    n = int(t.size)
    if n < 3:
        return math.nan
    if spec.mapped:
        a = apply_mapping(a, t, mapping)
        b = apply_mapping(b, t, mapping)
    if test is DropTest.WILLIAMS:
        return williams_test(pearson(t, a), pearson(t, b), pearson(a, b), n)
    if spec.boot_rows is None:
        raise ValueError(f"{metric}'s {test.value} test needs boot_rows in its catalogue entry")
    if test is DropTest.RMSE_BOOTSTRAP:  # from here on a and b are squared errors
        a, b = (a - t) ** 2, (b - t) ** 2
    # Every delta below is model minus anchor, turned by the metric's direction into
    # "how much worse" (positive = worse).
    full = spec.worse_by(_change(test, t, a, b))
    if not math.isfinite(full):
        return math.nan

    rng = np.random.default_rng(seed)
    cap = spec.boot_rows
    if n > cap:
        rows = np.sort(rng.choice(n, size=cap, replace=False))
        t, a, b = t[rows], a[rows], b[rows]
    m = int(t.size)
    sub = full if m == n else spec.worse_by(_change(test, t, a, b))
    if not math.isfinite(sub):
        return math.nan
    resampled = _resampled(test, t, a, b)
    not_worse = 0
    for counts in _draws(rng, m, resamples):
        deltas = spec.worse_sign * resampled.deltas(counts)
        if m < n:
            deltas = full + (deltas - sub) * math.sqrt(m / n)
        not_worse += int(np.count_nonzero(~(deltas > 0.0)))  # NaN counts as not worse
    return (1 + not_worse) / (resamples + 1)
