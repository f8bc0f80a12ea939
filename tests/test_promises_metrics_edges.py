"""The metrics' edges the mutation session's second pass found unpinned (docs/testing.md):
a constant prediction under the line, a cubic on predictions of tiny spread far from zero,
and logistics fitted where a guard on the spread or the slope could wrongly refuse them.

Expected values come from numpy and scipy.optimize, never from model_bisect.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

from model_bisect.metrics import compute_metrics, fit_mapping


def _curve(x: np.ndarray, a: float, b: float, k: float, c: float) -> np.ndarray:
    return np.asarray(a + b / (1.0 + np.exp(-k * (x - c))))


def _logistic_oracle(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """curve_fit's least-squares logistic (trust region) and its parameters (a, b, k, c)."""
    start = [target.min(), np.ptp(target), 4.0 / np.ptp(pred), float(np.median(pred))]
    params, _ = scipy.optimize.curve_fit(
        _curve, pred, target, p0=start, method="trf", xtol=1e-15, ftol=1e-15, maxfev=20_000
    )
    return _curve(pred, *params), params


def test_constant_predictions_under_the_line_score_the_targets_own_spread() -> None:
    # The line maps a constant to the target's mean, so the RMSE is the target's std.
    target = np.random.default_rng(7).normal(5.0, 2.0, 50)
    m = compute_metrics(np.full(50, 3.0), target, mapping="linear")
    assert m.mapping == "linear"
    assert m.values["rmse"] == pytest.approx(float(np.std(target)), rel=1e-12)


def test_a_cubic_on_predictions_of_tiny_spread_far_from_zero_is_still_the_cubic() -> None:
    # Raw powers of x = 1000 + 1e-3 u cannot be told apart: only a standardised design can
    # pin the four parameters. numpy's Polynomial.fit maps the range onto [-1, 1] first.
    rng = np.random.default_rng(3)
    u = rng.uniform(-1.0, 1.0, 200)
    pred = 1000.0 + 1e-3 * u
    target = u + 0.5 * u**3 + rng.normal(0.0, 0.01, u.size)  # rises everywhere
    expected = np.polynomial.Polynomial.fit(pred, target, 3)(pred)
    mapped, used = fit_mapping(pred, target, "cubic")
    assert used == "cubic"
    assert mapped == pytest.approx(expected, abs=1e-6)


def test_a_logistic_on_predictions_whose_spread_is_exactly_one_is_fitted() -> None:
    # Mean 0 and mean square 12 / 12: numpy's std is 1.0 to the last bit.
    pred = np.array([-2.0, -1.0, -1.0, -1.0, *[0.0] * 6, 1.0, 1.0, 1.0, 2.0])
    assert float(pred.std()) == 1.0
    target = 1.0 / (1.0 + np.exp(-3.0 * pred)) + np.linspace(0.0, 0.01, pred.size)
    expected, _ = _logistic_oracle(pred, target)
    mapped, used = fit_mapping(pred, target, "logistic")
    assert used == "logistic"
    assert mapped == pytest.approx(expected, abs=1e-6)


def test_a_gentle_logistic_in_heavy_noise_is_fitted_not_refused_as_flat() -> None:
    # A weak S under noise: the least-squares logistic rises gently (b k / 4, its slope at
    # the centre in standard units, is below a quarter) and still fits better than the line.
    rng = np.random.default_rng(5)
    pred = rng.uniform(-2.0, 2.0, 20_000)
    target = 0.2 * np.tanh(0.5 * pred) + rng.normal(0.0, 1.0, pred.size)
    expected, (_, b, k, _) = _logistic_oracle(pred, target)
    gentle = b * k * float(pred.std()) / float(target.std())
    assert 0.0 < gentle < 1.0
    mapped, used = fit_mapping(pred, target, "logistic")
    assert used == "logistic"
    assert mapped == pytest.approx(expected, abs=1e-4)


def test_a_logistic_still_drifting_after_its_evaluation_budget_is_the_line() -> None:
    # Half an S (a saturating exponential) pulls the fit's centre off past the data, and the
    # optimiser is still moving when its 100 evaluations run out: such a fit is not used.
    rng = np.random.default_rng(2)
    pred = rng.uniform(0.0, 10.0, 149)
    target = 0.01 * pred - 3.0 * np.exp(-pred) + rng.normal(0.0, 0.05, pred.size)
    slope, intercept = np.polyfit(pred, target, 1)
    mapped, used = fit_mapping(pred, target, "logistic")
    assert used == "linear"
    assert mapped == pytest.approx(slope * pred + intercept, rel=1e-9, abs=1e-9)


def test_a_logistic_onto_a_target_whose_spread_is_exactly_one_is_fitted() -> None:
    # Ratings of -1 or +1, mirrored about zero: numpy's std of the target is 1.0 exactly.
    rng = np.random.default_rng(4)
    half = np.sort(rng.uniform(0.0, 3.0, 100))
    rated = np.where(rng.uniform(0.0, 1.0, half.size) < 1.0 / (1.0 + np.exp(-3.0 * half)), 1, -1)
    pred = np.concatenate([-half[::-1], half])
    target = np.concatenate([-rated[::-1], rated]).astype(np.float64)
    assert float(target.std()) == 1.0
    expected, _ = _logistic_oracle(pred, target)
    mapped, used = fit_mapping(pred, target, "logistic")
    assert used == "logistic"
    assert mapped == pytest.approx(expected, abs=1e-6)
