"""The report file is the contract between `run`, the renderers and `publish`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from model_bisect.errors import InputError
from model_bisect.report import (
    FeaturesRef,
    GateSpec,
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


def _report(plcc: float) -> Report:
    values = {"plcc": plcc, "srocc": 0.9, "krocc": 0.8, "rmse": 0.2}
    metrics = Metrics(values, 256, {"plcc": (plcc, 0.99)}, "linear")
    return Report(
        tool_version="0.1.0",
        timeline=(ModelRef(0, "a", "m/a.onnx", "ab" * 32), ModelRef(1, "b", "m/b.onnx", None)),
        features=FeaturesRef("f.parquet", "cd" * 32, 256, ("adm2",), dropped_rows=3),
        gates=(GateSpec("plcc", "min", 0.85),),
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
