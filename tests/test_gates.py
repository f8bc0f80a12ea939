"""Gate flags parse into GateSpecs, and judge() says good or bad with the numbers."""

from __future__ import annotations

import math
import re

import pytest

from model_bisect.catalogue import CATALOGUE
from model_bisect.errors import UnknownMetricError, UsageError
from model_bisect.gates import gate_specs, judge, parse_max_drop
from model_bisect.report import GateSpec, Metrics, Status


def metrics(
    plcc: float = 0.9, srocc: float = 0.9, krocc: float = 0.75, rmse: float = 0.5
) -> Metrics:
    return Metrics(values={"plcc": plcc, "srocc": srocc, "krocc": krocc, "rmse": rmse}, n=256)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plcc=0.05", GateSpec("plcc", "max_drop", 0.05)),
        ("srocc=0", GateSpec("srocc", "max_drop", 0.0)),
        ("krocc=0.1", GateSpec("krocc", "max_drop", 0.1)),
        (" RMSE = 0.25 ", GateSpec("rmse", "max_drop", 0.25)),
    ],
)
def test_parse_max_drop_accepts_metric_equals_delta(text: str, expected: GateSpec) -> None:
    assert parse_max_drop(text) == expected


@pytest.mark.parametrize(
    "text",
    ["plcc", "plcc=", "=0.05", "plcc:0.05", "mae=0.1", "plcc=abc", "plcc=-0.1", "plcc=nan"],
)
def test_parse_max_drop_rejects_bad_input_naming_flag_and_metrics(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_max_drop(text)
    message = str(info.value)
    assert "--max-drop" in message
    for metric in CATALOGUE.names:
        assert metric in message
    assert "\n" not in message


def test_gate_specs_builds_every_kind_in_flag_order() -> None:
    specs = gate_specs(
        {"rmse": 0.7, "krocc": 0.6, "srocc": 0.8, "plcc": 0.85},
        ["plcc=0.05", "rmse=0.1"],
    )
    assert specs == (
        GateSpec("plcc", "min", 0.85),
        GateSpec("srocc", "min", 0.8),
        GateSpec("krocc", "min", 0.6),
        GateSpec("rmse", "max", 0.7),
        GateSpec("plcc", "max_drop", 0.05),
        GateSpec("rmse", "max_drop", 0.1),
    )


def test_no_gate_is_a_usage_error_listing_the_flags() -> None:
    with pytest.raises(UsageError) as info:
        gate_specs({"plcc": None, "srocc": None, "krocc": None, "rmse": None})
    message = str(info.value)
    assert message.startswith("no gate given: pass at least one of --min-plcc")
    for flag in ("--min-srocc", "--min-krocc", "--max-rmse", "--max-drop"):
        assert flag in message


@pytest.mark.parametrize(
    ("thresholds", "flag"),
    [
        ({"plcc": 1.5}, "--min-plcc"),
        ({"krocc": math.nan}, "--min-krocc"),
        ({"rmse": -0.1}, "--max-rmse"),
    ],
)
def test_out_of_range_threshold_is_a_usage_error(thresholds: dict[str, float], flag: str) -> None:
    with pytest.raises(UsageError, match=flag):
        gate_specs(thresholds)


def test_threshold_for_a_metric_outside_the_catalogue_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="mae"):
        gate_specs({"mae": 0.5})


def test_min_gate_holds_at_or_above_the_threshold() -> None:
    status, reason = judge(metrics(plcc=0.875), [GateSpec("plcc", "min", 0.875)])
    assert status is Status.GOOD
    assert reason == "plcc 0.8750 >= 0.875"


def test_min_gate_fails_below_with_the_numbers() -> None:
    status, reason = judge(metrics(plcc=0.812), [GateSpec("plcc", "min", 0.85)])
    assert status is Status.BAD
    assert reason == "plcc 0.8120 < 0.85"


def test_max_gate_on_rmse() -> None:
    gate = [GateSpec("rmse", "max", 0.5)]
    assert judge(metrics(rmse=0.5), gate)[0] is Status.GOOD
    status, reason = judge(metrics(rmse=0.734), gate)
    assert status is Status.BAD
    assert reason == "rmse 0.7340 > 0.5"


def test_every_failing_gate_is_named_and_passing_ones_are_not() -> None:
    gates = [GateSpec("plcc", "min", 0.85), GateSpec("srocc", "min", 0.8)]
    gates.append(GateSpec("rmse", "max", 0.4))
    status, reason = judge(metrics(plcc=0.8, srocc=0.95, rmse=0.6), gates)
    assert status is Status.BAD
    assert "plcc 0.8000 < 0.85" in reason
    assert "rmse 0.6000 > 0.4" in reason
    assert "srocc" not in reason


@pytest.mark.parametrize(
    "gate",
    [GateSpec("plcc", "min", 0.0), GateSpec("rmse", "max", 10.0), GateSpec("krocc", "min", -1)],
)
def test_nan_metric_fails_its_gate(gate: GateSpec) -> None:
    nan = metrics(plcc=math.nan, krocc=math.nan, rmse=math.nan)
    status, reason = judge(nan, [gate])
    assert status is Status.BAD
    assert "NaN" in reason


def test_max_drop_of_a_correlation_is_anchor_minus_value() -> None:
    gate = [GateSpec("plcc", "max_drop", 0.25)]
    anchor = metrics(plcc=0.75)
    assert judge(metrics(plcc=0.5), gate, anchor=anchor)[0] is Status.GOOD  # exactly 0.25
    assert judge(metrics(plcc=0.9), gate, anchor=anchor)[0] is Status.GOOD  # improved
    status, reason = judge(metrics(plcc=0.375), gate, anchor=anchor)
    assert status is Status.BAD
    assert "0.7500 -> 0.3750" in reason
    assert "drop 0.3750 > 0.25" in reason


def test_max_drop_of_rmse_is_value_minus_anchor() -> None:
    gate = [GateSpec("rmse", "max_drop", 0.125)]
    anchor = metrics(rmse=0.5)
    assert judge(metrics(rmse=0.25), gate, anchor=anchor)[0] is Status.GOOD  # lower is better
    assert judge(metrics(rmse=0.625), gate, anchor=anchor)[0] is Status.GOOD
    status, reason = judge(metrics(rmse=0.75), gate, anchor=anchor)
    assert status is Status.BAD
    assert "drop 0.2500 > 0.125" in reason


def test_max_drop_with_nan_fails() -> None:
    gate = [GateSpec("srocc", "max_drop", 0.1)]
    assert judge(metrics(srocc=math.nan), gate, anchor=metrics())[0] is Status.BAD
    assert judge(metrics(), gate, anchor=metrics(srocc=math.nan))[0] is Status.BAD


def test_max_drop_without_an_anchor_is_a_wiring_error() -> None:
    with pytest.raises(ValueError, match="anchor"):
        judge(metrics(), [GateSpec("plcc", "max_drop", 0.1)])


def test_significance_fails_a_drop_only_when_p_is_below_alpha() -> None:
    gate = [GateSpec("plcc", "max_drop", 0.05)]
    anchor, now = metrics(plcc=0.875), metrics(plcc=0.75)
    status, reason = judge(now, gate, anchor=anchor, p_values={"plcc": 0.003}, alpha=0.05)
    assert status is Status.BAD
    assert "p = 0.003 < 0.05" in reason
    status, reason = judge(now, gate, anchor=anchor, p_values={"plcc": 0.2}, alpha=0.05)
    assert status is Status.GOOD
    assert "not significant" in reason
    assert "p = 0.2" in reason


def test_significance_does_not_rescue_a_failing_absolute_gate_or_excuse_a_small_drop() -> None:
    gates = [GateSpec("plcc", "max_drop", 0.25), GateSpec("plcc", "min", 0.8)]
    anchor, now = metrics(plcc=0.875), metrics(plcc=0.75)
    status, reason = judge(now, gates, anchor=anchor, p_values={"plcc": 0.001}, alpha=0.05)
    assert status is Status.BAD
    assert reason == "plcc 0.7500 < 0.8"


def test_p_values_are_ignored_without_alpha() -> None:
    gate = [GateSpec("plcc", "max_drop", 0.05)]
    anchor, now = metrics(plcc=0.875), metrics(plcc=0.75)
    assert judge(now, gate, anchor=anchor, p_values={"plcc": 0.9})[0] is Status.BAD


def test_undefined_p_value_fails_a_drop_beyond_delta() -> None:
    gate = [GateSpec("krocc", "max_drop", 0.05)]
    anchor, now = metrics(krocc=0.75), metrics(krocc=0.5)
    status, reason = judge(now, gate, anchor=anchor, p_values={"krocc": math.nan}, alpha=0.05)
    assert status is Status.BAD
    assert "p undefined" in reason


def test_missing_p_value_with_alpha_is_a_wiring_error() -> None:
    gate = [GateSpec("plcc", "max_drop", 0.05)]
    with pytest.raises(ValueError, match="p-value"):
        judge(metrics(plcc=0.5), gate, anchor=metrics(), p_values={}, alpha=0.05)


def test_good_reason_lists_every_gate() -> None:
    gates = [GateSpec("plcc", "min", 0.85), GateSpec("rmse", "max", 0.75)]
    status, reason = judge(metrics(plcc=0.9, rmse=0.5), gates)
    assert status is Status.GOOD
    assert reason == "plcc 0.9000 >= 0.85; rmse 0.5000 <= 0.75"


def test_unknown_gate_kind_or_metric_is_an_error() -> None:
    with pytest.raises(ValueError, match="kind"):
        judge(metrics(), [GateSpec("plcc", "between", 0.5)])
    with pytest.raises(UnknownMetricError, match="unknown metric 'mae'"):
        judge(metrics(), [GateSpec("mae", "min", 0.5)])
    with pytest.raises(ValueError, match="gate"):
        judge(metrics(), [])


def _printed(reason: str, metric: str) -> tuple[float, str, float]:
    """The value, relation and threshold a reason prints for ``metric``, read back as numbers."""
    found = re.search(rf"{metric} (-?\d+\.\d+) (>=|<=|<|>) (\S+)", reason)
    assert found is not None, reason
    return float(found.group(1)), found.group(2), float(found.group(3))


@pytest.mark.parametrize("gap", [5e-5, 5e-7, 1e-12])
def test_a_value_just_below_a_min_gate_prints_below_the_printed_threshold(gap: float) -> None:
    plcc = 0.9999049
    threshold = plcc + gap
    status, reason = judge(metrics(plcc=plcc), [GateSpec("plcc", "min", threshold)])
    assert status is Status.BAD
    shown, relation, limit = _printed(reason, "plcc")
    assert relation == "<"
    assert limit == threshold  # the threshold is printed exactly as given
    assert shown < limit
    assert len(reason.split()[1].split(".")[1]) >= 4  # never fewer than the table's four


def test_a_value_just_above_a_max_gate_prints_above_the_printed_threshold() -> None:
    status, reason = judge(metrics(rmse=0.25003), [GateSpec("rmse", "max", 0.25)])
    assert status is Status.BAD
    shown, relation, limit = _printed(reason, "rmse")
    assert (relation, limit) == (">", 0.25)
    assert shown > limit


def test_a_value_far_from_its_gate_keeps_four_decimals() -> None:
    _, reason = judge(metrics(plcc=0.99612345), [GateSpec("plcc", "min", 0.85)])
    assert reason == "plcc 0.9961 >= 0.85"


def test_a_drop_that_is_a_tiny_improvement_never_prints_as_negative_zero() -> None:
    gate = [GateSpec("srocc", "max_drop", 0.02)]
    status, reason = judge(metrics(srocc=0.90001), gate, anchor=metrics(srocc=0.9))
    assert status is Status.GOOD
    assert "-0.0" not in reason
    assert "drop 0.0000 <= 0.02" in reason


def test_a_drop_just_over_its_limit_prints_over_it() -> None:
    gate = [GateSpec("plcc", "max_drop", 0.02)]
    _, reason = judge(metrics(plcc=0.87998), gate, anchor=metrics(plcc=0.9))
    found = re.search(r"drop (\d+\.\d+) > (\S+)", reason)
    assert found is not None, reason
    assert float(found.group(1)) > float(found.group(2)) == 0.02
