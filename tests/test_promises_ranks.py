"""The rank statistics at the edges the mutation session's second pass found unpinned: three
rows, a target of two values, and negative zero, which ties with zero. scipy is the
reference every time.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import stats

from model_bisect import ranks
from model_bisect.ranks import count_inversions, mid_ranks, rank_correlations, rank_target


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


# --- chunked sums: runs of ties longer than one chunk -------------------------------------------
# A chunk is _CHUNK rows (64k); shrinking that module setting lets a few hundred rows hold runs
# of ties many chunks long, which real data reach only at millions of rows.


def _chunks_by_definition(new_group: list[bool], n: int, chunk: int) -> list[tuple[int, int]]:
    """Each range ends at the first run start at least ``chunk`` rows past its start, or n."""
    found, start = [], 0
    while start < n:
        stop = start + chunk
        while stop < n and not new_group[stop]:
            stop += 1
        found.append((start, min(stop, n)))
        start = min(stop, n)
    return found


@pytest.mark.parametrize("sizes", [[1, 2, 9, 1, 1, 3, 14, 2], [20], [3, 3, 3, 3, 3], [1] * 11])
def test_chunks_of_the_sums_never_split_a_run_of_ties(
    monkeypatch: pytest.MonkeyPatch, sizes: list[int]
) -> None:
    monkeypatch.setattr(ranks, "_CHUNK", 4)
    n = sum(sizes)
    new_group = np.zeros(n + 1, dtype=bool)  # as rank_correlations builds it: n ends a run
    new_group[np.cumsum([0, *sizes])] = True
    assert list(ranks._aligned_chunks(new_group, n)) == _chunks_by_definition(
        new_group.tolist(), n, 4
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_correlations_over_many_chunks_of_long_ties_agree_with_scipy(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    monkeypatch.setattr(ranks, "_CHUNK", 4)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, 240).astype(np.float64)  # runs of ~40 equal values: ten chunks
    x[:7] = np.arange(7) + 10.0  # and short runs, one value each, at the top
    y = np.round(x / 2 + rng.normal(size=240), 0)  # a target full of ties too
    assert rank_correlations(x, rank_target(y)) == pytest.approx(_scipy(x, y), abs=1e-12)


# --- the inversion counter at every level: small blocks, small slot chunks -----------------------


def _brute_inversions(values: np.ndarray) -> int:
    items = values.tolist()
    return sum(items[i] > items[j] for i in range(len(items)) for j in range(i + 1, len(items)))


@pytest.mark.parametrize("block", [1, 2, 4])
@pytest.mark.parametrize("n", [2, 3, 5, 8, 13, 31, 64, 77])
def test_inversions_merged_from_tiny_blocks_match_a_pair_by_pair_count(
    monkeypatch: pytest.MonkeyPatch, block: int, n: int
) -> None:
    monkeypatch.setattr(ranks, "_BLOCK", block)
    monkeypatch.setattr(ranks, "_SLOT_CHUNK", 3)  # slots and the tail merge in several chunks
    rng = np.random.default_rng(n * 10 + block)
    for values in (rng.integers(0, 5, n), rng.integers(0, 2**30, n), np.arange(n)[::-1]):
        assert count_inversions(values) == _brute_inversions(values)


def test_two_rows_in_reverse_are_one_inversion() -> None:
    assert count_inversions(np.array([1, 0])) == 1
    assert count_inversions(np.array([0, 1])) == 0
    assert count_inversions(np.array([5])) == 0
    assert count_inversions(np.array([], dtype=np.int64)) == 0


def test_inversions_accept_values_up_to_just_below_two_to_the_thirty() -> None:
    top = 2**30 - 1
    assert count_inversions(np.array([top, 0, top, 1])) == 3


@pytest.mark.parametrize("bad", [[0, 2**30], [-1, 0]])
def test_inversions_refuse_values_outside_their_range_in_one_sentence(bad: list[int]) -> None:
    whole = "^" + re.escape("count_inversions needs integers in [0, 2**30)") + "$"
    with pytest.raises(ValueError, match=whole):
        count_inversions(np.array(bad))


def test_inversions_may_sort_the_callers_int32_array_in_place() -> None:
    values = np.array([3, 1, 2, 0], dtype=np.int32)
    assert count_inversions(values, overwrite=True) == 5
    assert values.tolist() == [0, 1, 2, 3]  # no copy was made


# --- the target's limits ---------------------------------------------------------------------


def test_a_target_of_two_to_the_thirty_two_rows_is_refused_before_any_sort() -> None:
    rows = np.broadcast_to(np.float32(0.0), (2**32,))  # a view: no memory behind it
    whole = "^" + re.escape("4294967296 rows: at most 2**32 - 1 can be ranked") + "$"
    with pytest.raises(ValueError, match=whole):
        rank_target(rows)


def test_target_groups_start_at_zero_and_mid_ranks_are_scipys() -> None:
    y = np.array([5.0, 5.0, 1.0, 3.0, 3.0, 3.0, 9.0])
    ranked = rank_target(y)
    assert ranked.groups.tolist() == (stats.rankdata(y, method="dense") - 1).tolist()
    assert ranked.starts.tolist() == [0, 1, 4, 6, 7]
    assert mid_ranks(y).tolist() == stats.rankdata(y).tolist()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [3, 4, 17, 150, 400])
def test_rank_correlations_of_heavily_tied_data_agree_with_scipy(dtype: type, n: int) -> None:
    # Deterministic twin of test_ranks.py's hypothesis test, for the mutation session.
    rng = np.random.default_rng(n)
    x = (rng.integers(0, 13, n) / 4).astype(dtype)  # quarters: exact in float32 too
    y = rng.integers(0, 13, n).astype(np.float64)
    x[0], x[1], y[0], y[1] = 0.0, 3.0, 0.0, 12.0  # neither side constant
    assert rank_correlations(x, rank_target(y)) == pytest.approx(
        _scipy(x.astype(np.float64), y), abs=1e-12
    )


# --- shapes, dtypes and exact integers ---------------------------------------------------------


def test_a_column_of_predictions_ranks_as_the_flat_vector() -> None:
    # [N, 1] model outputs reach the ranks as they are.
    rng = np.random.default_rng(5)
    y = rng.integers(0, 9, 50).astype(np.float64)
    x = y + rng.normal(size=50)
    flat = rank_correlations(x, rank_target(y))
    assert rank_correlations(x.reshape(-1, 1), rank_target(y.reshape(-1, 1))) == flat
    assert flat == pytest.approx(_scipy(x, y), abs=1e-12)
    assert mid_ranks(y.reshape(5, 10)).tolist() == stats.rankdata(y).tolist()


def test_inversions_of_a_two_dimensional_array_are_those_of_its_rows_in_order() -> None:
    values = np.random.default_rng(6).integers(0, 20, (8, 10))
    assert count_inversions(values) == _brute_inversions(values.reshape(-1))


def test_inversion_counts_are_exact_python_integers() -> None:
    # A float count would lose pairs past 2**53 (at about 134M rows).
    for n in (5, 100, 700):
        values = np.random.default_rng(n).integers(0, 50, n)
        count = count_inversions(values)
        assert type(count) is int
        assert count == _brute_inversions(values)


def test_a_constant_target_has_no_rank_correlations() -> None:
    x = np.array([0.3, 0.1, 0.2, 0.5])
    spearman, kendall = rank_correlations(x, rank_target(np.full(4, 7.0)))
    assert np.isnan(spearman)
    assert np.isnan(kendall)


def test_target_ranks_are_held_in_four_byte_integers() -> None:
    # uint32 groups and int32 starts: 4 bytes a row, at 10M rows 40 MB rather than 80.
    ranked = rank_target(np.array([3.0, 1.0, 3.0, 2.0]))
    assert ranked.groups.dtype == np.uint32
    assert ranked.starts.dtype == np.int32
