"""Significance pieces the mutation session found unpinned: Williams' test at its edges, and
the paired bootstrap's per-resample statistics, each resample checked against scipy.stats on
the rows it draws (written out, one copy per draw).

The p-value tests in test_significance.py count only the sign of each resample's delta, so
a statistic that is off by a little still gives the same p; these compare the deltas.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from model_bisect.significance import _KendallForms, _MidRanks, _SpearmanDeltas, williams_test


def steiger_t2(r_ta: float, r_tb: float, r_ab: float, n: int) -> float:
    det = 1 - r_ta**2 - r_tb**2 - r_ab**2 + 2 * r_ta * r_tb * r_ab
    mean = (r_ta + r_tb) / 2
    denom = 2 * (n - 1) / (n - 3) * det + mean**2 * (1 - r_ab) ** 3
    return (r_ta - r_tb) * math.sqrt((n - 1) * (1 + r_ab) / denom)


def test_williams_on_four_rows_is_student_t_with_one_degree_of_freedom() -> None:
    expected = stats.t.sf(steiger_t2(0.9, 0.5, 0.6, 4), 1)
    assert williams_test(0.9, 0.5, 0.6, 4) == pytest.approx(expected, rel=1e-12)


def test_williams_reads_a_correlation_rounded_past_one_as_one() -> None:
    over, under = 1.0 + 1e-12, -1.0 - 1e-12
    assert williams_test(over, 0.5, 0.5, 50) == williams_test(1.0, 0.5, 0.5, 50)
    assert williams_test(0.5, under, 0.3, 50) == williams_test(0.5, -1.0, 0.3, 50)
    assert williams_test(0.5, 0.4, over, 50) == williams_test(0.5, 0.4, 1.0, 50)


def test_williams_with_b_identical_to_a_is_certain_either_way() -> None:
    # r_ab = 1 leaves no variance: a real difference is infinitely many standard errors.
    assert williams_test(0.8, 0.6, 1.0, 50) == 0.0  # b worse: certainly a drop
    assert williams_test(0.6, 0.8, 1.0, 50) == 1.0  # b better: certainly not
    assert williams_test(0.7, 0.7, 1.0, 50) == 0.5


def _counts(m: int, seed: int, resamples: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, m, size=(resamples, m))
    counts = np.stack([np.bincount(r, minlength=m) for r in rows]).astype(np.float64)
    # Degenerate resamples too: every draw of one row, and two rows only.
    one_row = np.zeros(m)
    one_row[1] = m
    two_rows = np.zeros(m)
    two_rows[0], two_rows[2] = m - 1, 1
    return np.vstack([counts, one_row, two_rows])


def _drawn(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    return np.repeat(values, counts.astype(int))


def _statistic(name: str, target: np.ndarray, pred: np.ndarray, counts: np.ndarray) -> float:
    x, y = _drawn(pred, counts), _drawn(target, counts)
    if np.ptp(x) == 0.0 or np.ptp(y) == 0.0:
        return math.nan
    if name == "srocc":
        return float(stats.spearmanr(x, y).statistic)
    return float(stats.kendalltau(x, y).statistic)


def _models(m: int, seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = rng.uniform(1.0, 5.0, m)
    anchor = target + rng.normal(0.0, 0.7, m)
    model = anchor + rng.normal(0.0, 0.7, m)
    if ties:  # the target on a grid, the predictions quantised: the rank statistics' hard case
        return np.round(target * 2) / 2, np.round(anchor), np.round(model)
    return target, anchor, model


@pytest.mark.parametrize("ties", [False, True])
def test_mid_ranks_inside_a_resample_are_scipys_ranks_of_the_drawn_rows(ties: bool) -> None:
    values = _models(25, 1, ties)[1]
    ranker = _MidRanks(values)
    counts = _counts(25, 2, 20)
    got = ranker.ranks(counts)
    for row, c in zip(got, counts, strict=True):
        expected = stats.rankdata(_drawn(values, c))
        drawn = c > 0
        # Every copy of a row has the same rank; compare the rank of each drawn row.
        starts = np.concatenate([[0], np.cumsum(c[drawn].astype(int))[:-1]])
        assert row[drawn] == pytest.approx(expected[starts], abs=1e-12)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("name", ["srocc", "krocc"])
def test_each_resamples_delta_is_scipys_statistic_on_the_drawn_rows(name: str, ties: bool) -> None:
    target, anchor, model = _models(30, 3, ties)
    counts = _counts(30, 4, 25)
    resampled = (_SpearmanDeltas if name == "srocc" else _KendallForms)(target, anchor, model)
    got = resampled.deltas(counts)
    expected = [
        _statistic(name, target, model, c) - _statistic(name, target, anchor, c) for c in counts
    ]
    assert got == pytest.approx(np.array(expected), abs=1e-9, nan_ok=True)
    assert math.isnan(got[-2])  # the resample of one row has no correlation at all
    assert np.isfinite(got[:-2]).all()
