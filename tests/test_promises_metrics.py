"""The metrics' promises the mutation session found unpinned: sums over several chunks and
float32 input, the public one-metric functions, the edges of the intervals and the mappings.

Every expected value is computed here independently (numpy in float64, scipy.stats,
scipy.optimize), never read back from model_bisect.
"""

from __future__ import annotations

import math
import tracemalloc
from collections.abc import Callable

import numpy as np
import pytest
import scipy.optimize
import scipy.stats

from model_bisect.errors import UsageError
from model_bisect.metrics import (
    apply_mapping,
    compute_metrics,
    fisher_interval,
    fit_mapping,
    kendall,
    mapping_direction,
    pearson,
    rmse_interval,
    spearman,
    target_ranks,
    with_rank_metrics,
)
from model_bisect.report import MappingDirection
from tests.metrickit import add_metric

Z975 = float(scipy.stats.norm.ppf(0.975))
# More rows than three chunks of 65536, not a multiple of one: every sum crosses chunk edges.
MANY = 3 * 65536 + 123


def offset_sample(n: int, seed: int, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Scores far from zero with a small spread, where float32 arithmetic loses digits."""
    rng = np.random.default_rng(seed)
    target = offset + rng.uniform(0.0, 4.0, n)
    return target + rng.normal(0.0, 0.5, n), target


def numpy_rmse_and_interval(
    pred: np.ndarray, target: np.ndarray
) -> tuple[float, tuple[float, float]]:
    """The RMSE and the normal interval of the MSE through the square root, in float64."""
    errors = (pred.astype(np.float64) - target.astype(np.float64)) ** 2
    mse, half = float(errors.mean()), Z975 * float(errors.std()) / math.sqrt(errors.size)
    return math.sqrt(mse), (math.sqrt(max(0.0, mse - half)), math.sqrt(mse + half))


def test_sums_over_several_chunks_equal_numpy_over_all_rows() -> None:
    pred, target = offset_sample(MANY, 1, 0.0)
    m = compute_metrics(pred, target, ranked=False)
    rmse, interval = numpy_rmse_and_interval(pred, target)
    assert m.values["plcc"] == pytest.approx(np.corrcoef(pred, target)[0, 1], rel=1e-12)
    assert m.values["rmse"] == pytest.approx(rmse, rel=1e-12)
    assert m.ci["rmse"] == pytest.approx(interval, rel=1e-10)


def test_float32_input_is_summed_in_float64() -> None:
    pred, target = offset_sample(MANY, 2, 1000.0)
    pred32, target32 = pred.astype(np.float32), target.astype(np.float32)
    m = compute_metrics(pred32, target32, ranked=False)
    # The same float32 values, widened first: float32 sums of them would be off by ~1e-6.
    wide_pred, wide_target = pred32.astype(np.float64), target32.astype(np.float64)
    rmse, interval = numpy_rmse_and_interval(wide_pred, wide_target)
    assert m.values["plcc"] == pytest.approx(np.corrcoef(wide_pred, wide_target)[0, 1], rel=1e-12)
    assert m.values["rmse"] == pytest.approx(rmse, rel=1e-10)
    assert m.ci["rmse"] == pytest.approx(interval, rel=1e-9)
    assert pearson(pred32, target32) == pytest.approx(
        np.corrcoef(wide_pred, wide_target)[0, 1], rel=1e-12
    )


def test_float32_input_is_never_copied_whole_to_float64() -> None:
    rows = 1_000_000
    pred, target = offset_sample(rows, 3, 1.0)
    pred32, target32 = pred.astype(np.float32), target.astype(np.float32)
    del pred, target
    tracemalloc.start()
    try:
        compute_metrics(pred32, target32, ranked=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < rows * 8 / 2  # one float64 copy of one array would be 8 MB


def test_a_column_or_a_matrix_of_scores_is_read_as_one_vector() -> None:
    pred, target = offset_sample(300, 4, 2.0)
    flat = compute_metrics(pred, target, mapping="linear")
    assert compute_metrics(pred.reshape(-1, 1), target.reshape(3, 100), mapping="linear") == flat
    mapped = apply_mapping(pred.reshape(-1, 1), target.reshape(-1, 1), "linear")
    assert mapped.shape == (300,)
    slope, intercept = np.polyfit(pred, target, 1)
    assert mapped == pytest.approx(slope * pred + intercept, rel=1e-12)


def test_a_float32_mapping_is_fitted_in_float64() -> None:
    pred, target = offset_sample(5000, 5, 1000.0)
    pred32, target32 = pred.astype(np.float32), target.astype(np.float32)
    wide_pred, wide_target = pred32.astype(np.float64), target32.astype(np.float64)
    xm = wide_pred - wide_pred.mean()
    slope = float(xm @ (wide_target - wide_target.mean())) / float(xm @ xm)
    expected = wide_target.mean() + slope * xm
    mapped = apply_mapping(pred32, target32, "linear")
    assert mapped.dtype == np.float64
    assert mapped == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n", [3, 40, 1000])
def test_spearman_and_kendall_equal_scipy_with_and_without_precomputed_ranks(n: int) -> None:
    rng = np.random.default_rng(n)
    target = rng.integers(0, 6, n).astype(np.float64)  # ties on the target side
    pred = np.round(target + rng.normal(0.0, 1.5, n), 1)  # and on the predictions' side
    if np.ptp(pred) == 0.0:
        pred[0] += 1.0
    ranks = target_ranks(target)
    rho = scipy.stats.spearmanr(pred, target).statistic
    tau = scipy.stats.kendalltau(pred, target).statistic
    assert spearman(pred, target) == pytest.approx(rho, abs=1e-12)
    assert spearman(pred, target, y_ranks=ranks) == pytest.approx(rho, abs=1e-12)
    assert kendall(pred, target) == pytest.approx(tau, abs=1e-12)
    assert kendall(pred, target, y_ranks=ranks) == pytest.approx(tau, abs=1e-12)


@pytest.mark.parametrize("function", [spearman, kendall])
@pytest.mark.parametrize(
    ("pred", "target"),
    [([1.0, 2.0], [1.0, 2.0]), ([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]), ([1.0, 2.0, 3.0], [4.0] * 3)],
)
def test_rank_correlations_are_nan_below_three_rows_or_on_a_constant_side(
    function: object, pred: list[float], target: list[float]
) -> None:
    assert callable(function)
    assert math.isnan(function(np.array(pred), np.array(target)))


def test_rank_metrics_filled_in_later_equal_scipy_and_use_the_ranks_given() -> None:
    pred, target = offset_sample(500, 6, 0.0)
    target = np.round(target, 1)
    early = compute_metrics(pred, target, ranked=False)
    assert math.isnan(early.values["srocc"])
    assert math.isnan(early.values["krocc"])
    assert all(math.isnan(bound) for bound in (*early.ci["srocc"], *early.ci["krocc"]))
    later = with_rank_metrics(early, pred, target, ranks=target_ranks(target))
    assert later.values["srocc"] == pytest.approx(
        scipy.stats.spearmanr(pred, target).statistic, abs=1e-12
    )
    assert later.values["krocc"] == pytest.approx(
        scipy.stats.kendalltau(pred, target).statistic, abs=1e-12
    )
    assert later.values["plcc"] == early.values["plcc"]
    # Ranks of another target are what a caller who passes them gets: they are not recomputed.
    other = target_ranks(target[::-1].copy())
    assert with_rank_metrics(early, pred, target, ranks=other).values["srocc"] == pytest.approx(
        scipy.stats.spearmanr(pred, target[::-1]).statistic, abs=1e-12
    )
    assert compute_metrics(pred, target, ranks=other).values["krocc"] == pytest.approx(
        scipy.stats.kendalltau(pred, target[::-1]).statistic, abs=1e-12
    )


def test_mapping_direction_follows_the_sign_of_the_least_squares_slope() -> None:
    pred, target = offset_sample(200, 7, 0.0)
    assert mapping_direction(pred, target, "cubic") is MappingDirection.INCREASING
    assert mapping_direction(-pred, target, "linear") is MappingDirection.DECREASING
    assert mapping_direction(pred, target, "none") is None
    assert mapping_direction(np.full(200, 2.0), target, "logistic") is None
    # A flat line (slope exactly 0) does not rise, so no mapping may be fitted.
    flat_x, flat_y = np.array([0.0, 1.0, 2.0]), np.array([1.0, 0.0, 1.0])
    assert float((flat_x - flat_x.mean()) @ (flat_y - flat_y.mean())) == 0.0
    assert mapping_direction(flat_x, flat_y, "linear") is MappingDirection.DECREASING
    mapped, used = fit_mapping(flat_x, flat_y, "linear")
    assert used == "none"
    assert mapped == pytest.approx(flat_x)


def test_a_rising_line_on_a_tiny_scale_is_still_fitted() -> None:
    pred, target = offset_sample(200, 8, 0.0)
    pred, target = pred * 1e-4, target * 1e-4  # the slope's numerator is far below 1
    slope, intercept = np.polyfit(pred, target, 1)
    mapped, used = fit_mapping(pred, target, "linear")
    assert used == "linear"
    assert mapping_direction(pred, target, "linear") is MappingDirection.INCREASING
    assert mapped == pytest.approx(slope * pred + intercept, rel=1e-9)


def test_plcc_stays_within_minus_one_and_one_where_rounding_overshoots() -> None:
    overshoots = 0
    for seed in range(200):
        x = np.random.default_rng(seed).normal(3.0, 1.0, 50)
        for y in (0.7 * x + 2.0, -1.3 * x + 5.0):
            xc, yc = x - x.mean(), y - y.mean()
            raw = float(xc @ yc) / math.sqrt(float(xc @ xc) * float(yc @ yc))
            overshoots += abs(raw) > 1.0
            r = pearson(x, y)
            assert -1.0 <= r <= 1.0
            assert abs(r) == pytest.approx(1.0, abs=1e-12)
    assert overshoots > 0  # the unclamped ratio does leave [-1, 1] on some of these


def test_plcc_is_nan_when_the_sums_of_squares_underflow_and_exact_at_a_unit_denominator() -> None:
    tiny = np.array([1e-170, 2e-170, 4e-170])  # not constant, but squares underflow to zero
    assert math.isnan(pearson(tiny, np.array([1.0, 2.0, 3.0])))
    unit = np.array([0.0, 1.0, 0.0, 1.0])  # centred sums of squares exactly 1.0
    assert pearson(unit, unit.copy()) == 1.0
    assert pearson(unit, 1.0 - unit) == -1.0


def test_fisher_interval_refuses_a_metric_without_one_naming_it() -> None:
    with pytest.raises(ValueError, match=r"^rmse has no Fisher-z interval$"):
        fisher_interval("rmse", 0.5, 100)


def test_rmse_interval_is_nan_below_two_rows_or_for_a_non_finite_mse() -> None:
    assert all(math.isnan(v) for v in rmse_interval(1.0, 0.25, 1))
    assert all(math.isnan(v) for v in rmse_interval(math.inf, 0.25, 10))
    assert all(math.isnan(v) for v in rmse_interval(math.nan, 0.25, 10))
    half = Z975 * math.sqrt(0.25 / 2)
    assert rmse_interval(1.0, 0.25, 2) == pytest.approx(
        (math.sqrt(1.0 - half), math.sqrt(1.0 + half)), rel=1e-15
    )


@pytest.mark.parametrize("call", ["apply_mapping", "fit_mapping", "compute_metrics"])
def test_an_unknown_mapping_names_itself_the_flag_and_every_choice(call: str) -> None:
    x = np.arange(5.0)
    calls: dict[str, Callable[[], object]] = {
        "apply_mapping": lambda: apply_mapping(x, x, "quadratic"),
        "fit_mapping": lambda: fit_mapping(x, x, "quadratic"),
        "compute_metrics": lambda: compute_metrics(x, x, mapping="quadratic"),
    }
    with pytest.raises(UsageError) as info:
        calls[call]()
    assert str(info.value) == (
        "unknown mapping 'quadratic' in --mapping: use one of none, linear, cubic, logistic"
    )


def test_a_cubic_through_four_rising_points_interpolates_them() -> None:
    pred = np.array([0.0, 1.0, 2.0, 4.0])
    target = pred**3 / 8.0 + pred  # rises everywhere: the cubic through them is this one
    mapped, used = fit_mapping(pred, target, "cubic")
    assert used == "cubic"
    assert mapped == pytest.approx(target, abs=1e-9)


def test_a_cubic_on_three_distinct_values_is_the_line() -> None:
    pred = np.repeat([0.0, 1.0, 3.0], 5)  # four parameters, three points to pin them
    target = pred**2 + np.tile(np.linspace(-0.1, 0.1, 5), 3)
    slope, intercept = np.polyfit(pred, target, 1)
    mapped, used = fit_mapping(pred, target, "cubic")
    assert used == "linear"
    assert mapped == pytest.approx(slope * pred + intercept, rel=1e-9)


def _cubic_oracle(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, str]:
    """np.polyfit's cubic where its derivative stays >= 0 on [min, max], else the line."""
    coef = np.polyfit(pred, target, 3)
    grid = np.linspace(pred.min(), pred.max(), 20_001)
    if (np.polyval(np.polyder(coef), grid) >= 0.0).all():
        return np.polyval(coef, pred), "cubic"
    slope, intercept = np.polyfit(pred, target, 1)
    return slope * pred + intercept, "linear"


@pytest.mark.parametrize("seed", range(60))
def test_cubic_mapping_is_the_cubic_exactly_when_it_rises_over_the_range(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pred = rng.uniform(-1.0, 1.0, 60)
    c1, c2, c3 = rng.uniform(0.0, 1.0), rng.uniform(-1.5, 1.5), rng.uniform(-0.5, 1.0)
    target = c1 * pred + c2 * pred**2 + c3 * pred**3 + rng.normal(0.0, 0.02, pred.size)
    expected, name = _cubic_oracle(pred, target)
    # Derivatives within a hair of zero on the range are where a grid cannot decide.
    coef = np.polyfit(pred, target, 3)
    grid = np.linspace(pred.min(), pred.max(), 20_001)
    if abs(float(np.polyval(np.polyder(coef), grid).min())) < 1e-6:
        pytest.skip("the fitted cubic's slope touches zero")
    mapped, used = fit_mapping(pred, target, "cubic")
    assert used == name
    assert mapped == pytest.approx(expected, abs=1e-9)


def _logistic_oracle(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The least-squares 4-parameter logistic by curve_fit (trust region, numeric
    derivatives) from a start read off the data, run to full convergence."""

    def curve(x: np.ndarray, a: float, b: float, k: float, c: float) -> np.ndarray:
        return np.asarray(a + b / (1.0 + np.exp(-k * (x - c))))

    start = [target.min(), np.ptp(target), 4.0 / np.ptp(pred), float(np.median(pred))]
    params, _ = scipy.optimize.curve_fit(
        curve, pred, target, p0=start, method="trf", xtol=1e-15, ftol=1e-15, maxfev=20_000
    )
    return curve(pred, *params)


@pytest.mark.parametrize(
    ("rows", "scale", "shift"), [(400, 1.3, 5.5), (3000, 0.6, 2.0), (900, 3.0, 7.0)]
)
def test_logistic_mapping_is_the_least_squares_logistic(
    rows: int, scale: float, shift: float
) -> None:
    rng = np.random.default_rng(rows)
    pred = rng.uniform(0.0, 10.0, rows)
    target = 1.0 + 4.0 / (1.0 + np.exp(-scale * (pred - shift))) + rng.normal(0.0, 0.3, rows)
    mapped, used = fit_mapping(pred, target, "logistic")
    assert used == "logistic"
    assert mapped == pytest.approx(_logistic_oracle(pred, target), abs=1e-6)


def test_logistic_on_many_rows_is_fitted_on_the_seeded_subsample_of_20000() -> None:
    rng = np.random.default_rng(21)
    pred = rng.uniform(-3.0, 3.0, 30_000)
    target = 2.0 + 3.0 / (1.0 + np.exp(-2.0 * pred)) + rng.normal(0.0, 0.5, pred.size)
    rows = np.random.default_rng(0).choice(pred.size, size=20_000, replace=False)
    fit_x, fit_y = pred[rows], target[rows]

    def curve(x: np.ndarray, a: float, b: float, k: float, c: float) -> np.ndarray:
        return np.asarray(a + b / (1.0 + np.exp(-k * (x - c))))

    params, _ = scipy.optimize.curve_fit(
        curve, fit_x, fit_y, p0=[2.0, 3.0, 2.0, 0.0], xtol=1e-15, ftol=1e-15, maxfev=20_000
    )
    mapped, used = fit_mapping(pred, target, "logistic")
    assert used == "logistic"
    assert mapped == pytest.approx(curve(pred, *params), abs=1e-5)


def test_a_logistic_on_five_rows_is_fitted_and_on_four_is_the_line() -> None:
    pred = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    target = 1.0 + 4.0 / (1.0 + np.exp(-2.0 * (pred - 2.0)))
    mapped, used = fit_mapping(pred, target, "logistic")
    assert used == "logistic"
    assert mapped == pytest.approx(target, abs=1e-6)
    slope, intercept = np.polyfit(pred[:4], target[:4], 1)
    mapped, used = fit_mapping(pred[:4], target[:4], "logistic")
    assert used == "linear"
    assert mapped == pytest.approx(slope * pred[:4] + intercept, rel=1e-12)


def test_one_metric_functions_use_the_target_ranks_they_are_given() -> None:
    pred, target = offset_sample(300, 9, 0.0)
    other = target[::-1].copy()
    ranks = target_ranks(other)
    assert spearman(pred, target, y_ranks=ranks) == pytest.approx(
        scipy.stats.spearmanr(pred, other).statistic, abs=1e-12
    )
    assert kendall(pred, target, y_ranks=ranks) == pytest.approx(
        scipy.stats.kendalltau(pred, other).statistic, abs=1e-12
    )


def test_a_cubic_whose_slope_dips_below_zero_between_the_ends_is_the_line() -> None:
    # In standardised units t the cubic 2.9 t - 3 t^2 + t^3 has slope 2.9 - 6 t + 3 t^2:
    # positive at both ends of the range, -0.1 at its minimum t = 1, inside the range.
    pred = np.linspace(-1.0, 1.0, 201)
    t = (pred - pred.mean()) / pred.std()
    target = 2.9 * t - 3.0 * t**2 + t**3
    expected, name = _cubic_oracle(pred, target)
    assert name == "linear"
    mapped, used = fit_mapping(pred, target, "cubic")
    assert used == "linear"
    assert mapped == pytest.approx(expected, abs=1e-9)


def test_a_metric_without_an_interval_has_nan_bounds_and_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_metric(monkeypatch)  # mean absolute error, Interval.NONE
    pred, target = offset_sample(100, 10, 0.0)
    m = compute_metrics(pred, target)
    assert m.values["mae"] == pytest.approx(float(np.abs(pred - target).mean()), rel=1e-12)
    assert all(math.isnan(bound) for bound in m.ci["mae"])
    assert m.ci["rmse"] == pytest.approx(numpy_rmse_and_interval(pred, target)[1], rel=1e-10)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_score_is_refused_in_those_words(bad: float) -> None:
    with pytest.raises(ValueError, match=r"^arrays hold NaN or infinite values$"):
        compute_metrics(np.array([1.0, bad, 2.0]), np.arange(3.0))
