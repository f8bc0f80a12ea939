"""The rank statistics at the edges the mutation session's second pass found unpinned: three
rows, a target of two values, and negative zero, which ties with zero. scipy is the
reference every time.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from model_bisect.ranks import rank_correlations, rank_target


def _scipy(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    return (
        float(stats.spearmanr(x, y).statistic),
        float(stats.kendalltau(x, y).statistic),
    )


def test_three_rows_already_have_rank_correlations() -> None:
    x, y = np.array([1.0, 3.0, 2.0]), np.array([1.0, 2.0, 3.0])
    assert rank_correlations(x, rank_target(y)) == pytest.approx(_scipy(x, y), abs=1e-12)


def test_a_target_of_two_values_is_ranked_not_refused() -> None:
    x = np.array([0.1, 0.4, 0.2, 0.9, 0.5, 0.3])
    y = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 1.0])
    assert rank_correlations(x, rank_target(y)) == pytest.approx(_scipy(x, y), abs=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_negative_zero_ties_with_zero(dtype: type) -> None:
    x: np.ndarray = np.array([-0.0, 0.0, 1.0, -1.0, 0.5, -0.0], dtype=dtype)
    y = np.array([2.0, 3.0, 5.0, 1.0, 4.0, 2.5])
    assert rank_correlations(x, rank_target(y)) == pytest.approx(
        _scipy(x.astype(np.float64), y), abs=1e-12
    )


def test_two_rows_have_no_rank_correlations() -> None:
    x, y = np.array([1.0, 2.0]), np.array([1.0, 2.0])
    spearman, kendall = rank_correlations(x, rank_target(y))
    assert np.isnan(spearman)
    assert np.isnan(kendall)


def test_predictions_whose_only_change_is_after_the_first_row_are_not_constant() -> None:
    x = np.array([0.0, 1.0, 1.0, 1.0, 1.0])
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert rank_correlations(x, rank_target(y)) == pytest.approx(_scipy(x, y), abs=1e-12)
