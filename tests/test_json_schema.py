"""The JSON Schemas the package ships: equal to what the code's records generate, and true of
real reports (a run on the fixture, a localised regression with its culprit section) and of
the tables `read_config` accepts."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from model_bisect.config import read_config
from model_bisect.errors import InputError
from model_bisect.exitcodes import ExitCode
from model_bisect.json_schema import (
    CONFIG_SCHEMA_NAME,
    REPORT_SCHEMA_NAME,
    SHIPPED,
    config_schema,
    report_schema,
    schema_texts,
)
from tests.clirun import call_main
from tests.conftest import FIXTURE_DIR
from tests.culpritkit import features, timeline


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _errors(schema: dict[str, Any], document: object) -> list[str]:
    return [e.message for e in _validator(schema).iter_errors(document)]


def test_the_shipped_schemas_are_what_the_records_generate() -> None:
    for name, text in schema_texts().items():
        shipped = (SHIPPED / name).read_text(encoding="utf-8")
        assert shipped == text, f"{name} is stale: run model_bisect.json_schema.write_schemas()"


def _report(tmp_path: Path, *args: str | Path) -> dict[str, Any]:
    out = tmp_path / "report.json"
    ran = call_main("model_bisect", "run", *args, "--json", out, "--quiet", "--no-cache")
    assert ran.code == ExitCode.OK, ran.err
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


def test_a_fixture_run_without_a_regression_matches_the_report_schema(tmp_path: Path) -> None:
    report = _report(
        tmp_path, FIXTURE_DIR / "models", "--features", FIXTURE_DIR / "features.parquet",
        "--min-plcc", "0.85", "--max-drop", "plcc=0.01", "--significance", "0.05", "--scan",
    )  # fmt: skip
    assert report["verdict"]["kind"] == "no_regression"
    assert report["scan"] is not None
    assert any(step["p_values"] for step in report["steps"])
    assert _errors(report_schema(), report) == []


def test_a_regression_with_its_culprit_matches_the_report_schema(tmp_path: Path) -> None:
    features(tmp_path / "f.parquet")
    timeline(tmp_path / "models", first_bad=3)
    report = _report(
        tmp_path, tmp_path / "models", "--features", tmp_path / "f.parquet",
        "--min-plcc", "0.97", "--row-id", "clip", "--mapping", "linear",
    )  # fmt: skip
    assert report["verdict"]["kind"] == "regression"
    assert report["culprit"]["rows"]
    assert report["culprit"]["graph"]
    assert _errors(report_schema(), report) == []


@pytest.mark.parametrize(
    ("where", "change"),
    [
        ("a key no record has", lambda r: r["steps"][0].update(extra=1)),
        ("a verdict kind that does not exist", lambda r: r["verdict"].update(kind="maybe")),
        ("a metric outside the catalogue", lambda r: r["steps"][0]["metrics"].update(mae=0.1)),
        ("a missing required field", lambda r: r["features"].pop("sha256")),
        ("another schema_version", lambda r: r.update(schema_version=2)),
    ],
)
def test_the_report_schema_refuses(where: str, change: Any, tmp_path: Path) -> None:
    report = _report(
        tmp_path, FIXTURE_DIR / "models", "--features", FIXTURE_DIR / "features.parquet",
        "--min-plcc", "0.85",
    )  # fmt: skip
    broken = copy.deepcopy(report)
    change(broken)
    assert _errors(report_schema(), broken), where


TABLE = """
models = ["data/models"]
features = "data/features.parquet"
min-plcc = 0.85
max-rmse = 0.5
max-drop = { srocc = 0.02 }
mapping = "linear"
target = "mos"
input-name = "input"
model-timeout = 30
row-id = "clip"
slice-by = ["encoder", "resolution"]
gate-slices = true
min-slice-rows = 50
direction = "lower"
significance = 0.05
scan = true
jobs = 2
marker = "nightly"
tracker-issue = 12
"""


def _table(tmp_path: Path, body: str) -> tuple[Path, dict[str, Any]]:
    path = tmp_path / "pyproject.toml"
    path.write_text(f"[tool.model-bisect]\n{body}", encoding="utf-8")
    table: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))["tool"]["model-bisect"]
    return path, table


def test_a_table_read_config_accepts_matches_the_config_schema(tmp_path: Path) -> None:
    path, table = _table(tmp_path, TABLE)
    read_config(path)
    assert _errors(config_schema(), table) == []


@pytest.mark.parametrize(
    "line",
    [
        "min-plc = 0.85",
        "jobs = 0",
        "jobs = 1.5",
        "significance = 1",
        "scan = 'yes'",
        "direction = 'sideways'",
        "model-timeout = 0",
        "marker = 'a b'",
        "tracker-issue = 0",
        "max-drop = { mae = 0.1 }",
        "slice-by = []",
        "slice-by = ['']",
        "slice-by = 3",
        "min-slice-rows = 0",
        "gate-slices = 'yes'",
    ],
)
def test_what_read_config_refuses_the_config_schema_refuses(tmp_path: Path, line: str) -> None:
    path, table = _table(tmp_path, f'features = "f.parquet"\nmin-plcc = 0.85\n{line}\n')
    with pytest.raises(InputError):
        read_config(path)
    assert _errors(config_schema(), table)


def test_both_schemas_are_files_of_the_package() -> None:
    assert {p.name for p in SHIPPED.glob("*.json")} == {REPORT_SCHEMA_NAME, CONFIG_SCHEMA_NAME}
