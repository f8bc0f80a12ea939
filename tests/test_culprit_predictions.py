"""Agreement, per-group breakdowns and worst rows, each checked against numpy or scipy by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from model_bisect.culprit.predictions import agreement, by_decile, by_value
from model_bisect.culprit.rows import worst_rows
from model_bisect.metrics import CHUNK_ROWS


def _data(rows: int = 2000, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = rng.uniform(1.0, 5.0, rows)
    before = target + rng.normal(0.0, 0.1, rows)
    after = target + rng.normal(0.0, 0.3, rows)
    return target, before.astype(np.float32), after.astype(np.float32)


def test_agreement_is_pearson_between_the_predictions_and_their_abs_gaps() -> None:
    _, before, after = _data()
    found = agreement(before, after)
    gap = np.abs(after.astype(np.float64) - before.astype(np.float64))
    assert found.plcc == pytest.approx(
        stats.pearsonr(before.astype(np.float64), after.astype(np.float64)).statistic, abs=1e-9
    )
    assert found.mean_abs == pytest.approx(gap.mean())
    assert found.max_abs == pytest.approx(gap.max())
    assert found.rows == before.size


def test_a_drop_confined_to_one_encoder_ranks_it_first_and_leaves_the_others_unchanged() -> None:
    target, before, _ = _data()
    rng = np.random.default_rng(9)
    codes = rng.integers(0, 3, target.size).astype(np.int32)
    after = before.copy()
    hurt = codes == 1
    after[hurt] = (target[hurt] + rng.normal(0.0, 1.0, hurt.sum())).astype(np.float32)
    found = by_value("encoder", codes, ("libx264", "libx265", "libvpx-vp9"), target, before, after)
    assert [s.value for s in found] == ["libx265", "libvpx-vp9", "libx264"]  # no null rows
    assert found[0].rows == int(hurt.sum())
    for s in found[1:]:
        assert s.rmse_before == pytest.approx(s.rmse_after)
        assert s.plcc_before == pytest.approx(s.plcc_after)
    mine = found[0]
    t, p = target[hurt], after[hurt].astype(np.float64)
    assert mine.rmse_after == pytest.approx(np.sqrt(np.mean((p - t) ** 2)))
    assert mine.plcc_after == pytest.approx(stats.pearsonr(p, t).statistic, abs=1e-9)


def test_deciles_split_the_target_and_rank_the_worst_first() -> None:
    target, before, after = _data()
    after = after.copy()
    top = target >= np.quantile(target, 0.9)
    after[top] -= np.float32(1.0)  # the best-rated tenth is scored a whole point too low
    found = by_decile(target, before, after)
    assert len(found) == 10
    assert sum(s.rows for s in found) == target.size
    worst = found[0]
    assert worst.value.startswith("d10 ")
    assert worst.rows == int(top.sum())
    p = after[top].astype(np.float64)
    assert worst.rmse_after == pytest.approx(np.sqrt(np.mean((p - target[top]) ** 2)))


def test_worst_rows_are_numpys_largest_error_growth() -> None:
    target, before, after = _data(500)
    growth = np.abs(after.astype(np.float64) - target) - np.abs(before.astype(np.float64) - target)
    expected = np.argsort(-growth, kind="stable")[:10]
    found = worst_rows(target, before, after, 10)
    assert [r.row for r in found] == expected.tolist()
    assert [r.growth for r in found] == pytest.approx(growth[expected].tolist())
    assert found[0].before == pytest.approx(float(before[expected[0]]))


def test_worst_rows_name_file_rows_and_ids_and_skip_rows_that_improved() -> None:
    target = np.array([1.0, 2.0, 3.0, 4.0])
    before = np.array([1.0, 2.5, 3.0, 4.0])
    after = np.array([1.5, 2.0, 3.0, 6.0])  # row 1 improved, row 2 did not move
    kept = np.array([0, 2, 5, 7])
    found = worst_rows(
        target, before, after, 10, row_numbers=kept, ids=lambda rows: [f"id{r}" for r in rows]
    )
    assert [(r.row, r.row_id) for r in found] == [(7, "id7"), (0, "id0")]


# Several blocks of CHUNK_ROWS and a ragged last one: the section sums a block at a time.
_BLOCKS = 3 * CHUNK_ROWS + 1234


def _whole_float64_plcc(a: np.ndarray, b: np.ndarray) -> float:
    x = a.astype(np.float64)
    y = b.astype(np.float64)
    x = x - x.mean()
    y = y - y.mean()
    return float(x @ y) / np.sqrt(float(x @ x) * float(y @ y))


def _whole_float64_groups(
    groups: np.ndarray, k: int, target: np.ndarray, before: np.ndarray, after: np.ndarray
) -> dict[int, tuple[float, float, float, float]]:
    """RMSE and PLCC per group from whole float64 vectors and np.bincount, the arithmetic
    of the section before it summed in blocks."""
    t = target.astype(np.float64)
    count = np.bincount(groups, minlength=k).astype(np.float64)
    s_t = np.bincount(groups, weights=t, minlength=k)
    s_tt = np.bincount(groups, weights=t * t, minlength=k)
    out: dict[int, list[float]] = {g: [] for g in range(k) if count[g]}
    for predictions in (before, after):
        p = predictions.astype(np.float64)
        sq = np.bincount(groups, weights=(p - t) * (p - t), minlength=k)
        s_p = np.bincount(groups, weights=p, minlength=k)
        s_pp = np.bincount(groups, weights=p * p, minlength=k)
        s_pt = np.bincount(groups, weights=p * t, minlength=k)
        for g in out:
            n = count[g]
            cov = s_pt[g] - s_p[g] * s_t[g] / n
            var_p = s_pp[g] - s_p[g] ** 2 / n
            var_t = s_tt[g] - s_t[g] ** 2 / n
            out[g] += [float(np.sqrt(sq[g] / n)), float(cov / np.sqrt(var_p * var_t))]
    return {g: (v[0], v[2], v[1], v[3]) for g, v in out.items()}


def test_block_sums_match_whole_float64_vectors_to_the_last_bit() -> None:
    target, before, after = _data(_BLOCKS, seed=11)
    found = agreement(before, after)
    gap = np.abs(after.astype(np.float64) - before.astype(np.float64))
    assert found.plcc == _whole_float64_plcc(before, after)
    assert found.mean_abs == float(gap.mean())
    assert found.max_abs == float(gap.max())

    codes = np.random.default_rng(5).integers(-1, 4, target.size).astype(np.int32)
    vocabulary = ("a", "b", "c", "d")
    groups = np.where(codes < 0, 4, codes)
    expected = _whole_float64_groups(groups, 5, target, before, after)
    for s in by_value("scene", codes, vocabulary, target, before, after):
        g = [*vocabulary, "(null)"].index(s.value)
        assert (s.rmse_before, s.rmse_after, s.plcc_before, s.plcc_after) == expected[g]
        assert s.rows == int(np.count_nonzero(groups == g))

    edges = np.unique(np.quantile(target, np.linspace(0.0, 1.0, 11)[1:-1]))
    deciles = np.searchsorted(edges, target, side="right")
    expected = _whole_float64_groups(deciles, edges.size + 1, target, before, after)
    found_deciles = by_decile(target, before, after)
    assert len(found_deciles) == edges.size + 1
    for s in found_deciles:
        g = int(s.value.split()[0][1:]) - 1
        assert (s.rmse_before, s.rmse_after, s.plcc_before, s.plcc_after) == expected[g]


def test_worst_rows_across_blocks_break_ties_by_row() -> None:
    target, before, after = _data(_BLOCKS, seed=12)
    after = after.copy()
    # The same largest growth in every block, and more tied rows than are asked for.
    tied = np.arange(100, target.size, 4001)  # 16 a block
    before, target = before.copy(), target.copy()
    before[tied], target[tied], after[tied] = 2.0, 2.0, 12.0  # growth exactly 10
    growth = np.abs(after.astype(np.float64) - target) - np.abs(before - target)
    expected = np.lexsort((np.arange(target.size), -growth))[:10]
    found = worst_rows(target, before, after, 10)
    assert [r.row for r in found] == expected.tolist()
    assert [r.row for r in found] == tied[:10].tolist()
    assert [r.growth for r in found] == growth[expected].tolist()


def test_a_float32_target_gives_the_culprit_what_its_float64_copy_gives_to_the_last_bit() -> None:
    """The feature cache keeps a float32 target as stored; the deciles, value groups and
    worst rows must not move by a bit against the float64 copy the target used to be."""
    target64, before, after = _data(_BLOCKS, seed=13)
    target = target64.astype(np.float32)
    as_float64 = target.astype(np.float64)
    assert by_decile(target, before, after) == by_decile(as_float64, before, after)
    codes = np.random.default_rng(6).integers(-1, 3, target.size).astype(np.int32)
    vocabulary = ("a", "b", "c")
    kept = by_value("scene", codes, vocabulary, target, before, after)
    assert kept == by_value("scene", codes, vocabulary, as_float64, before, after)
    assert worst_rows(target, before, after) == worst_rows(as_float64, before, after)
