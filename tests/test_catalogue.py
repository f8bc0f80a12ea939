"""The metric catalogue: a metric's direction decides its flag, its gate and its sign."""

from __future__ import annotations

import math

import pytest

from model_bisect.catalogue import (
    CATALOGUE,
    Direction,
    GateKind,
    MappingName,
    MetricSpec,
    gate_flags_text,
    metric_spec,
)
from model_bisect.cli import build_parser
from model_bisect.errors import UsageError
from model_bisect.gates import gate_specs, judge
from model_bisect.report import GateSpec, Metrics, Status


def _metrics(**overrides: float) -> Metrics:
    values = {"plcc": 0.9, "srocc": 0.9, "krocc": 0.75, "rmse": 0.5, **overrides}
    return Metrics(values=values, n=256)


@pytest.mark.parametrize("spec", CATALOGUE, ids=lambda s: s.name)
def test_higher_is_better_gets_a_floor_flag_and_lower_is_better_a_ceiling(spec: MetricSpec) -> None:
    expected = "min" if spec.direction is Direction.HIGHER_IS_BETTER else "max"
    assert spec.threshold_kind is GateKind(expected)
    assert spec.flag == f"--{expected}-{spec.name}"
    assert spec.flag in gate_flags_text()


@pytest.mark.parametrize("spec", CATALOGUE, ids=lambda s: s.name)
def test_a_move_the_wrong_way_counts_as_worse(spec: MetricSpec) -> None:
    wrong_way = -0.25 if spec.direction is Direction.HIGHER_IS_BETTER else 0.25
    assert spec.worse_by(wrong_way) == 0.25
    assert spec.worse_by(-wrong_way) == -0.25


@pytest.mark.parametrize("spec", CATALOGUE, ids=lambda s: s.name)
def test_each_flag_parses_into_the_gate_on_its_metric(spec: MetricSpec) -> None:
    args = build_parser().parse_args(["run", "m.onnx", "--features", "f.parquet", spec.flag, "0.5"])
    thresholds = {other.name: getattr(args, other.dest) for other in CATALOGUE}
    assert gate_specs(thresholds) == (GateSpec(spec.name, spec.threshold_kind, 0.5),)


def test_drop_gate_follows_the_direction_of_rmse_and_plcc() -> None:
    anchor = _metrics(plcc=0.9, rmse=0.5)
    rmse_gate = [GateSpec("rmse", GateKind.MAX_DROP, 0.1)]
    plcc_gate = [GateSpec("plcc", GateKind.MAX_DROP, 0.1)]
    # A lower RMSE and a higher PLCC are improvements, however large.
    assert judge(_metrics(rmse=0.1), rmse_gate, anchor=anchor)[0] is Status.GOOD
    assert judge(_metrics(plcc=0.99), plcc_gate, anchor=anchor)[0] is Status.GOOD
    assert judge(_metrics(rmse=0.7), rmse_gate, anchor=anchor)[0] is Status.BAD
    assert judge(_metrics(plcc=0.7), plcc_gate, anchor=anchor)[0] is Status.BAD


def test_show_uses_the_metric_digits_and_a_dash_when_undefined() -> None:
    plcc = metric_spec("plcc")
    assert plcc.show(0.123456) == "0.1235"
    assert plcc.show(math.nan) == "—"
    assert plcc.show(math.inf) == "—"


def test_unknown_metric_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        metric_spec("mae")


def test_mapping_choices_of_the_cli_are_the_mapping_names() -> None:
    for name in MappingName:
        args = build_parser().parse_args(
            ["run", "m.onnx", "--features", "f.parquet", "--mapping", name.value]
        )
        assert args.mapping == name.value
    with pytest.raises(UsageError, match="quartic"):
        build_parser().parse_args(["run", "m.onnx", "--features", "f", "--mapping", "quartic"])
