"""How well predictions agree with the subjective target: the catalogue's metrics.

Following ITU-T P.1401 and the VQEG reports, PLCC and RMSE are computed after an optional
fitted mapping of the predictions onto the target's scale, so a model whose output scale
differs is judged fairly; SROCC and KROCC are rank-based and use the raw predictions.
Every function takes arrays and returns numbers: no files, no models.

Every mapping rises with the predictions (P.1401 maps monotonically *increasing* onto the
subjective scale): a fit that would need to fall is refused and the scores stay unmapped, so
a model whose scores fall as quality rises keeps its negative correlation and fails its
gates unless it is declared lower-is-better (the engine then negates its scores first).

The common path (no mapping, linear or cubic) needs no scipy: correlations and intervals are
closed form, ranks come from ranks.py. scipy is imported only to fit the logistic. Sums over
rows run in float64 chunks, so float32 predictions are never copied whole to float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from .catalogue import CATALOGUE, Interval, MappingName, MetricSpec, metric_spec
from .errors import UsageError
from .ranks import TargetRanks, rank_correlations, rank_target
from .report import MappingDirection, Metrics

__all__ = [
    "CHUNK_ROWS",
    "MAPPINGS",
    "Fitted",
    "apply_mapping",
    "as_vectors",
    "compute_metrics",
    "exact_mean",
    "fisher_interval",
    "fit_mapping",
    "fit_once",
    "float64_chunks",
    "kendall",
    "mapping_direction",
    "pairwise_sum",
    "pearson",
    "rmse_interval",
    "spearman",
    "target_ranks",
    "with_rank_metrics",
]

MAPPINGS: tuple[str, ...] = tuple(m.value for m in MappingName)

# The standard normal's 97.5% quantile (scipy.stats.norm.ppf(0.975); a test pins it), so that
# the intervals need not import scipy.stats.
_Z95 = 1.959963984540054
CHUNK_ROWS = 1 << 16  # rows per float64 chunk of a sum over rows

# The logistic is fitted on at most this many rows (fixed-seed subsample): its four
# parameters are pinned long before 1M rows, and each optimiser step costs a pass over them.
_LOGISTIC_FIT_ROWS = 20_000
_LOGISTIC_MAX_EVALS = 100  # a real S converges in tens; a straight line drifts for hundreds


def _checked(arrays: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    sizes = {a.size for a in arrays}
    if len(sizes) > 1:
        raise ValueError(f"arrays differ in length: {sorted(sizes)}")
    for a in arrays:
        if not np.isfinite(a).all():
            raise ValueError("arrays hold NaN or infinite values")
    return arrays


def as_vectors(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """The arrays as finite float64 vectors of one length (float32 sums lose digits at 1M)."""
    return _checked(tuple(np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays))


def _as_floats(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Like ``as_vectors``, but float32 stays float32 (no copy); sums go through float64_chunks."""
    out = []
    for a in arrays:
        v = np.asarray(a).reshape(-1)
        out.append(v if v.dtype in (np.float32, np.float64) else v.astype(np.float64))
    return _checked(tuple(out))


def float64_chunks(*arrays: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
    """The arrays a block of rows at a time, as float64 copies (the caller may write them)."""
    n = arrays[0].size
    for start in range(0, n, CHUNK_ROWS):
        yield tuple(np.array(a[start : start + CHUNK_ROWS], dtype=np.float64) for a in arrays)


def pairwise_sum(values: Callable[[int, int], np.ndarray], n: int) -> float:
    """The float64 sum of ``n`` rows, bit for bit what ``np.sum`` gives on the whole float64
    vector, but made of blocks: ``values(start, stop)`` returns rows start..stop-1 as float64.

    numpy sums a contiguous vector pairwise, halving it (the first half rounded down to a
    multiple of 8) until a part is small; splitting the same way down to CHUNK_ROWS rows and
    summing each part with numpy reproduces that order, so a whole-length float64 copy (80 MB
    at 10M rows) is never made and the result does not move by a bit."""

    return _pairwise(values, 0, n)


def _pairwise(values: Callable[[int, int], np.ndarray], start: int, stop: int) -> float:
    # At module level, not nested in pairwise_sum: a nested recursive function is a reference
    # cycle, which would keep ``values`` and the array it reads alive until the next collection.
    size = stop - start
    if size <= CHUNK_ROWS:
        return float(np.add.reduce(values(start, stop)))
    half = size // 2
    half -= half % 8
    return _pairwise(values, start, start + half) + _pairwise(values, start + half, stop)


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x, dtype=np.float64)) if x.size else math.nan


def exact_mean(y: np.ndarray) -> float:
    """The mean as ``np.mean`` gives it on the float64 copy, to the bit, also for a float32
    vector (a target kept as the file stores it, a model's predictions) without making that
    copy: ``np.mean(y, dtype=float64)`` casts in buffers and sums those in turn, which moves
    the last bits."""
    if y.dtype == np.float64 or not y.size:
        return _mean(y)
    return pairwise_sum(lambda a, b: np.asarray(y[a:b], dtype=np.float64), y.size) / y.size


def _target_centred(y: np.ndarray) -> np.ndarray:
    """``y - y.mean()`` of the float64 copy, made from a float32 target without that copy."""
    return np.asarray(np.subtract(y, exact_mean(y), dtype=np.float64))


def _constant(x: np.ndarray) -> bool:
    # min == max, not a zero variance: the mean of a constant float array is not always
    # exactly that constant, so its variance can come out as a tiny positive number.
    return x.size == 0 or bool(x.min() == x.max())


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r, NaN when fewer than 3 rows or either side is constant."""
    if x.size < 3 or _constant(x) or _constant(y):
        return math.nan
    # Centred sums in float64 chunks (not `@`: a BLAS call wakes its threads, which then
    # compete with ONNX Runtime's).
    mx, my = _mean(x), exact_mean(y)
    sxx = syy = sxy = 0.0
    for xc, yc in float64_chunks(x, y):
        xc -= mx
        yc -= my
        sxx += float((xc * xc).sum())
        syy += float((yc * yc).sum())
        sxy += float((xc * yc).sum())
    denom = math.sqrt(sxx * syy)
    if denom == 0.0:  # underflow of a nearly constant side
        return math.nan
    return max(-1.0, min(1.0, sxy / denom))


def spearman(x: np.ndarray, y: np.ndarray, *, y_ranks: TargetRanks | None = None) -> float:
    """Spearman's rho: Pearson's r of mid-ranks (ties share their average rank).

    ``y_ranks`` (``target_ranks(y)``) lets a caller that scores many models against one
    target rank it once.
    """
    if x.size < 3 or _constant(x) or _constant(y):
        return math.nan
    return rank_correlations(x, rank_target(y) if y_ranks is None else y_ranks)[0]


def kendall(x: np.ndarray, y: np.ndarray, *, y_ranks: TargetRanks | None = None) -> float:
    """Kendall's tau-b (tie-corrected), in one O(n log n) pass (see ranks.py)."""
    if x.size < 3 or _constant(x) or _constant(y):
        return math.nan
    return rank_correlations(x, rank_target(y) if y_ranks is None else y_ranks)[1]


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


def _squared_errors(mapped: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean of the squared errors and their variance (divisor n), in float64 chunks."""
    n = mapped.size
    total = 0.0
    for mc, yc in float64_chunks(mapped, y):
        mc -= yc
        total += float((mc * mc).sum())
    mse = total / n
    spread = 0.0
    for mc, yc in float64_chunks(mapped, y):
        mc -= yc
        mc *= mc
        mc -= mse
        spread += float((mc * mc).sum())
    return mse, spread / n


def rmse_interval(mse: float, variance: float, n: int) -> tuple[float, float]:
    """95% interval of the RMSE, closed form: the normal interval of the mean squared error
    (the central limit theorem: its standard error is the squared errors' standard deviation
    over sqrt(n)), taken through the square root. The square root is monotonic, so the RMSE
    interval covers exactly when the MSE interval does, and it is never negative. O(n), no
    resampling; like every normal interval it is optimistic for a few dozen rows with
    heavy-tailed errors. NaN below 2 rows.
    """
    if n < 2 or not math.isfinite(mse):
        return (math.nan, math.nan)
    half = _Z95 * math.sqrt(variance / n)
    return (math.sqrt(max(0.0, mse - half)), math.sqrt(mse + half))


def _rises(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether the least-squares line through the points has a positive slope: only then can
    a rising mapping bring the predictions closer to the target than leaving them alone."""
    if _constant(x):
        return False
    return float((x - x.mean()) @ _target_centred(y)) > 0.0


def _linear(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares line; a constant prediction maps to the target's mean. Callers fit it
    only where ``_rises``, so its slope is positive."""
    if _constant(x):
        return np.full_like(x, exact_mean(y) if y.size else 0.0)
    xm = x - x.mean()
    slope = float(xm @ _target_centred(y)) / float(xm @ xm)
    return np.asarray(exact_mean(y) + slope * xm)


def _cubic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares cubic, used only when it rises over the whole range of the predictions.

    A cubic that bends back would reorder predictions, rewarding a model for errors the
    mapping folds away, and a falling one would flip an inverted model into a good one;
    P.1401's mapping is monotonic increasing. When the unconstrained fit falls anywhere
    inside the range (or the points cannot pin four parameters) the mapping falls back to
    the straight line, which rises.
    """
    if x.size < 4 or _constant(x):
        return _linear(x, y)
    y = np.asarray(y, dtype=np.float64)  # lstsq reads it whole; beside four design columns
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
    if min(slopes) < 0.0:
        return _linear(x, y)
    return np.asarray(design @ coef)


def _expit(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) as 0.5 (1 + tanh(z / 2)): exp overflows (and warns) for steep fits
    far from the centre; tanh saturates quietly."""
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)))


def _logistic_curve(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.asarray(p[0] + p[1] * _expit(p[2] * (t - p[3])))


def _logistic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """VQEG's 4-parameter monotonic logistic, a + b / (1 + exp(-k (x - c))).

    Fitted by scipy's least_squares rather than curve_fit: curve_fit also estimates a
    parameter covariance we do not use and warns when it is singular, and silencing that
    with warnings.catch_warnings is not thread-safe (the engine evaluates models in threads).
    A fit that fails to converge, falls (b k < 0), or fits worse than the straight line (a
    local minimum), falls back to the line.
    """
    line = _linear(x, y)
    if x.size < 5 or _constant(x) or _constant(y):
        return line
    fit_x, fit_y = x, y
    if x.size > _LOGISTIC_FIT_ROWS:
        rows = np.random.default_rng(0).choice(x.size, size=_LOGISTIC_FIT_ROWS, replace=False)
        fit_x, fit_y = x[rows], y[rows]
    fit_y = np.asarray(fit_y, dtype=np.float64)  # at most _LOGISTIC_FIT_ROWS rows
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
        e = _expit(p[2] * (t - p[3]))
        de = e * (1.0 - e)
        return np.column_stack([np.ones_like(t), e, p[1] * de * (t - p[3]), -p[1] * de * p[2]])

    from scipy import optimize  # only the logistic needs scipy

    try:
        fit = optimize.least_squares(
            residuals, start, jac=jacobian, method="lm", max_nfev=_LOGISTIC_MAX_EVALS
        )
    except (ValueError, np.linalg.LinAlgError):
        return line
    if fit.status <= 0 or not np.isfinite(fit.x).all() or fit.x[1] * fit.x[2] <= 0.0:
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
    return _mapped(x, y, kind)


def _mapped(x: np.ndarray, y: np.ndarray, kind: str) -> np.ndarray:
    """``apply_mapping`` on checked vectors; no mapping returns ``x`` itself (float32 too),
    and so does a fit that would have to fall (see ``mapping_direction``)."""
    return _fit(x, y, kind)[0]


def _fit(
    x: np.ndarray, y: np.ndarray, kind: str
) -> tuple[np.ndarray, str, MappingDirection | None]:
    """The mapped values, the mapping that produced them, and which way the line through the
    scores runs (None without a mapping or for constant scores), from one slope test."""
    if kind == MappingName.NONE:
        return x, MappingName.NONE.value, None
    if _constant(x):  # the line maps it to the target's mean
        return _linear(x, y), MappingName.LINEAR.value, None
    if not _rises(x, y):
        return x, MappingName.NONE.value, MappingDirection.DECREASING
    if kind == MappingName.LINEAR:
        mapped = _linear(x, y)
    elif kind == MappingName.CUBIC:
        mapped = _cubic(x, y)
    else:
        mapped = _logistic(x, y)
    # Every fallback returns exactly _linear's values (same code, same inputs).
    fell_back = kind != MappingName.LINEAR and np.array_equal(mapped, _linear(x, y))
    used = MappingName.LINEAR.value if fell_back else MappingName(kind).value
    return mapped, used, MappingDirection.INCREASING


def fit_mapping(pred: np.ndarray, target: np.ndarray, kind: str) -> tuple[np.ndarray, str]:
    """``apply_mapping``'s values and the mapping that produced them: a cubic that would bend
    back, or a logistic that does not converge, is the straight line, and a mapping that
    would have to fall is none at all; the report says so."""
    if kind not in MAPPINGS:
        raise UsageError(
            f"unknown mapping {kind!r}", "--mapping", f"use one of {', '.join(MAPPINGS)}"
        )
    x, y = as_vectors(pred, target)
    mapped, used, _ = _fit(x, y, kind)
    return mapped, used


@dataclass(frozen=True, eq=False)
class Fitted:
    """A mapping fitted once on every rated item, for the overall metrics and each
    ``--slice-by`` slice to read alike (a second fit would cost as much again)."""

    values: np.ndarray  # float64, one per item
    used: str  # the mapping that produced them (a fit may fall back)
    direction: MappingDirection | None


def fit_once(pred: np.ndarray, target: np.ndarray, kind: str) -> Fitted:
    """The fit ``compute_metrics`` makes, made beforehand so that its values can be shared."""
    if kind not in MAPPINGS or kind == MappingName.NONE:
        raise ValueError(f"fit_once needs a fitted mapping, not {kind!r}")
    x, y = _as_floats(pred, target)
    return _fit_floats(x, y, kind)


def _fit_floats(x: np.ndarray, y: np.ndarray, kind: str) -> Fitted:
    """The fit of checked vectors (``_as_floats``): the predictions read as float64, the
    target as it is (a float32 target is upcast a block or a difference at a time, the same
    values)."""
    (x64,) = as_vectors(x)
    return Fitted(*_fit(x64, y, kind))


def mapping_direction(pred: np.ndarray, target: np.ndarray, kind: str) -> MappingDirection | None:
    """Which way the fitted line through the scores runs: ``INCREASING`` (the mapping was
    fitted), ``DECREASING`` (a mapping would have to fall, so none was applied), None when no
    mapping was asked for or the scores are constant."""
    x, y = as_vectors(pred, target)
    if kind == MappingName.NONE or _constant(x):
        return None
    return MappingDirection.INCREASING if _rises(x, y) else MappingDirection.DECREASING


def target_ranks(target: np.ndarray) -> TargetRanks:
    """The target's ranks, to pass to every ``compute_metrics`` call of one run."""
    (y,) = _as_floats(target)
    return rank_target(y)


class _Sample:
    """The catalogue's ``Sample`` over vectors ``_as_floats`` checked: the squared errors and
    the rank correlations are computed at most once, however many metrics read them."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        mapped: np.ndarray | None,
        ranks: TargetRanks | None,
    ) -> None:
        self._x, self._y, self._mapped, self._ranks = x, y, mapped, ranks
        self._squared: tuple[float, float] | None = None
        self._ranked: tuple[float, float] | None = None

    @property
    def n(self) -> int:
        return int(self._x.size)

    @property
    def predictions(self) -> np.ndarray:
        return self._x

    @property
    def mapped(self) -> np.ndarray:
        if self._mapped is None:
            raise ValueError("a rank-based metric reads the raw predictions, not the mapped ones")
        return self._mapped

    @property
    def target(self) -> np.ndarray:
        return self._y

    def pearson(self) -> float:
        return pearson(self.mapped, self._y)

    def squared_errors(self) -> tuple[float, float]:
        """Mean and variance of the mapped predictions' squared errors."""
        if self._squared is None:
            n = self.n
            self._squared = _squared_errors(self.mapped, self._y) if n else (math.nan, math.nan)
        return self._squared

    def rank_correlations(self) -> tuple[float, float]:
        """Spearman's rho and Kendall's tau-b of the raw predictions, from one sort."""
        if self._ranked is None:
            x, y = self._x, self._y
            ranked = (math.nan, math.nan)
            if x.size >= 3 and not _constant(x) and not _constant(y):
                ranked = rank_correlations(
                    x, rank_target(y) if self._ranks is None else self._ranks
                )
            self._ranked = ranked
        return self._ranked


def _scored(
    specs: tuple[MetricSpec, ...], sample: _Sample
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """The values of ``specs`` on ``sample`` and their intervals."""
    values = {spec.name: float(spec.value(sample)) for spec in specs}
    ci = {spec.name: _interval(spec, values[spec.name], sample) for spec in specs}
    return values, ci


def compute_metrics(
    pred: np.ndarray,
    target: np.ndarray,
    *,
    mapping: str = MappingName.NONE.value,
    ranks: TargetRanks | None = None,
    ranked: bool = True,
    fitted: Fitted | None = None,
) -> Metrics:
    """Every catalogue metric with its 95% interval; NaN correlations for constant input or
    n < 3. ``ci`` holds every metric; a bound that cannot be computed is NaN. ``fitted``:
    ``fit_once(pred, target, mapping)``, made already (the slices read it too).

    ``ranked=False`` leaves the rank-based metrics (SROCC, KROCC: one sort and a merge count,
    most of the cost) NaN, for ``with_rank_metrics`` to fill in later: a bisect whose gates do
    not read them can go on to the next model meanwhile.

    float32 input is not copied to float64 (10M rows: 40 MB saved per array); every sum runs
    in float64.
    """
    if mapping not in MAPPINGS:
        raise UsageError(
            f"unknown mapping {mapping!r}", "--mapping", f"use one of {', '.join(MAPPINGS)}"
        )
    x, y = _as_floats(pred, target)
    n = int(x.size)
    used = MappingName(mapping).value  # what the report records: a fit may fall back
    direction = None
    if mapping == MappingName.NONE:
        mapped = x
    else:
        made = _fit_floats(x, y, mapping) if fitted is None else fitted
        mapped, used, direction = made.values, made.used, made.direction
        del made  # the caller's ``fitted`` lives on; a fit made here goes with ``mapped``
    specs = CATALOGUE.specs
    on_mapped = tuple(spec for spec in specs if not spec.rank_based)
    values, ci = _scored(on_mapped, _Sample(x, y, mapped, None))
    del mapped  # a mapped copy is 8 bytes per row; the rank statistics need only x
    for spec in specs:
        if spec.rank_based:
            values[spec.name] = math.nan
            ci[spec.name] = (math.nan, math.nan)
    # Catalogue order, as the report writes them.
    metrics = Metrics(
        values={spec.name: values[spec.name] for spec in specs},
        n=n,
        ci={spec.name: ci[spec.name] for spec in specs},
        mapping=used,
        mapping_direction=direction,
    )
    return _with_ranks(metrics, x, y, ranks) if ranked else metrics


def with_rank_metrics(
    metrics: Metrics,
    pred: np.ndarray,
    target: np.ndarray,
    *,
    ranks: TargetRanks | None = None,
) -> Metrics:
    """``metrics`` (from ``compute_metrics(ranked=False)`` on the same arrays) with the
    rank-based metrics and their intervals filled in."""
    x, y = _as_floats(pred, target)
    return _with_ranks(metrics, x, y, ranks)


def _with_ranks(
    metrics: Metrics, x: np.ndarray, y: np.ndarray, ranks: TargetRanks | None
) -> Metrics:
    """``with_rank_metrics`` on vectors ``_as_floats`` already checked."""
    rank_based = tuple(spec for spec in CATALOGUE.specs if spec.rank_based)
    values, ci = _scored(rank_based, _Sample(x, y, None, ranks))
    return replace(metrics, values={**metrics.values, **values}, ci={**metrics.ci, **ci})


def _interval(spec: MetricSpec, value: float, sample: _Sample) -> tuple[float, float]:
    """The 95% interval the catalogue names for ``spec``."""
    if spec.interval is Interval.FISHER_Z:
        return fisher_interval(spec.name, value, sample.n)
    if spec.interval is Interval.MSE_NORMAL:
        return rmse_interval(*sample.squared_errors(), sample.n)
    if spec.interval is Interval.NONE:
        return (math.nan, math.nan)
    raise ValueError(f"no {spec.interval.value} interval is implemented for {spec.name}")
