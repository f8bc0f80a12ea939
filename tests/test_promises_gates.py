"""Gates: the exact words and boundaries that mutation testing found unpinned.

Each test closes survivors of `nox -s mutation` on `model_bisect/gates.py` (docs/testing.md):
what each malformed `--max-drop` says, that both ends of a threshold's range are accepted, a
p-value equal to alpha, and how NaN and several failures read in a reason.
"""

from __future__ import annotations

import math

import pytest

from model_bisect.errors import UsageError
from model_bisect.gates import gate_specs, judge, parse_max_drop
from model_bisect.report import GateSpec, Metrics, Status

VALID = "plcc, srocc, krocc, rmse"


def _metrics(plcc: float = 0.9, rmse: float = 0.5) -> Metrics:
    return Metrics(values={"plcc": plcc, "srocc": 0.9, "krocc": 0.7, "rmse": rmse}, n=100)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("plcc", "malformed gate 'plcc'"),
        ("plcc=", "malformed gate 'plcc='"),
        ("=0.05", "malformed gate '=0.05'"),
        ("mae=0.1", "unknown metric 'mae'"),
        ("plcc=abc", "'abc' is not a number"),
        # split at the first '=': the metric is plcc, the rest is not a number
        ("srocc=0.1=2", "'0.1=2' is not a number"),
        ("plcc=-0.1", "delta -0.1 is not a finite number >= 0"),
        ("plcc=inf", "delta inf is not a finite number >= 0"),
    ],
)
def test_each_malformed_max_drop_says_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_max_drop(text)
    fix = f"write METRIC=DELTA with METRIC one of {VALID} and DELTA >= 0, e.g. plcc=0.05"
    assert str(info.value) == f"{problem} in --max-drop {text}: {fix}"


@pytest.mark.parametrize(("metric", "value"), [("plcc", -1.0), ("srocc", 1.0), ("rmse", 0.0)])
def test_both_ends_of_a_thresholds_range_are_accepted(metric: str, value: float) -> None:
    (spec,) = gate_specs({metric: value})
    assert spec.threshold == value


def test_an_out_of_range_threshold_names_value_range_flag_and_hint() -> None:
    with pytest.raises(UsageError) as info:
        gate_specs({"krocc": 1.5})
    assert str(info.value) == (
        "threshold 1.5 is outside [-1, 1] in --min-krocc: "
        "a correlation threshold lies between -1 and 1, e.g. 0.85"
    )


def test_thresholds_for_unknown_metrics_are_listed_in_the_programming_error() -> None:
    with pytest.raises(ValueError, match=r"^no threshold flag exists for mae, psnr$"):
        gate_specs({"psnr": 30.0, "mae": 0.1})


def test_judge_without_gates_says_so() -> None:
    with pytest.raises(ValueError, match=r"^judge needs at least one gate$"):
        judge(_metrics(), [])


def test_a_p_value_equal_to_alpha_is_not_significant() -> None:
    gate = [GateSpec("plcc", "max_drop", 0.05)]
    status, reason = judge(
        _metrics(plcc=0.75), gate, anchor=_metrics(plcc=0.875), p_values={"plcc": 0.05}, alpha=0.05
    )
    assert status is Status.GOOD
    assert reason.endswith("but not significant (p = 0.05 >= 0.05)")


def test_an_undefined_value_reads_as_nan_in_a_drop_reason() -> None:
    gate = [GateSpec("plcc", "max_drop", 0.1)]
    status, reason = judge(_metrics(plcc=math.nan), gate, anchor=_metrics(plcc=0.9))
    assert status is Status.BAD
    assert reason == "plcc 0.9000 -> undefined (NaN) vs first model: drop undefined, needs <= 0.1"


def test_every_failing_gate_is_joined_by_a_semicolon() -> None:
    gates = [GateSpec("plcc", "min", 0.95), GateSpec("rmse", "max", 0.25)]
    status, reason = judge(_metrics(plcc=0.9, rmse=0.5), gates)
    assert status is Status.BAD
    assert reason == "plcc 0.9000 < 0.95; rmse 0.5000 > 0.25"
