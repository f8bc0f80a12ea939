"""The catalogue's promises the mutation session's second pass found unpinned: the bootstrap
row cap's floor, a zero printed without a sign, the repeated-names message, iteration, which
statistic SROCC and RMSE read, and the gate flags' sentence. Values from scipy and numpy.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

from model_bisect.catalogue import CATALOGUE, Catalogue, fixed, gate_flags_text, metric_spec
from model_bisect.metrics import compute_metrics


def test_a_bootstrap_needs_at_least_three_rows_and_says_so() -> None:
    rmse = metric_spec("rmse")
    assert dataclasses.replace(rmse, boot_rows=3).boot_rows == 3
    with pytest.raises(ValueError, match=r"^rmse: boot_rows must be at least 3$"):
        dataclasses.replace(rmse, boot_rows=2)
    assert metric_spec("plcc").boot_rows is None  # Williams' test needs no cap


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [(0.0, 4, "0.0000"), (-0.00001, 4, "0.0000"), (-0.5, 1, "-0.5"), (0.25, 2, "0.25")],
)
def test_fixed_drops_only_the_sign_of_a_number_that_prints_as_zero(
    value: float, decimals: int, text: str
) -> None:
    assert fixed(value, decimals) == text


def test_repeated_metric_names_are_listed_comma_separated() -> None:
    plcc, srocc = metric_spec("plcc"), metric_spec("srocc")
    with pytest.raises(ValueError, match=r"^metric names repeat: plcc, srocc, plcc$"):
        Catalogue([plcc, srocc, plcc])


def test_iterating_the_catalogue_gives_its_entries_in_order() -> None:
    assert [spec.name for spec in CATALOGUE] == ["plcc", "srocc", "krocc", "rmse"]
    assert list(CATALOGUE) == list(CATALOGUE.specs)


def test_srocc_is_spearmans_rho_and_rmse_the_root_of_the_mean_squared_error() -> None:
    rng = np.random.default_rng(11)
    target = rng.uniform(1.0, 5.0, 300)
    pred = target + rng.normal(0.0, 0.8, target.size)
    m = compute_metrics(pred, target)
    assert m.values["srocc"] == pytest.approx(stats.spearmanr(pred, target).statistic, abs=1e-12)
    assert m.values["rmse"] == pytest.approx(
        math.sqrt(float(np.mean((pred - target) ** 2))), rel=1e-12
    )


def test_the_gate_flags_sentence_names_every_flag_and_max_drop() -> None:
    assert gate_flags_text() == (
        "--min-plcc, --min-srocc, --min-krocc, --max-rmse, --max-drop METRIC=DELTA"
    )
