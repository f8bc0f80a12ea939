"""The report file is the contract between `run`, the renderers and `publish`."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from model_bisect.catalogue import GateKind
from model_bisect.errors import InputError, UnknownMetricError
from model_bisect.gates import judge
from model_bisect.report import (
    FeaturesRef,
    GateSpec,
    Invocation,
    Metrics,
    ModelRef,
    Report,
    ScanSummary,
    Status,
    Step,
    Verdict,
    VerdictKind,
    dumps,
    read_report,
)
from tests.metrickit import add_metric


def _report(plcc: float) -> Report:
    values = {"plcc": plcc, "srocc": 0.9, "krocc": 0.8, "rmse": 0.2}
    metrics = Metrics(values, 256, {"plcc": (plcc, 0.99)}, "linear")
    return Report(
        tool_version="0.1.0",
        timeline=(ModelRef(0, "a", "m/a.onnx", "ab" * 32), ModelRef(1, "b", "m/b.onnx", None)),
        features=FeaturesRef("f.parquet", "cd" * 32, 256, ("adm2",), dropped_rows=3),
        gates=(GateSpec("plcc", GateKind.MIN, 0.85),),
        steps=(
            Step(0, "a", Status.GOOD, metrics, "ok", 0.5, cached=True, p_values={"plcc": 0.2}),
            Step(1, "b", Status.SKIP, None, "invalid ONNX", 0.01),
        ),
        evaluations=1,
        verdict=Verdict(VerdictKind.INCONCLUSIVE, None, 0, (1,), "b could not be tested"),
        toolchain={"onnx": "1.23.2"},
        settings={"mapping": "linear"},
        scan=ScanSummary(True, ()),
    )


def test_report_survives_a_round_trip_through_its_file(tmp_path: Path) -> None:
    original = _report(0.95)
    path = tmp_path / "r.json"
    path.write_text(dumps(original))
    assert read_report(path) == original


def test_uncomputable_metric_is_written_as_null_and_read_back_as_nan(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(dumps(_report(math.nan)))
    raw = json.loads(path.read_text())  # strict JSON: no bare NaN token
    assert raw["steps"][0]["metrics"]["plcc"] is None
    assert "NaN" not in path.read_text()
    assert math.isnan(read_report(path).steps[0].metrics.value("plcc"))  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("content", "needle"),
    [("{not json", "not a model-bisect report"), ('{"schema_version": 9}', "schema_version 9")],
)
def test_unreadable_report_is_one_input_error(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(InputError, match=needle):
        read_report(path)


def test_missing_report_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="model-bisect run --json"):
        read_report(tmp_path / "absent.json")


GOOD_METRICS = {
    "plcc": 0.9,
    "srocc": 0.8,
    "krocc": 0.7,
    "rmse": None,
    "n": 10,
    "ci": {"plcc": [0.8, 0.95]},
    "mapping": "none",
}


@pytest.mark.parametrize(
    ("record", "needle"),
    [
        ([0.9, 0.8], "JSON object"),
        ({k: v for k, v in GOOD_METRICS.items() if k != "n"}, "lacks n"),
        ({**GOOD_METRICS, "plcc": "high"}, "malformed"),
        ({**GOOD_METRICS, "n": None}, "malformed"),
        ({**GOOD_METRICS, "ci": {"plcc": [0.8]}}, "malformed"),
        ({**GOOD_METRICS, "ci": {"plcc": 0.8}}, "malformed"),
        ({**GOOD_METRICS, "ci": [0.8, 0.9]}, "ci"),
    ],
)
def test_malformed_metrics_record_is_a_value_error_naming_the_problem(
    record: object, needle: str
) -> None:
    with pytest.raises(ValueError, match=needle):
        Metrics.from_json(record)  # type: ignore[arg-type]


def test_well_formed_metrics_record_reads_null_as_nan() -> None:
    metrics = Metrics.from_json(GOOD_METRICS)
    assert metrics.values["plcc"] == 0.9
    assert math.isnan(metrics.value("rmse"))
    assert metrics.ci["plcc"] == (0.8, 0.95)
    assert metrics.to_json() == GOOD_METRICS


def test_metrics_json_keeps_its_keys_and_order() -> None:
    metrics = Metrics({"rmse": 0.2, "krocc": 0.7, "srocc": 0.8, "plcc": 0.9}, 5)
    assert list(metrics.to_json()) == ["plcc", "srocc", "krocc", "rmse", "n", "ci", "mapping"]


def test_a_metric_name_outside_the_catalogue_is_refused_in_memory() -> None:
    every = {"plcc": 0.9, "srocc": 0.8, "krocc": 0.7, "rmse": 0.2}
    with pytest.raises(UnknownMetricError, match="'mae'"):
        Metrics({**every, "mae": 0.1}, 5)
    with pytest.raises(UnknownMetricError, match="'mae'"):
        Metrics(every, 5, {"mae": (0.0, 0.2)})
    with pytest.raises(UnknownMetricError, match="'mae'"):
        Metrics(every, 5).value("mae")
    with pytest.raises(UnknownMetricError, match="'mae'"):
        GateSpec("mae", GateKind.MAX, 0.1)


def test_a_metric_the_record_lacks_was_not_computed() -> None:
    record = {k: v for k, v in GOOD_METRICS.items() if k != "krocc"}
    metrics = Metrics.from_json(record)
    assert "krocc" not in metrics.values
    assert not metrics.complete
    assert math.isnan(metrics.value("krocc"))
    assert metrics.to_json() == record  # not written back as null: null means "undefined"
    assert Metrics.from_json(GOOD_METRICS).complete


def test_an_old_report_without_a_newly_added_metric_still_parses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.json"
    path.write_text(dumps(_report(0.95)))  # written by the catalogue without MAE
    add_metric(monkeypatch)
    report = read_report(path)
    metrics = report.steps[0].metrics
    assert metrics is not None
    assert not metrics.complete
    assert math.isnan(metrics.value("mae"))
    assert metrics.value("plcc") == 0.95
    assert json.loads(dumps(report)) == json.loads(path.read_text())
    # Judging it on the new metric says the value is undefined instead of crashing.
    status, reason = judge(metrics, [GateSpec("mae", GateKind.MAX, 0.5)])
    assert status is Status.BAD
    assert "mae undefined" in reason


def test_a_newer_reports_extra_metric_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patched:
        add_metric(patched)
        extra = Metrics({"plcc": 0.9, "srocc": 0.8, "krocc": 0.7, "rmse": 0.2, "mae": 0.1}, 5)
        newer = _report(0.95)
        steps = (dataclasses.replace(newer.steps[0], metrics=extra, p_values={"mae": 0.3}),)
        path = tmp_path / "newer.json"
        path.write_text(dumps(dataclasses.replace(newer, steps=(*steps, *newer.steps[1:]))))
    assert '"mae": 0.1' in path.read_text()
    metrics = read_report(path).steps[0].metrics
    assert metrics is not None
    assert metrics.complete
    assert set(metrics.values) == {"plcc", "srocc", "krocc", "rmse"}
    assert read_report(path).steps[0].p_values == {}


def test_a_report_gated_on_a_metric_this_version_lacks_is_one_input_error(
    tmp_path: Path,
) -> None:
    data = json.loads(dumps(_report(0.9)))
    data["gates"][0]["metric"] = "mae"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="unknown metric 'mae'"):
        read_report(path)


def test_report_with_an_unknown_gate_kind_is_one_input_error(tmp_path: Path) -> None:
    data = json.loads(dumps(_report(0.9)))
    data["gates"][0]["kind"] = "between"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="between"):
        read_report(path)


def test_provenance_fields_round_trip_and_old_reports_still_load(tmp_path: Path) -> None:
    from dataclasses import replace

    old = _report(0.9)
    invoked = Invocation(("run", "--git-path", "m.onnx"), "0.1.0", "sub", True, None)
    git_ref = ModelRef(0, "abc1234 fix", "models/m.onnx", "ab" * 32, "f" * 40, "fix")
    new = replace(old, invocation=invoked, timeline=(git_ref, old.timeline[1]))
    path = tmp_path / "r.json"
    path.write_text(dumps(new), encoding="utf-8")
    assert read_report(path) == new
    data = json.loads(dumps(new))
    assert data["timeline"][0]["commit"] == "f" * 40
    assert "commit" not in data["timeline"][1]  # only git timelines carry one
    assert data["invocation"]["argv"] == ["run", "--git-path", "m.onnx"]
    # A report written before provenance was recorded has neither field.
    legacy = json.loads(dumps(old))
    del legacy["invocation"]
    path.write_text(json.dumps(legacy), encoding="utf-8")
    assert read_report(path) == old
    assert read_report(path).invocation is None
