"""The rank statistics against brute force and scipy.stats, on arrays full of ties."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from model_bisect.ranks import (
    _packed_low_halves,
    count_inversions,
    mid_ranks,
    rank_correlations,
    rank_target,
)


def brute_inversions(values: list[int]) -> int:
    return sum(a > b for a, b in combinations(values, 2))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=300))
def test_inversions_match_a_brute_force_count(values: list[int]) -> None:
    # Values from a small range repeat a lot: equal pairs must never count.
    assert count_inversions(np.array(values, dtype=np.int64)) == brute_inversions(values)


@pytest.mark.parametrize("n", [31, 32, 33, 64, 96, 100, 1000, 4097])
def test_inversions_of_lengths_that_are_not_powers_of_two(n: int) -> None:
    values = np.random.default_rng(n).integers(0, n, n)
    assert count_inversions(values) == brute_inversions(values.tolist())


def fenwick_inversions(values: list[int]) -> int:
    """O(n log n) reference for sequences too long to compare pair by pair."""
    size = max(values) + 2
    tree = [0] * (size + 1)
    found = 0
    for seen, value in enumerate(values):
        i, at_most = value + 1, 0
        while i > 0:  # earlier values <= value
            at_most += tree[i]
            i -= i & -i
        found += seen - at_most
        i = value + 1
        while i <= size:
            tree[i] += 1
            i += i & -i
    return found


@pytest.mark.parametrize("high", [50, 2**29])
def test_inversions_of_long_runs_with_and_without_ties(high: int) -> None:
    # Levels far wider than a block (runs of up to 64k values) and a long unpaired tail.
    values = np.random.default_rng(high).integers(0, high, 100_003)
    dense = np.unique(values, return_inverse=True)[1]  # same order, a small Fenwick tree
    assert count_inversions(values) == fenwick_inversions(dense.tolist())


def test_inversions_of_sorted_and_reversed_sequences() -> None:
    ramp = np.arange(5000)
    assert count_inversions(ramp) == 0
    assert count_inversions(ramp[::-1]) == 5000 * 4999 // 2
    assert count_inversions(np.full(5000, 7)) == 0


def test_inversions_leave_the_input_alone_unless_told() -> None:
    values = np.array([3, 1, 2], dtype=np.int32)
    assert count_inversions(values) == 2
    assert values.tolist() == [3, 1, 2]


def test_inversions_refuse_values_out_of_range() -> None:
    with pytest.raises(ValueError, match="2\\*\\*30"):
        count_inversions(np.array([-1, 2]))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-5, 5), min_size=1, max_size=200))
def test_mid_ranks_are_scipys_average_ranks(values: list[int]) -> None:
    array = np.array(values, dtype=np.float64)
    assert mid_ranks(array) == pytest.approx(stats.rankdata(array))


pairs = st.integers(3, 400).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 12), min_size=n, max_size=n),
        st.lists(st.integers(0, 12), min_size=n, max_size=n),
    )
)


@settings(max_examples=150, deadline=None)
@given(pairs, st.sampled_from(["float64", "float32"]))
def test_rank_correlations_agree_with_scipy_on_tied_data(
    data: tuple[list[int], list[int]], dtype: str
) -> None:
    x = np.array(data[0], dtype=dtype) / 4  # quarters: exact in float32 too
    y = np.array(data[1], dtype=np.float64)
    rho, tau = rank_correlations(x, rank_target(y))
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        assert math.isnan(rho)
        assert math.isnan(tau)
        return
    assert rho == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-9)
    assert tau == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-9)


def test_rank_correlations_on_many_continuous_rows_agree_with_scipy() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=200_000)
    x = (y + rng.normal(size=200_000)).astype(np.float32)  # float32: some ties among 200k
    rho, tau = rank_correlations(x, rank_target(y))
    assert rho == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-9)
    assert tau == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-9)


def test_values_closer_than_float32_keep_their_order() -> None:
    x = 1.0 + np.arange(40) * 1e-12  # all one float32: must not be ranked as ties
    y = np.arange(40.0)[::-1].copy()
    assert rank_correlations(x, rank_target(y)) == pytest.approx((-1.0, -1.0))


def test_negative_zero_ties_with_zero() -> None:
    x = np.array([0.0, -0.0, 1.0, -1.0], dtype=np.float32)
    y = np.array([1.0, 2.0, 3.0, 0.0])
    tau = rank_correlations(x, rank_target(y))[1]
    assert tau == pytest.approx(stats.kendalltau(x.astype(np.float64), y).statistic)


def test_rank_correlations_refuse_arrays_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="length"):
        rank_correlations(np.arange(4.0), rank_target(np.arange(5.0)))


def test_target_ranks_count_tie_pairs_and_spread() -> None:
    ranked = rank_target(np.array([2.0, 1.0, 2.0, 2.0, 5.0]))
    # mid-ranks 3, 1, 3, 3, 5 around the centre 3: spread 4 + 4 = 8; three tied pairs.
    assert ranked.tie_pairs == 3
    assert ranked.spread == pytest.approx(8.0)
    assert ranked.groups.tolist() == [1, 0, 1, 1, 2]


@pytest.mark.parametrize("n", [1, 5, (1 << 16) - 1, 1 << 16, 3 * (1 << 16) + 7])
def test_low_halves_are_packed_in_place(n: int) -> None:
    words = np.random.default_rng(n).integers(0, 2**32, 2 * n, dtype=np.uint64).astype(np.uint32)
    for low in (0, 1):
        expected = words[low::2].copy()
        packed = _packed_low_halves(words.copy(), low)
        assert np.array_equal(packed, expected)
