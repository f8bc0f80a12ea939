"""Significance of a drop from the anchor: Williams' test and the paired bootstrap, pinned
against values computed independently here."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

from model_bisect.catalogue import CATALOGUE, metric_spec
from model_bisect.errors import UnknownMetricError, UsageError
from model_bisect.metrics import apply_mapping
from model_bisect.significance import drop_p_value, williams_test
from tests.metrickit import add_metric


def test_williams_matches_steiger_case_a_worked_by_hand() -> None:
    # Steiger (1980, Psychological Bulletin 87:245) case A, also the example of R's
    # psych::r.test(103, .4, .5, .1): n = 103, r12 = .4, r13 = .5, r23 = .1.
    # By hand: |R| = 1 - .16 - .25 - .01 + 2(.4)(.5)(.1) = .62; mean r = .45;
    # denominator = 2 (102/100) .62 + .45^2 (.9)^3 = 1.2648 + .1476225 = 1.4124225;
    # T2 = (.4 - .5) sqrt(102 * 1.1 / 1.4124225) = -0.1 * sqrt(79.437987) = -0.891280.
    t2 = -0.891280
    # r13 > r12, so "corr(target, b) < corr(target, a)" with a = 3, b = 2 has p = P(T > -t2).
    assert williams_test(0.5, 0.4, 0.1, 103) == pytest.approx(stats.t.sf(-t2, 100), rel=1e-5)
    assert williams_test(0.4, 0.5, 0.1, 103) == pytest.approx(stats.t.sf(t2, 100), rel=1e-5)


def test_williams_from_the_formula_on_strong_correlations() -> None:
    # Quality-model shaped numbers: anchor r = .92, model r = .89, the two models r = .95.
    r_ta, r_tb, r_ab, n = 0.92, 0.89, 0.95, 256
    det = 1 - r_ta**2 - r_tb**2 - r_ab**2 + 2 * r_ta * r_tb * r_ab
    mean = (r_ta + r_tb) / 2
    t2 = (r_ta - r_tb) * math.sqrt(
        (n - 1) * (1 + r_ab) / (2 * (n - 1) / (n - 3) * det + mean**2 * (1 - r_ab) ** 3)
    )
    assert williams_test(r_ta, r_tb, r_ab, n) == pytest.approx(stats.t.sf(t2, n - 3))
    assert williams_test(r_ta, r_tb, r_ab, n) < 0.01


def test_williams_one_sided_p_values_of_both_directions_sum_to_one() -> None:
    assert williams_test(0.7, 0.6, 0.5, 80) + williams_test(0.6, 0.7, 0.5, 80) == pytest.approx(1)


def test_williams_equal_correlations_give_one_half() -> None:
    assert williams_test(0.8, 0.8, 0.6, 50) == pytest.approx(0.5)
    assert williams_test(0.8, 0.8, 1.0, 50) == pytest.approx(0.5)  # b identical to a


@pytest.mark.parametrize("n", [0, 3])
def test_williams_needs_more_than_three_rows(n: int) -> None:
    assert math.isnan(williams_test(0.5, 0.4, 0.3, n))


def test_williams_with_an_undefined_correlation_is_nan() -> None:
    assert math.isnan(williams_test(math.nan, 0.4, 0.3, 100))


def models(n: int, seed: int, extra_noise: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = rng.uniform(1.0, 5.0, n)
    anchor = target + rng.normal(0.0, 0.6, n)
    return target, anchor, anchor + rng.normal(0.0, extra_noise, n)


def test_plcc_drop_is_williams_on_the_mapped_predictions() -> None:
    target, anchor, model = models(150, 1, 0.5)
    model = 3 * model - 1  # another scale: the linear mapping must undo it
    ma = apply_mapping(anchor, target, "linear")
    mb = apply_mapping(model, target, "linear")
    r = np.corrcoef([target, ma, mb])
    expected = williams_test(r[0, 1], r[0, 2], r[1, 2], 150)
    got = drop_p_value("plcc", target, anchor, model, mapping="linear")
    assert got == pytest.approx(expected)


def brute_force_p(
    metric: str, t: np.ndarray, a: np.ndarray, b: np.ndarray, resamples: int, seed: int
) -> float:
    """The paired bootstrap as a plain loop: same rows for both models in every resample."""

    def score(pred: np.ndarray, rows: np.ndarray) -> float:
        if metric == "srocc":
            return float(stats.spearmanr(pred[rows], t[rows]).statistic)
        if metric == "krocc":
            return float(stats.kendalltau(pred[rows], t[rows]).statistic)
        return math.sqrt(float(np.mean((pred[rows] - t[rows]) ** 2)))

    rng = np.random.default_rng(seed)
    not_worse = 0
    for _ in range(resamples):
        rows = rng.integers(0, t.size, size=t.size)
        worse = score(a, rows) - score(b, rows)
        if metric == "rmse":
            worse = -worse
        not_worse += not worse > 0
    return (1 + not_worse) / (resamples + 1)


@pytest.mark.parametrize("metric", ["srocc", "krocc", "rmse"])
@pytest.mark.parametrize("ties", [False, True])
def test_paired_bootstrap_matches_a_brute_force_loop(metric: str, ties: bool) -> None:
    target, anchor, model = models(60, 2, 0.4)
    if ties:  # MOS on a coarse grid and quantised predictions: the rank metrics' hard case
        target, anchor, model = np.round(target * 2) / 2, np.round(anchor, 1), np.round(model, 1)
    expected = brute_force_p(metric, target, anchor, model, 300, 7)
    assert drop_p_value(metric, target, anchor, model, resamples=300, seed=7) == expected


@pytest.mark.parametrize("metric", ["plcc", "srocc", "krocc", "rmse"])
def test_clearly_worse_model_is_significant(metric: str) -> None:
    target, anchor, _ = models(400, 3, 0.0)
    worse = anchor + np.random.default_rng(4).normal(0.0, 1.5, 400)
    assert drop_p_value(metric, target, anchor, worse, resamples=200) < 0.01


@pytest.mark.parametrize("metric", ["plcc", "srocc", "krocc", "rmse"])
def test_clearly_better_model_is_not_significant(metric: str) -> None:
    target, anchor, _ = models(400, 5, 0.0)
    worse = anchor + np.random.default_rng(6).normal(0.0, 1.5, 400)
    assert drop_p_value(metric, target, worse, anchor, resamples=200) > 0.9


@pytest.mark.parametrize("metric", ["srocc", "krocc", "rmse"])
def test_anchor_against_itself_is_never_significant(metric: str) -> None:
    target, anchor, _ = models(100, 7, 0.0)
    assert drop_p_value(metric, target, anchor, anchor, resamples=50) == 1.0


def test_subsampled_bootstrap_on_many_rows_agrees_with_the_full_bootstrap() -> None:
    # 30,000 rows is above the RMSE cap, so the code resamples a 10,000-row subsample and
    # rescales; a full bootstrap of all rows, vectorised here, gives the reference p-value.
    rng = np.random.default_rng(8)
    n = 30_000
    target = rng.uniform(1.0, 5.0, n)
    anchor = target + rng.normal(0.0, 0.6, n)
    model = target + rng.normal(0.0, 0.6, n) * 1.004  # a drop of about one standard error
    ea, eb = (anchor - target) ** 2, (model - target) ** 2
    boot = np.random.default_rng(9)
    worse = []
    for _ in range(10):
        rows = boot.integers(0, n, size=(100, n))
        worse.append(np.sqrt(eb[rows].mean(axis=1)) - np.sqrt(ea[rows].mean(axis=1)))
    reference = float(np.mean(np.concatenate(worse) <= 0))
    assert 0.05 < reference < 0.6, "the case should sit between clearly worse and clearly not"
    got = drop_p_value("rmse", target, anchor, model)
    assert got == pytest.approx(reference, abs=0.06)


@pytest.mark.parametrize("metric", ["srocc", "krocc"])
def test_rank_drop_on_many_rows_is_detected_after_subsampling(metric: str) -> None:
    target, anchor, _ = models(12_000, 10, 0.0)
    model = anchor + np.random.default_rng(11).normal(0.0, 0.6, 12_000)
    assert drop_p_value(metric, target, anchor, model, resamples=200) < 0.01
    assert drop_p_value(metric, target, model, anchor, resamples=200) > 0.99


def test_constant_model_gives_nan() -> None:
    target, anchor, _ = models(50, 12, 0.0)
    assert math.isnan(drop_p_value("srocc", target, anchor, np.full(50, 2.0)))
    assert math.isnan(drop_p_value("plcc", target, anchor, np.full(50, 2.0)))


def test_unknown_metric_is_a_usage_error_not_the_rmse_formula() -> None:
    with pytest.raises(UnknownMetricError, match="unknown metric 'mae'") as raised:
        drop_p_value("mae", np.arange(5.0), np.arange(5.0), np.arange(5.0))
    assert isinstance(raised.value, UsageError)


def test_a_metric_without_a_test_has_no_p_value(monkeypatch: pytest.MonkeyPatch) -> None:
    add_metric(monkeypatch)  # MAE's catalogue entry names no drop test
    target, anchor, model = models(80, 13, 0.5)
    assert math.isnan(drop_p_value("mae", target, anchor, model))


@pytest.mark.parametrize("metric", ["srocc", "krocc", "rmse"])
def test_the_bootstrap_subsamples_to_the_catalogues_row_cap(
    monkeypatch: pytest.MonkeyPatch, metric: str
) -> None:
    # Above its boot_rows a metric's bootstrap runs on a subsample: a cap at the row count
    # changes nothing, a smaller one changes the resamples.
    target, anchor, model = models(120, 7, 0.15)  # a drop of p ~ 0.2-0.3, not saturated
    p = drop_p_value(metric, target, anchor, model, resamples=200)
    assert 0.05 < p < 0.5
    shipped = CATALOGUE.specs
    for cap, same in ((120, True), (60, False)):
        capped = dataclasses.replace(metric_spec(metric), boot_rows=cap)
        specs = tuple(capped if s.name == metric else s for s in shipped)
        monkeypatch.setattr(CATALOGUE, "specs", specs)
        assert (drop_p_value(metric, target, anchor, model, resamples=200) == p) is same


def test_same_seed_gives_the_same_p_value() -> None:
    target, anchor, model = models(80, 13, 0.5)
    first = drop_p_value("srocc", target, anchor, model, resamples=100, seed=5)
    assert drop_p_value("srocc", target, anchor, model, resamples=100, seed=5) == first
