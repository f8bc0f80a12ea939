"""The metric catalogue: a metric's direction decides its flag, its gate and its sign."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from model_bisect.catalogue import (
    CATALOGUE,
    Catalogue,
    Direction,
    DropTest,
    GateKind,
    MappingName,
    MetricSpec,
    gate_flags_text,
    metric_spec,
)
from model_bisect.cli import build_parser
from model_bisect.errors import UnknownMetricError, UsageError
from model_bisect.exitcodes import ExitCode
from model_bisect.gates import gate_specs, judge
from model_bisect.metrics import apply_mapping, compute_metrics, with_rank_metrics
from model_bisect.publishing.comment import render_markdown
from model_bisect.report import GateSpec, Metrics, Status, VerdictKind, dumps, read_report
from tests.clirun import call_main
from tests.conftest import FIXTURE_DIR
from tests.metrickit import add_metric
from tests.modelkit import features_parquet, timeline_dir

MODELS = (
    FIXTURE_DIR / "models",
    "--features",
    FIXTURE_DIR / "features.parquet",
    "--min-plcc",
    "0.85",
)


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


def test_unknown_metric_is_a_usage_error_and_a_key_error() -> None:
    with pytest.raises(UnknownMetricError, match="unknown metric 'mae': use one of plcc,") as e:
        metric_spec("mae")
    assert isinstance(e.value, UsageError)
    assert isinstance(e.value, KeyError)
    with pytest.raises(UnknownMetricError):
        CATALOGUE.spec("rmse ")  # no look-alike fallback


def test_an_unknown_metric_on_the_command_line_is_exit_3_in_one_line(tmp_path: Path) -> None:
    for gate in (("--max-mae", "0.3"), ("--max-drop", "mae=0.1")):
        ran = call_main("model_bisect", "run", *MODELS, *gate)
        assert ran.code == ExitCode.INPUT
        assert ran.err.count("\n") == 1
        assert "mae" in ran.err
        assert "Traceback" not in ran.err


def test_catalogue_entries_are_checked_when_written() -> None:
    plcc = metric_spec("plcc")
    with pytest.raises(ValueError, match="lower-case identifier"):
        dataclasses.replace(plcc, name="Plcc")
    with pytest.raises(ValueError, match="Fisher-z"):
        dataclasses.replace(plcc, fisher=None)
    with pytest.raises(ValueError, match="row cap"):
        dataclasses.replace(plcc, drop_test=DropTest.RMSE_BOOTSTRAP)
    with pytest.raises(ValueError, match="repeat"):
        Catalogue((*CATALOGUE, plcc))


def test_the_engine_finishes_only_rank_based_metrics_later() -> None:
    # compute_metrics(ranked=False) leaves exactly the rank-based entries undefined.
    rng = np.random.default_rng(4)
    target = rng.uniform(1.0, 5.0, 200)
    pred = target + rng.normal(0.0, 0.5, 200)
    early = compute_metrics(pred, target, ranked=False)
    for spec in CATALOGUE:
        assert math.isnan(early.value(spec.name)) is spec.rank_based
    assert with_rank_metrics(early, pred, target) == compute_metrics(pred, target)


def test_a_metric_added_to_the_catalogue_reaches_values_flags_gates_and_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_metric(monkeypatch)  # MAE, lower is better: one entry, no other edit

    # Its value, from the formula in the entry, on the mapped predictions.
    rng = np.random.default_rng(9)
    target = rng.uniform(1.0, 5.0, 300)
    pred = 2.0 * target + rng.normal(0.0, 0.4, 300)
    metrics = compute_metrics(pred, target, mapping="linear")
    mapped = apply_mapping(pred, target, "linear")
    assert metrics.value("mae") == pytest.approx(float(np.mean(np.abs(mapped - target))))
    assert metrics.complete
    assert all(math.isnan(bound) for bound in metrics.ci["mae"])  # Interval.NONE

    # Its flag, named by the gate rule, and its gate.
    args = build_parser().parse_args(["run", "m.onnx", "--features", "f.parquet", "--max-mae", "1"])
    assert args.max_mae == 1.0
    assert "--max-mae" in gate_flags_text()
    thresholds = {spec.name: getattr(args, spec.dest) for spec in CATALOGUE}
    assert gate_specs(thresholds, ["mae=0.05"]) == (
        GateSpec("mae", GateKind.MAX, 1.0),
        GateSpec("mae", GateKind.MAX_DROP, 0.05),
    )
    with pytest.raises(UsageError, match="outside"):
        gate_specs({"mae": -1.0})

    # Through the CLI: a scan with a loose MAE gate, then one between the good models' MAE
    # and the bad ones', which must find the first bad model.
    folder = tmp_path / "models"
    features, weights = features_parquet(tmp_path / "f.parquet", rows=300, seed=2)
    timeline_dir(folder, 6, 3, weights=[float(w) for w in weights], seed=6)
    loose = tmp_path / "loose.json"
    common = (folder, "--features", features, "--scan", "--no-cache")
    ran = call_main("model_bisect", "run", *common, "--max-mae", "1e9", "--json", loose)
    assert ran.code == ExitCode.OK, ran.err
    body = json.loads(loose.read_text())
    assert body["gates"] == [{"metric": "mae", "kind": "max", "threshold": 1e9}]
    maes = [step["metrics"]["mae"] for step in body["steps"]]
    assert len(maes) == 6
    assert max(maes[:3]) < min(maes[3:])
    between = (max(maes[:3]) + min(maes[3:])) / 2
    tight = tmp_path / "tight.json"
    ran = call_main("model_bisect", "run", *common, "--max-mae", str(between), "--json", tight)
    assert ran.code == ExitCode.OK, ran.err  # a regression found is no failure of the run
    report = read_report(tight)
    assert report.verdict.kind is VerdictKind.REGRESSION
    assert report.verdict.first_bad_index == 3
    assert "mae" in report.steps[3].reason
    assert "| MAE |" in render_markdown(report)  # the comment's table has its column

    # The report round-trip keeps it.
    assert [s.metrics.value("mae") for s in report.steps if s.metrics] == pytest.approx(maes)
    assert json.loads(dumps(report)) == json.loads(tight.read_text())


def test_a_cache_entry_without_a_newly_added_metric_is_evaluated_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    args = (*MODELS, "--cache-dir", cache, "--json")
    first = call_main("model_bisect", "run", *args, tmp_path / "a.json")
    assert first.code == ExitCode.OK, first.err
    rerun = call_main("model_bisect", "run", *args, tmp_path / "b.json")
    assert all(s["cached"] for s in json.loads((tmp_path / "b.json").read_text())["steps"])
    add_metric(monkeypatch)
    after = call_main("model_bisect", "run", *args, tmp_path / "c.json")
    assert after.code == ExitCode.OK, after.err
    body = json.loads((tmp_path / "c.json").read_text())
    assert body["evaluations"] == json.loads((tmp_path / "a.json").read_text())["evaluations"]
    assert not any(s["cached"] for s in body["steps"])
    assert all(isinstance(s["metrics"]["mae"], float) for s in body["steps"])
    assert rerun.code == ExitCode.OK


def test_mapping_choices_of_the_cli_are_the_mapping_names() -> None:
    for name in MappingName:
        args = build_parser().parse_args(
            ["run", "m.onnx", "--features", "f.parquet", "--mapping", name.value]
        )
        assert args.mapping == name.value
    with pytest.raises(UsageError, match="quartic"):
        build_parser().parse_args(["run", "m.onnx", "--features", "f", "--mapping", "quartic"])
