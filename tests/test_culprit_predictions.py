"""Agreement, per-group breakdowns and worst rows, each checked against numpy or scipy by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from model_bisect.culprit.predictions import agreement, by_decile, by_value
from model_bisect.culprit.rows import worst_rows


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
