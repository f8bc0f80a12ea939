"""How a gate's clause and the terminal's table print numbers, at the edges the mutation
session's second pass found unpinned: a threshold %g cannot write exactly, values that need
16 or 18 decimals to stay on their side, and the table cell beside several gates.
"""

from __future__ import annotations

import pytest

from model_bisect.catalogue import GateKind
from model_bisect.gates import shown_for_gates, threshold_clause
from model_bisect.report import GateSpec


def test_a_threshold_that_g_rounds_is_written_exactly() -> None:
    # f"{x:g}" keeps six digits: 0.1234567 would print as 0.123457, another number.
    assert threshold_clause(GateSpec("rmse", GateKind.MAX, 0.1234567), 0.5)[1] == (
        "rmse 0.5000 > 0.1234567"
    )
    assert threshold_clause(GateSpec("rmse", GateKind.MAX, 0.25), 0.5)[1] == "rmse 0.5000 > 0.25"


def test_a_whole_threshold_is_written_as_the_user_would_write_it() -> None:
    assert threshold_clause(GateSpec("rmse", GateKind.MAX, 1.0), 0.5)[1] == "rmse 0.5000 <= 1"


def test_a_max_drop_gate_is_no_threshold_clause_and_says_so() -> None:
    gate = GateSpec("plcc", GateKind.MAX_DROP, 0.05)
    with pytest.raises(ValueError, match=r"^not a threshold gate: "):
        threshold_clause(gate, 0.5)


def test_a_value_one_float_above_its_threshold_gets_the_decimals_that_show_it() -> None:
    # 16 decimals separate these neighbours (15 round the value onto the threshold's side).
    value, threshold = 0.40753202010410006, 0.4075320201041
    ok, clause = threshold_clause(GateSpec("plcc", GateKind.MIN, threshold), value)
    assert ok
    assert clause == "plcc 0.4075320201041001 >= 0.4075320201041"


def test_a_value_that_no_fixed_decimals_separate_is_written_exactly() -> None:
    # 3e-18 against a 1e-18 gate: 17 decimals print 0, below it; repr is the honest text.
    ok, clause = threshold_clause(GateSpec("rmse", GateKind.MAX, 1e-18), 3e-18)
    assert not ok
    assert clause == "rmse 3e-18 > 1e-18"


@pytest.mark.parametrize(
    ("value", "thresholds", "decimals", "text"),
    [
        (0.99989, [0.9999], 4, "0.99989"),  # 0.9999 would stand on the gate
        (0.99989, [0.5, 0.9999], 4, "0.99989"),
        (0.5, [0.85], 6, "0.500000"),  # the table's own decimals when no gate needs more
        (0.5, [], 2, "0.50"),
    ],
)
def test_a_table_cell_agrees_with_every_gate_on_its_metric(
    value: float, thresholds: list[float], decimals: int, text: str
) -> None:
    assert shown_for_gates(value, thresholds, decimals) == text
