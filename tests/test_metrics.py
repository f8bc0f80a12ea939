"""The metrics against independent computations, the P.1401 mappings, and degenerate input."""

from __future__ import annotations

import math
import subprocess
import sys
from functools import partial
from itertools import combinations
from typing import Any

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from model_bisect.errors import UsageError
from model_bisect.metrics import (
    CHUNK_ROWS,
    MAPPINGS,
    apply_mapping,
    compute_metrics,
    fit_mapping,
    pairwise_sum,
)
from model_bisect.report import MappingDirection

Z975 = 1.959963984540054  # standard normal 97.5% quantile, from tables


def sample(n: int, seed: int, noise: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = rng.uniform(1.0, 5.0, n)
    return target + rng.normal(0.0, noise, n), target


def hand_ranks(values: list[float]) -> list[float]:
    """Average 1-based rank: one more than the count below, plus half the other ties."""
    return [sum(w < v for w in values) + (sum(w == v for w in values) + 1) / 2 for v in values]


def hand_pearson(x: list[float], y: list[float]) -> float:
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy)


def hand_tau_b(x: list[float], y: list[float]) -> float:
    """Kendall's tau-b by counting every pair."""
    concordant = discordant = tied_x = tied_y = 0
    for i, j in combinations(range(len(x)), 2):
        dx, dy = x[i] - x[j], y[i] - y[j]
        if dx == 0 and dy == 0:
            tied_x, tied_y = tied_x + 1, tied_y + 1
        elif dx == 0:
            tied_x += 1
        elif dy == 0:
            tied_y += 1
        elif dx * dy > 0:
            concordant += 1
        else:
            discordant += 1
    pairs = len(x) * (len(x) - 1) // 2
    return (concordant - discordant) / math.sqrt((pairs - tied_x) * (pairs - tied_y))


def test_plcc_and_rmse_match_numpy() -> None:
    pred, target = sample(500, 1)
    m = compute_metrics(pred, target)
    assert m.values["plcc"] == pytest.approx(np.corrcoef(pred, target)[0, 1], abs=1e-12)
    assert m.values["rmse"] == pytest.approx(math.sqrt(np.mean((pred - target) ** 2)), rel=1e-12)
    assert m.n == 500
    assert m.mapping == "none"


def test_srocc_matches_the_textbook_formula_without_ties() -> None:
    pred = [3.1, 0.4, 2.2, 5.9, 4.4, 1.7, 6.3, 2.8]
    target = [2.0, 1.0, 3.5, 4.1, 4.0, 1.5, 5.0, 2.6]
    n = len(pred)
    d2 = sum((a - b) ** 2 for a, b in zip(hand_ranks(pred), hand_ranks(target), strict=True))
    rho = 1 - 6 * d2 / (n * (n * n - 1))
    assert compute_metrics(np.array(pred), np.array(target)).values["srocc"] == pytest.approx(rho)


def test_srocc_and_krocc_match_hand_counts_with_ties() -> None:
    pred = [1.0, 2.0, 2.0, 3.0, 5.0, 4.0, 4.0, 6.0, 0.5, 3.0]
    target = [1.0, 1.0, 2.0, 3.0, 4.0, 4.0, 5.0, 5.0, 2.0, 2.0]
    m = compute_metrics(np.array(pred), np.array(target))
    assert m.values["srocc"] == pytest.approx(hand_pearson(hand_ranks(pred), hand_ranks(target)))
    assert m.values["krocc"] == pytest.approx(hand_tau_b(pred, target))


def test_correlation_intervals_follow_fisher_z() -> None:
    pred, target = sample(200, 2)
    m = compute_metrics(pred, target)
    for name, variance in (
        ("plcc", 1.0 / (200 - 3)),
        ("srocc", 1.06 / (200 - 3)),
        ("krocc", 0.437 / (200 - 4)),
    ):
        r = m.value(name)
        z, half = math.atanh(r), Z975 * math.sqrt(variance)
        assert m.ci[name] == pytest.approx((math.tanh(z - half), math.tanh(z + half)))
        assert m.ci[name][0] < r < m.ci[name][1]


def test_rmse_interval_is_the_normal_interval_of_the_mse_through_the_square_root() -> None:
    pred, target = sample(300, 3)
    sq = [(p - t) ** 2 for p, t in zip(pred.tolist(), target.tolist(), strict=True)]
    mse = sum(sq) / 300
    variance = sum((e - mse) ** 2 for e in sq) / 300
    half = Z975 * math.sqrt(variance / 300)
    expected = (math.sqrt(mse - half), math.sqrt(mse + half))
    assert compute_metrics(pred, target).ci["rmse"] == pytest.approx(expected, rel=1e-12)


def test_rmse_interval_agrees_with_the_percentile_bootstrap() -> None:
    pred, target = sample(300, 3)
    sq = (pred - target) ** 2
    rng = np.random.default_rng(11)
    boots = [math.sqrt(sq[rng.integers(0, 300, size=300)].mean()) for _ in range(2000)]
    low, high = np.quantile(boots, [0.025, 0.975])
    got = compute_metrics(pred, target).ci["rmse"]
    width = high - low
    assert got == pytest.approx((low, high), abs=0.1 * width)


def test_rmse_interval_covers_the_true_rmse_about_95_percent_of_the_time() -> None:
    # Errors with standard deviation 0.5 around the target: the true RMSE is 0.5.
    rng = np.random.default_rng(16)
    covered = 0
    for _ in range(400):
        target = rng.uniform(1.0, 5.0, 100)
        low, high = compute_metrics(target + rng.normal(0.0, 0.5, 100), target).ci["rmse"]
        covered += low <= 0.5 <= high
    assert 0.92 <= covered / 400 <= 0.98


def test_rmse_interval_never_goes_below_zero() -> None:
    target = np.arange(10.0)
    pred = target.copy()
    pred[0] += 3.0  # one large error: the MSE's normal interval would dip below zero
    low, high = compute_metrics(pred, target).ci["rmse"]
    assert low == 0.0 < high


def test_scaled_model_gets_same_plcc_and_after_linear_mapping_same_rmse() -> None:
    pred, target = sample(400, 6)
    scaled = 10 * pred + 3
    raw, big = compute_metrics(pred, target), compute_metrics(scaled, target)
    assert big.values["plcc"] == pytest.approx(raw.values["plcc"], abs=1e-12)
    assert (big.values["srocc"], big.values["krocc"]) == pytest.approx(
        (raw.values["srocc"], raw.values["krocc"])
    )
    assert big.values["rmse"] > 5 * raw.values["rmse"]
    raw_lin = compute_metrics(pred, target, mapping="linear")
    big_lin = compute_metrics(scaled, target, mapping="linear")
    assert big_lin.values["rmse"] == pytest.approx(raw_lin.values["rmse"], rel=1e-9)
    assert big_lin.values["plcc"] == pytest.approx(raw.values["plcc"], abs=1e-12)


def test_linear_mapping_is_the_least_squares_line() -> None:
    pred, target = sample(300, 7)
    slope, intercept = np.polyfit(pred, target, 1)
    assert apply_mapping(pred, target, "linear") == pytest.approx(slope * pred + intercept)


@pytest.mark.parametrize("mapping", ["linear", "cubic", "logistic"])
def test_no_mapping_turns_an_inverted_model_positive(mapping: str) -> None:
    pred, target = sample(300, 8)
    m = compute_metrics(-pred, target, mapping=mapping)
    raw = scipy.stats.pearsonr(-pred, target).statistic
    assert raw < -0.9
    assert m.values["plcc"] == pytest.approx(raw, abs=1e-12)  # unmapped: stays negative
    assert m.mapping == "none"
    assert m.mapping_direction is MappingDirection.DECREASING
    assert m.values["rmse"] == pytest.approx(float(np.sqrt(np.mean((-pred - target) ** 2))))


@pytest.mark.parametrize("mapping", ["linear", "cubic", "logistic"])
def test_a_fitted_mapping_records_that_it_rises(mapping: str) -> None:
    pred, target = sample(300, 8)
    m = compute_metrics(pred, target, mapping=mapping)
    assert m.mapping_direction is MappingDirection.INCREASING
    assert m.to_json()["mapping_direction"] == "increasing"
    assert "mapping_direction" not in compute_metrics(pred, target).to_json()


def test_cubic_mapping_is_the_least_squares_cubic_when_monotonic() -> None:
    rng = np.random.default_rng(9)
    pred = rng.uniform(-2.0, 2.0, 400)
    target = pred**3 + pred + rng.normal(0.0, 0.3, 400)
    expected = np.polyval(np.polyfit(pred, target, 3), pred)
    assert apply_mapping(pred, target, "cubic") == pytest.approx(expected, abs=1e-9)


def test_cubic_mapping_falls_back_to_the_line_when_the_fit_bends_back() -> None:
    rng = np.random.default_rng(10)
    pred = rng.uniform(-1.0, 1.0, 300)
    target = pred**2 + rng.normal(0.0, 0.05, 300)  # a U: its best cubic is not monotonic
    line = apply_mapping(pred, target, "linear")
    assert apply_mapping(pred, target, "cubic") == pytest.approx(line)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(5, 200),
    st.floats(-3.0, 3.0),
    st.floats(0.0, 2.0),
)
def test_cubic_mapping_never_reorders_predictions(
    seed: int, n: int, bend: float, noise: float
) -> None:
    rng = np.random.default_rng(seed)
    pred = rng.uniform(-1.0, 1.0, n)
    target = bend * pred**2 + pred**3 + rng.normal(0.0, noise + 1e-3, n)
    mapped = apply_mapping(pred, target, "cubic")[np.argsort(pred)]
    steps = np.diff(mapped)
    assert (steps >= -1e-9).all()  # rises (or is left alone when only a fall would fit)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.05, 1.0), st.sampled_from(["cubic", "logistic"]))
def test_a_falling_s_curve_is_never_fitted_by_a_falling_map(
    seed: int, noise: float, mapping: str
) -> None:
    rng = np.random.default_rng(seed)
    pred = rng.uniform(-3.0, 3.0, 400)
    target = 2.0 - 3.0 / (1.0 + np.exp(-2.0 * pred)) + rng.normal(0.0, noise, pred.size)
    mapped = apply_mapping(pred, target, mapping)
    assert scipy.stats.pearsonr(mapped, target).statistic < 0.0


def test_logistic_mapping_recovers_a_known_logistic() -> None:
    rng = np.random.default_rng(12)
    pred = rng.uniform(0.0, 10.0, 2000)
    truth = 1.0 + 4.0 / (1.0 + np.exp(-1.3 * (pred - 5.5)))
    target = truth + rng.normal(0.0, 0.05, pred.size)
    assert np.abs(apply_mapping(pred, target, "logistic") - truth).max() < 0.05


def test_logistic_mapping_on_many_rows_recovers_a_known_logistic() -> None:
    rng = np.random.default_rng(13)
    pred = rng.uniform(-3.0, 3.0, 50_000)
    truth = 2.0 + 3.0 / (1.0 + np.exp(-2.0 * pred))
    target = truth + rng.normal(0.0, 0.1, pred.size)
    assert np.abs(apply_mapping(pred, target, "logistic") - truth).max() < 0.05


def test_logistic_mapping_never_fits_worse_than_the_line() -> None:
    pred, target = sample(500, 14)
    sse = {k: float(((apply_mapping(pred, target, k) - target) ** 2).sum()) for k in MAPPINGS}
    assert sse["logistic"] <= sse["linear"] * (1 + 1e-12)
    assert sse["linear"] <= sse["none"]


@pytest.mark.parametrize("mapping", MAPPINGS)
def test_constant_predictions_give_nan_correlations_without_warnings(mapping: str) -> None:
    target = np.linspace(1.0, 5.0, 50)
    m = compute_metrics(np.full(50, 0.1), target, mapping=mapping)
    assert all(math.isnan(m.value(k)) for k in ("plcc", "srocc", "krocc"))
    assert math.isfinite(m.values["rmse"])
    assert all(math.isnan(v) for v in m.ci["plcc"])


@pytest.mark.parametrize("mapping", MAPPINGS)
def test_constant_target_gives_nan_correlations(mapping: str) -> None:
    m = compute_metrics(np.linspace(0.0, 1.0, 30), np.full(30, 3.0), mapping=mapping)
    assert all(math.isnan(m.value(k)) for k in ("plcc", "srocc", "krocc"))


@pytest.mark.parametrize("n", [0, 1, 2])
@pytest.mark.parametrize("mapping", MAPPINGS)
def test_fewer_than_three_rows_give_nan_correlations(n: int, mapping: str) -> None:
    m = compute_metrics(np.arange(n, dtype=float), np.arange(n, dtype=float) * 2, mapping=mapping)
    assert m.n == n
    assert all(math.isnan(m.value(k)) for k in ("plcc", "srocc", "krocc"))
    assert set(m.ci) == {"plcc", "srocc", "krocc", "rmse"}


def test_perfect_correlation_has_a_zero_width_interval() -> None:
    x = np.linspace(0.0, 1.0, 20)
    m = compute_metrics(x, x)
    assert m.values["plcc"] == pytest.approx(1.0)
    assert m.ci["plcc"][0] == pytest.approx(1.0)


def test_float32_input_is_accepted() -> None:
    pred, target = sample(100, 15)
    m32 = compute_metrics(pred.astype(np.float32), target.astype(np.float32))
    assert m32.values["plcc"] == pytest.approx(
        compute_metrics(pred, target).values["plcc"], abs=1e-6
    )


def test_unknown_mapping_is_a_usage_error_naming_the_flag() -> None:
    with pytest.raises(UsageError, match="--mapping") as info:
        compute_metrics(np.arange(5.0), np.arange(5.0), mapping="quadratic")
    assert "logistic" in str(info.value)


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="length"):
        compute_metrics(np.arange(5.0), np.arange(6.0))


def test_non_finite_predictions_are_an_error() -> None:
    with pytest.raises(ValueError, match="NaN"):
        compute_metrics(np.array([1.0, np.nan, 2.0]), np.arange(3.0))


def test_precomputed_target_ranks_give_the_same_metrics() -> None:
    from model_bisect.metrics import target_ranks

    rng = np.random.default_rng(11)
    target = np.round(rng.normal(size=500), 1)  # rounding makes ties, which mid-ranks share
    pred = target + rng.normal(scale=0.3, size=500)
    plain = compute_metrics(pred, target)
    shared = compute_metrics(pred, target, ranks=target_ranks(target))
    assert shared.values["srocc"] == pytest.approx(plain.values["srocc"], abs=1e-12)
    assert (shared.values["plcc"], shared.values["krocc"], shared.values["rmse"]) == (
        plain.values["plcc"],
        plain.values["krocc"],
        plain.values["rmse"],
    )


def test_a_cubic_that_falls_back_reports_the_line_it_used() -> None:
    rng = np.random.default_rng(10)
    pred = rng.uniform(-1.0, 1.0, 300)
    target = pred**2 + rng.normal(0.0, 0.05, 300)  # a U: the cubic would bend back
    mapped, used = fit_mapping(pred, target, "cubic")
    assert used == "linear"
    assert mapped == pytest.approx(apply_mapping(pred, target, "linear"))
    assert compute_metrics(pred, target, mapping="cubic").mapping == "linear"


def test_a_cubic_or_logistic_that_fits_keeps_its_name() -> None:
    rng = np.random.default_rng(9)
    pred = rng.uniform(-2.0, 2.0, 400)
    target = pred**3 + pred + rng.normal(0.0, 0.3, 400)
    assert fit_mapping(pred, target, "cubic")[1] == "cubic"
    s_pred = rng.uniform(0.0, 10.0, 2000)
    s_target = 1.0 + 4.0 / (1.0 + np.exp(-1.3 * (s_pred - 5.5))) + rng.normal(0, 0.05, 2000)
    assert compute_metrics(s_pred, s_target, mapping="logistic").mapping == "logistic"


def test_a_logistic_on_constant_predictions_reports_the_line() -> None:
    pred = np.full(50, 3.0)
    target = np.linspace(1.0, 5.0, 50)
    assert fit_mapping(pred, target, "logistic")[1] == "linear"
    assert fit_mapping(pred, target, "none")[1] == "none"


def test_z975_is_the_standard_normal_quantile() -> None:
    from scipy import stats

    from model_bisect import metrics

    assert float(stats.norm.ppf(0.975)) == pytest.approx(metrics._Z95, abs=1e-15)


def _corpus() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Predictions and targets of the shapes a quality model meets, ties above all."""
    rng = np.random.default_rng(17)
    mos = rng.uniform(1.0, 5.0, 3000)
    coarse = np.round(mos * 2) / 2  # MOS on a half-point grid: heavy ties
    return [
        ("continuous", mos + rng.normal(0.0, 0.4, 3000), mos),
        ("float32 predictions", (mos + rng.normal(0.0, 0.4, 3000)).astype(np.float32), mos),
        ("ties on both sides", np.round(mos + rng.normal(0.0, 0.4, 3000), 1), coarse),
        ("int8-like predictions", np.clip(np.round(mos * 3), -128, 127).astype(np.int8), mos),
        ("three distinct predictions", rng.integers(0, 3, 3000).astype(float), coarse),
        ("anti-correlated", -mos + rng.normal(0.0, 0.2, 3000), mos),
        ("tiny n", np.array([2.0, 1.0, 3.0]), np.array([1.0, 2.0, 3.0])),
        ("tiny n with a tie", np.array([1.0, 1.0, 2.0, 0.5]), np.array([3.0, 1.0, 2.0, 2.0])),
        ("negative zero ties zero", np.array([-0.0, 0.0, 1.0, -1.0, 0.0]), np.arange(5.0)),
        ("float64 beyond float32", 1.0 + np.arange(50) * 1e-12, np.sin(np.arange(50.0))),
    ]


@pytest.mark.parametrize("name", [case[0] for case in _corpus()])
def test_correlations_agree_with_scipy_stats(name: str) -> None:
    from scipy import stats

    pred, target = next((p, t) for n, p, t in _corpus() if n == name)
    m = compute_metrics(pred, target)
    x = pred.astype(np.float64)
    assert m.values["plcc"] == pytest.approx(stats.pearsonr(x, target).statistic, abs=1e-6)
    assert m.values["srocc"] == pytest.approx(stats.spearmanr(x, target).statistic, abs=1e-6)
    assert m.values["krocc"] == pytest.approx(stats.kendalltau(x, target).statistic, abs=1e-6)


@pytest.mark.filterwarnings("ignore")  # scipy warns about constant input; we only compare
@pytest.mark.parametrize("side", ["predictions", "target"])
def test_constant_input_is_nan_where_scipy_says_nan(side: str) -> None:
    from scipy import stats

    varying, constant = np.arange(20.0), np.full(20, 4.0)
    pred, target = (constant, varying) if side == "predictions" else (varying, constant)
    m = compute_metrics(pred, target)
    assert math.isnan(stats.spearmanr(pred, target).statistic)
    assert math.isnan(stats.kendalltau(pred, target).statistic)
    assert math.isnan(m.values["srocc"])
    assert math.isnan(m.values["krocc"])


@pytest.mark.parametrize(
    ("mapping", "loads_scipy"), [("none", False), ("cubic", False), ("logistic", True)]
)
def test_only_the_logistic_mapping_imports_scipy(mapping: str, loads_scipy: bool) -> None:
    probe = (
        "import sys, numpy as np; from model_bisect.metrics import compute_metrics; "
        "r = np.random.default_rng(0); t = r.uniform(1, 5, 500); "
        f"compute_metrics(t + r.normal(0, .3, 500), t, mapping={mapping!r}); "
        "print('scipy' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(loads_scipy)


@pytest.mark.parametrize("rows", [0, 1, 7, CHUNK_ROWS, CHUNK_ROWS + 1, 5 * CHUNK_ROWS + 13])
def test_pairwise_sum_in_blocks_is_numpys_whole_vector_sum_to_the_bit(rows: int) -> None:
    values = np.random.default_rng(rows).lognormal(0.0, 3.0, rows).astype(np.float32)
    whole = values.astype(np.float64)
    blocks = pairwise_sum(lambda a, b: values[a:b].astype(np.float64), rows)
    assert blocks == float(whole.sum())


def test_pairwise_sum_lets_go_of_what_it_read_without_a_collection() -> None:
    import gc
    import weakref

    rows = 3 * CHUNK_ROWS
    values = np.ones(rows, dtype=np.float32)
    alive = weakref.ref(values)
    reader = partial(_float64_rows, values)
    del values
    gc.disable()  # a reference cycle would keep the array until the next collection
    try:
        assert pairwise_sum(reader, rows) == float(rows)
        del reader
        assert alive() is None
    finally:
        gc.enable()


def _float64_rows(values: np.ndarray, start: int, stop: int) -> np.ndarray:
    return values[start:stop].astype(np.float64)


def _float32_target_whose_buffered_mean_moves() -> tuple[np.ndarray, np.ndarray]:
    """Predictions and a float32 target on which ``np.mean(target, dtype=float64)`` (numpy
    casts in buffers) differs from the mean of the float64 copy: where a float32 target would
    give other metrics than the float64 one if any sum skipped the exact upcast."""
    for seed in range(100):
        rng = np.random.default_rng(seed)
        target = rng.normal(1.0, 3.0, 3 * CHUNK_ROWS + 17).astype(np.float32)
        if np.mean(target, dtype=np.float64) != np.mean(target.astype(np.float64)):
            return target + rng.normal(0.0, 0.5, target.size), target
    raise AssertionError("no seed moves the buffered mean")


@pytest.mark.parametrize("mapping", MAPPINGS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_float32_target_scores_as_its_float64_copy_to_the_last_bit(
    mapping: str, dtype: type[np.floating[Any]]
) -> None:
    pred, target = _float32_target_whose_buffered_mean_moves()
    pred = pred.astype(dtype)
    as_float64 = target.astype(np.float64)
    kept = compute_metrics(pred, target, mapping=mapping)
    copied = compute_metrics(pred, as_float64, mapping=mapping)
    assert kept.values == copied.values
    assert kept.ci == copied.ci
    assert (kept.mapping, kept.mapping_direction) == (copied.mapping, copied.mapping_direction)
    if mapping == "none":  # and both are numpy's float64 Pearson r, computed by hand
        x = pred.astype(np.float64) - np.mean(pred, dtype=np.float64)
        y = as_float64 - as_float64.mean()
        assert kept.values["plcc"] == pytest.approx(x @ y / math.sqrt((x @ x) * (y @ y)), abs=1e-15)


@pytest.mark.parametrize("kind", ["linear", "cubic", "logistic"])
def test_metrics_on_a_fit_made_beforehand_equal_the_metrics_that_fit_it_themselves(
    kind: str,
) -> None:
    """The slices share the run's fit through ``fit_once``: handed to ``compute_metrics``, it
    must give the report the same numbers to the bit, float32 input included."""
    from model_bisect.metrics import fit_once

    rng = np.random.default_rng(12)
    pred = rng.uniform(0.0, 10.0, 3000).astype(np.float32)
    target = (1.0 + 4.0 / (1.0 + np.exp(-1.3 * (pred - 5.5))) + rng.normal(0, 0.1, 3000)).astype(
        np.float32
    )
    fitted = fit_once(pred, target, kind)  # the cubic falls back to the line here
    assert fitted.used == fit_mapping(pred, target, kind)[1]
    assert np.array_equal(fitted.values, fit_mapping(pred, target, kind)[0])
    shared = compute_metrics(pred, target, mapping=kind, fitted=fitted)
    assert shared.to_json() == compute_metrics(pred, target, mapping=kind).to_json()
    with pytest.raises(ValueError, match="needs a fitted mapping"):
        fit_once(pred, target, "none")
