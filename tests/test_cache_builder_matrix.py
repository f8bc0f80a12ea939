"""`python -m cache_builder matrix`: the drift-matrix summary from `check --json` results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cache_builder.drift import DriftReport, Finding, Kind, Require
from model_bisect.exitcodes import ExitCode
from tests.clirun import call_main, run_module


def _check_json(findings: list[Finding], current: dict[str, str]) -> dict[str, Any]:
    recorded = {"pyarrow": "26.0.1", "pandas": "3.1.1", "onnx": "1.23.2", "python": "3.11.7"}
    report = DriftReport(tuple(findings), (), recorded, current)
    return report.to_json(Require.CONTENT)


def _write(folder: Path, name: str, data: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")


IDENTICAL = [
    Finding("features.parquet", Kind.IDENTICAL),
    Finding("models/model_00.onnx", Kind.IDENTICAL),
]


def test_matrix_summary_says_which_metadata_changed_and_passes(tmp_path: Path) -> None:
    results = tmp_path / "results"
    old_arrow = {"pyarrow": "18.1.0", "pandas": "2.2.3", "onnx": "1.21.0", "python": "3.11.7"}
    metadata = [
        Finding(
            "features.parquet",
            Kind.METADATA_ONLY,
            ("created_by: parquet-cpp-arrow version 26.0.1 -> parquet-cpp-arrow version 18.1.0",),
        ),
        *(
            Finding(f"models/model_0{i}.onnx", Kind.METADATA_ONLY, ("ir_version: 10 -> 9",))
            for i in range(3)
        ),
    ]
    _write(results, "py3.11-arrow18-pandas2.2-onnx1.21", _check_json(metadata, old_arrow))
    _write(results, "py3.11-pinned", _check_json(IDENTICAL, {"pyarrow": "26.0.1"}))
    out = tmp_path / "drift-matrix.json"

    ran = call_main(
        "cache_builder", "matrix", results, "--out", out,
        "--combos", "pinned", "arrow18-pandas2.2-onnx1.21",
    )  # fmt: skip

    assert ran.code == ExitCode.OK, ran.err
    summary = json.loads(out.read_text(encoding="utf-8"))
    assert summary["failed"] is False
    rows = {row["name"]: row for row in summary["combinations"]}
    assert summary["combinations"][0]["name"] == "py3.11-pinned"
    assert rows["py3.11-pinned"]["verdict"] == "identical"
    old = rows["py3.11-arrow18-pandas2.2-onnx1.21"]
    assert old["verdict"] == "metadata-only"
    assert old["versions"]["pyarrow"] == "18.1.0"
    assert any(line.startswith("features.parquet: created_by") for line in old["what"])
    assert any(line.startswith("3 files (models/model_00.onnx") for line in old["what"])
    table = ran.out
    assert "metadata-only" in table
    assert "created_by" in table


def test_matrix_summary_fails_on_content_drift_naming_the_artifact(tmp_path: Path) -> None:
    results = tmp_path / "results"
    content = [
        Finding("features.parquet", Kind.CONTENT, ("column adm2: 1 row differs, first at row 3",)),
        Finding("models/model_07.onnx", Kind.MISSING, ("the generator writes it",)),
    ]
    _write(results, "py3.12-latest", _check_json(content, {"pyarrow": "27.0.0"}))
    out = tmp_path / "drift-matrix.json"

    ran = call_main("cache_builder", "matrix", results, "--out", out)
    assert ran.code == ExitCode.DRIFT

    (row,) = json.loads(out.read_text(encoding="utf-8"))["combinations"]
    assert row["verdict"] == "missing"
    assert "features.parquet: content: column adm2: 1 row differs, first at row 3" in row["what"]
    assert "models/model_07.onnx: missing: the generator writes it" in row["what"]
    assert "py3.12-latest" in ran.err


def test_matrix_summary_counts_an_unreadable_result_as_a_failure(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "py3.11-pinned.json").write_text("{not json", encoding="utf-8")
    ran = call_main("cache_builder", "matrix", results, "--out", tmp_path / "m.json")
    assert ran.code == ExitCode.DRIFT


def test_matrix_summary_ignores_combinations_no_longer_in_the_matrix(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _write(results, "py3.11-pinned", _check_json(IDENTICAL, {}))
    _write(results, "py3.11-removed-combo", {"findings": "garbage"})
    out = tmp_path / "m.json"
    ran = call_main("cache_builder", "matrix", results, "--out", out, "--combos", "pinned")
    assert ran.code == ExitCode.OK
    names = [row["name"] for row in json.loads(out.read_text())["combinations"]]
    assert names == ["py3.11-pinned"]


def test_matrix_summary_without_results_exits_3(tmp_path: Path) -> None:
    ran = call_main("cache_builder", "matrix", tmp_path / "nothing", "--out", tmp_path / "m.json")
    assert ran.code == ExitCode.INPUT
    assert ran.err.startswith("error: no drift-matrix results")
    assert len(ran.err.splitlines()) == 1
    assert not (tmp_path / "m.json").exists()


def test_matrix_is_a_subcommand_of_the_real_cache_builder_process(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _write(results, "py3.11-pinned", _check_json(IDENTICAL, {"pyarrow": "26.0.1"}))
    out = tmp_path / "summary.json"
    ran = run_module("cache_builder", "matrix", results, "--out", out, "--combos", "pinned")
    assert ran.code == ExitCode.OK, ran.err
    assert json.loads(out.read_text(encoding="utf-8"))["failed"] is False


def test_matrix_with_debug_after_the_subcommand_shows_the_traceback(tmp_path: Path) -> None:
    ran = run_module("cache_builder", "matrix", tmp_path / "nothing", "--debug")
    assert ran.code == ExitCode.INPUT
    assert ran.err.startswith("Traceback (most recent call last):")
    assert ran.err.splitlines()[-1].startswith("error: no drift-matrix results")


def test_cache_builder_version_is_the_model_bisect_version() -> None:
    mine = run_module("cache_builder", "--version")
    theirs = run_module("model_bisect", "--version")
    assert (mine.code, theirs.code) == (ExitCode.OK, ExitCode.OK)
    assert mine.out.split()[-1] == theirs.out.split()[-1]
    assert mine.out.split()[-1][0].isdigit()


def test_a_json_not_named_like_a_result_is_not_read_as_a_combination(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _write(results, "py3.11-pinned", _check_json(IDENTICAL, {"pyarrow": "26.0.1"}))
    _write(results, "model-bisect-report", {"schema_version": 1, "steps": []})
    out = tmp_path / "m.json"
    ran = call_main("cache_builder", "matrix", results, "--out", out)
    assert ran.code == ExitCode.OK, ran.err
    names = [row["name"] for row in json.loads(out.read_text())["combinations"]]
    assert names == ["py3.11-pinned"]
