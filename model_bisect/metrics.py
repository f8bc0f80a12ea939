"""How well predictions agree with the subjective target: PLCC, SROCC, KROCC and RMSE.

Following ITU-T P.1401 and the VQEG reports, PLCC and RMSE are computed after an optional
fitted mapping of the predictions onto the target's scale, so a model whose output scale
differs is judged fairly; SROCC and KROCC are rank-based and use the raw predictions.
Every function takes arrays and returns numbers: no files, no models.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special, stats

from .catalogue import CATALOGUE, Interval, MappingName, metric_spec
from .errors import UsageError
from .report import Metrics

__all__ = [
    "MAPPINGS",
    "apply_mapping",
    "as_vectors",
    "compute_metrics",
    "fisher_interval",
    "fit_mapping",
    "kendall",
    "pearson",
    "spearman",
    "target_ranks",
]

MAPPINGS: tuple[str, ...] = tuple(m.value for m in MappingName)

_Z95 = float(stats.norm.ppf(0.975))

# The RMSE interval is a percentile bootstrap with a fixed seed. 1000 resamples of 1M rows
# would be 1e9 draws per model, so above _BOOT_ROWS rows it resamples a fixed-seed subsample
# of that size and shrinks the spread by sqrt(m/n) around the full-data RMSE (the m-out-of-n
# bootstrap, valid because the mean squared error is asymptotically normal).
_BOOT_ROWS = 10_000
_BOOT_RESAMPLES = 1000

# The logistic is fitted on at most this many rows (fixed-seed subsample): its four
# parameters are pinned long before 1M rows, and each optimiser step costs a pass over them.
_LOGISTIC_FIT_ROWS = 20_000
_LOGISTIC_MAX_EVALS = 100  # a real S converges in tens; a straight line drifts for hundreds


def as_vectors(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """The arrays as finite float64 vectors of one length (float32 sums lose digits at 1M)."""
    out = tuple(np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays)
    sizes = {a.size for a in out}
    if len(sizes) > 1:
        raise ValueError(f"arrays differ in length: {sorted(sizes)}")
    for a in out:
        if not np.isfinite(a).all():
            raise ValueError("arrays hold NaN or infinite values")
    return out


def _constant(x: np.ndarray) -> bool:
    # min == max, not a zero variance: the mean of a constant float array is not always
    # exactly that constant, so its variance can come out as a tiny positive number.
    return x.size == 0 or bool(x.min() == x.max())


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r, NaN when fewer than 3 rows or either side is constant."""
    if x.size < 3 or _constant(x) or _constant(y):
        return math.nan
    xm = x - x.mean()
    ym = y - y.mean()
    denom = math.sqrt(float(xm @ xm) * float(ym @ ym))
    if denom == 0.0:  # underflow of a nearly constant side
        return math.nan
    return max(-1.0, min(1.0, float(xm @ ym) / denom))


def spearman(x: np.ndarray, y: np.ndarray, *, y_ranks: np.ndarray | None = None) -> float:
    """Spearman's rho: Pearson's r of mid-ranks (ties share their average rank).

    ``y_ranks`` lets a caller that scores many models against one target rank it once.
    """
    if x.size < 3 or _constant(x) or _constant(y):
        return math.nan
    return pearson(stats.rankdata(x), stats.rankdata(y) if y_ranks is None else y_ranks)


def kendall(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b (tie-corrected), scipy's O(n log n) algorithm."""
    if x.size < 3 or _constant(x) or _constant(y):
        return math.nan
    return float(stats.kendalltau(x, y).statistic)


def fisher_interval(metric: str, r: float, n: int) -> tuple[float, float]:
    """95% interval of a correlation through Fisher's z (the catalogue's variance for
    ``metric``); NaN when n is too small."""
    fisher = metric_spec(metric).fisher
    if fisher is None:
        raise ValueError(f"{metric} has no Fisher-z interval")
    scale, offset = fisher
    if not math.isfinite(r) or n <= offset:
        return (math.nan, math.nan)
    if abs(r) >= 1.0:  # atanh(±1) is infinite: a perfect correlation has no spread in z
        return (r, r)
    half = _Z95 * math.sqrt(scale / (n - offset))
    z = math.atanh(r)
    return (math.tanh(z - half), math.tanh(z + half))


def _rmse_interval(sq_err: np.ndarray, seed: int) -> tuple[float, float]:
    n = sq_err.size
    if n < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    sub = sq_err if n <= _BOOT_ROWS else sq_err[rng.choice(n, size=_BOOT_ROWS, replace=False)]
    m = sub.size
    boot = np.empty(_BOOT_RESAMPLES)
    chunk = max(1, 1_000_000 // m)  # about 8 MB of indices at a time
    for start in range(0, _BOOT_RESAMPLES, chunk):
        stop = min(start + chunk, _BOOT_RESAMPLES)
        idx = rng.integers(0, m, size=(stop - start, m))
        boot[start:stop] = np.sqrt(sub[idx].mean(axis=1))
    full = math.sqrt(float(sq_err.mean()))
    shift = (boot - math.sqrt(float(sub.mean()))) * math.sqrt(m / n)
    low, high = np.quantile(shift, [0.025, 0.975])
    return (max(0.0, full + float(low)), full + float(high))


def _linear(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares line; a constant prediction maps to the target's mean."""
    if _constant(x):
        return np.full_like(x, y.mean() if y.size else 0.0)
    xm = x - x.mean()
    slope = float(xm @ (y - y.mean())) / float(xm @ xm)
    return np.asarray(y.mean() + slope * xm)


def _cubic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares cubic, used only when monotonic over the predictions' range.

    A non-monotonic cubic would reorder predictions, rewarding a model for errors the
    mapping folds away; P.1401 requires a monotonic mapping. When the unconstrained fit bends
    back inside the range (or the points cannot pin four parameters) the mapping falls back
    to the straight line, which is always monotonic.
    """
    if x.size < 4 or _constant(x):
        return _linear(x, y)
    mean, std = x.mean(), x.std()
    t = (x - mean) / std  # standardised, so the powers stay well conditioned
    design = np.column_stack([np.ones_like(t), t, t * t, t * t * t])
    coef, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    if rank < 4:
        return _linear(x, y)
    c1, c2, c3 = float(coef[1]), float(coef[2]), float(coef[3])
    points = [float(t.min()), float(t.max())]
    if c3 != 0.0:
        turn = -c2 / (3.0 * c3)  # where the derivative c1 + 2 c2 t + 3 c3 t^2 is extreme
        if points[0] < turn < points[1]:
            points.append(turn)
    slopes = [c1 + 2.0 * c2 * p + 3.0 * c3 * p * p for p in points]
    if min(slopes) < 0.0 < max(slopes):
        return _linear(x, y)
    return np.asarray(design @ coef)


def _logistic_curve(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    # expit, not 1/(1+exp(-z)): exp overflows (and warns) for steep fits far from the centre.
    return np.asarray(p[0] + p[1] * special.expit(p[2] * (t - p[3])))


def _logistic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """VQEG's 4-parameter monotonic logistic, a + b / (1 + exp(-k (x - c))).

    Fitted by scipy's least_squares rather than curve_fit: curve_fit also estimates a
    parameter covariance we do not use and warns when it is singular, and silencing that
    with warnings.catch_warnings is not thread-safe (the engine evaluates models in threads).
    A fit that fails to converge, or fits worse than the straight line (a local minimum),
    falls back to the line.
    """
    line = _linear(x, y)
    if x.size < 5 or _constant(x) or _constant(y):
        return line
    fit_x, fit_y = x, y
    if x.size > _LOGISTIC_FIT_ROWS:
        rows = np.random.default_rng(0).choice(x.size, size=_LOGISTIC_FIT_ROWS, replace=False)
        fit_x, fit_y = x[rows], y[rows]
    x_mean, x_std = float(fit_x.mean()), float(fit_x.std())
    y_mean, y_std = float(fit_y.mean()), float(fit_y.std())
    if x_std == 0.0 or y_std == 0.0:
        return line
    t = (fit_x - x_mean) / x_std
    u = (fit_y - y_mean) / y_std
    r = pearson(t, u)
    if not math.isfinite(r):
        return line
    span = float(u.max() - u.min())
    sign = 1.0 if r >= 0.0 else -1.0
    # Start from an S spanning the target's range whose slope at the centre (b k / 4) is the
    # standardised regression slope r.
    base = float(u.min()) if r >= 0.0 else float(u.max())
    start = np.array([base, sign * span, max(4.0 * abs(r), 0.1) / span, 0.0])

    def residuals(p: np.ndarray) -> np.ndarray:
        return _logistic_curve(p, t) - u

    def jacobian(p: np.ndarray) -> np.ndarray:
        e = special.expit(p[2] * (t - p[3]))
        de = e * (1.0 - e)
        return np.column_stack([np.ones_like(t), e, p[1] * de * (t - p[3]), -p[1] * de * p[2]])

    try:
        fit = optimize.least_squares(
            residuals, start, jac=jacobian, method="lm", max_nfev=_LOGISTIC_MAX_EVALS
        )
    except (ValueError, np.linalg.LinAlgError):
        return line
    if fit.status <= 0 or not np.isfinite(fit.x).all():
        return line
    mapped = y_mean + y_std * _logistic_curve(fit.x, (x - x_mean) / x_std)
    if not np.isfinite(mapped).all():
        return line
    if float(((mapped - y) ** 2).sum()) > float(((line - y) ** 2).sum()):
        return line
    return mapped


def apply_mapping(pred: np.ndarray, target: np.ndarray, kind: str) -> np.ndarray:
    """Predictions mapped onto the target's scale by the fitted ``kind`` of P.1401 mapping."""
    if kind not in MAPPINGS:
        raise UsageError(
            f"unknown mapping {kind!r}", "--mapping", f"use one of {', '.join(MAPPINGS)}"
        )
    x, y = as_vectors(pred, target)
    if kind == MappingName.LINEAR:
        return _linear(x, y)
    if kind == MappingName.CUBIC:
        return _cubic(x, y)
    if kind == MappingName.LOGISTIC:
        return _logistic(x, y)
    return x


def fit_mapping(pred: np.ndarray, target: np.ndarray, kind: str) -> tuple[np.ndarray, str]:
    """``apply_mapping``'s values and the mapping that produced them: a cubic that would bend
    back, or a logistic that does not converge, is the straight line, and the report says so."""
    mapped = apply_mapping(pred, target, kind)
    # Every fallback returns exactly _linear's values (same code, same inputs).
    fitted = kind in (MappingName.CUBIC, MappingName.LOGISTIC)
    if fitted and np.array_equal(mapped, _linear(*as_vectors(pred, target))):
        return mapped, MappingName.LINEAR.value
    return mapped, MappingName(kind).value


def target_ranks(target: np.ndarray) -> np.ndarray:
    """Mid-ranks of the target, to pass to every ``compute_metrics`` call of one run."""
    return np.asarray(stats.rankdata(target), dtype=np.float64)


def compute_metrics(
    pred: np.ndarray,
    target: np.ndarray,
    *,
    mapping: str = MappingName.NONE.value,
    seed: int = 0,
    ranks: np.ndarray | None = None,
) -> Metrics:
    """Every catalogue metric with its 95% interval; NaN correlations for constant input or
    n < 3. ``ci`` holds every metric; a bound that cannot be computed is NaN.
    """
    x, y = as_vectors(pred, target)
    mapped, used = fit_mapping(x, y, mapping)
    n = int(x.size)
    sq_err = (mapped - y) ** 2
    values = {
        "plcc": pearson(mapped, y),
        "srocc": spearman(x, y, y_ranks=ranks),
        "krocc": kendall(x, y),
        "rmse": math.sqrt(float(sq_err.mean())) if n else math.nan,
    }
    ci = {}
    for spec in CATALOGUE:
        if spec.interval is Interval.FISHER_Z:
            ci[spec.name] = fisher_interval(spec.name, values[spec.name], n)
        elif spec.name == "rmse":
            ci[spec.name] = _rmse_interval(sq_err, seed)
        else:
            raise ValueError(f"no {spec.interval.value} interval is implemented for {spec.name}")
    return Metrics(values=values, n=n, ci=ci, mapping=used)
