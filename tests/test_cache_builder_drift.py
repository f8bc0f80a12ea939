"""check: every injected drift is classified and explained, and exit codes follow --require."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from onnx import numpy_helper

from cache_builder.cli import main
from cache_builder.writers import parquet_options
from tests.cachekit import edit_model, read_json
from tests.clirun import run_module


@pytest.fixture
def fixture_dir(tmp_path: Path) -> Path:
    out = tmp_path / "bisect"
    assert main(["regenerate", "--out", str(out)]) == 0
    (out / "README.md").write_text("# prose\n", encoding="utf-8")
    return out


def _check(out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    report = out.parent / "drift.json"
    code = main(["check", "--out", str(out), "--json", str(report), *extra])
    return code, read_json(report)


def _finding(report: dict[str, Any], path: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [f for f in report["findings"] if f["path"] == path]
    assert len(found) == 1
    return found[0]


def _kinds(report: dict[str, Any]) -> dict[str, str]:
    return {f["path"]: f["kind"] for f in report["findings"]}


def _set_value(path: Path, column: str, row: int, value: float) -> None:
    """Rewrite one value with the generator's own writer settings: only content changes."""
    table = pq.read_table(path)
    values = table.column(column).to_numpy().copy()
    values[row] = value
    index = table.schema.get_field_index(column)
    table = table.set_column(index, column, pa.array(values, type=pa.float32()))
    pq.write_table(table, path, **parquet_options())


def test_untouched_fixture_is_identical_and_exits_0(fixture_dir: Path) -> None:
    code, report = _check(fixture_dir)
    assert code == 0
    assert report["result"] == "match"
    assert set(_kinds(report).values()) == {"identical"}
    assert "README.md" not in _kinds(report)
    assert report["counts"]["identical"] == 9


def test_edited_readme_is_not_compared(fixture_dir: Path) -> None:
    (fixture_dir / "README.md").write_text("# rewritten prose\n", encoding="utf-8")
    code, report = _check(fixture_dir)
    assert code == 0
    assert "README.md" not in _kinds(report)


def test_one_changed_value_is_content_naming_column_and_row(fixture_dir: Path) -> None:
    _set_value(fixture_dir / "features.parquet", "vif_scale2", 17, 0.125)
    code, report = _check(fixture_dir, "--require", "content")
    assert code == 1
    finding = _finding(report, "features.parquet")
    assert finding["kind"] == "content"
    (line,) = [d for d in finding["details"] if d.startswith("column ")]
    assert line.startswith("column vif_scale2: 1 of 256 rows differ, first at row 17 (0.125 -> ")
    assert "largest absolute difference" in line
    assert {k for p, k in _kinds(report).items() if p != "features.parquet"} == {"identical"}


def test_changed_value_fails_check_from_a_fresh_process(fixture_dir: Path) -> None:
    _set_value(fixture_dir / "features.parquet", "mos", 200, 4.5)
    result = run_module("cache_builder", "check", "--out", str(fixture_dir))
    assert result.code == 1, result.err
    assert "column mos" in result.out
    assert "row 200" in result.out
    assert "Traceback" not in result.err


def test_codec_rewrite_is_metadata_only_and_fails_only_require_bytes(fixture_dir: Path) -> None:
    path = fixture_dir / "features.parquet"
    pq.write_table(pq.read_table(path), path, compression="snappy")
    code, report = _check(fixture_dir, "--require", "bytes")
    assert code == 1
    finding = _finding(report, "features.parquet")
    assert finding["kind"] == "metadata-only"
    assert "compression: SNAPPY -> UNCOMPRESSED (all columns)" in finding["details"]
    code, report = _check(fixture_dir, "--require", "content")
    assert code == 0
    assert report["result"] == "match"


def test_changed_created_by_is_named_old_to_new(fixture_dir: Path) -> None:
    """What a pyarrow bump looks like: the same values under another writer string."""
    path = fixture_dir / "features.parquet"
    blob = path.read_bytes()
    current = f"parquet-cpp-arrow version {pa.__version__}".encode()
    assert blob.count(current) == 1
    older = b"parquet-cpp-arrow version 15.0.0".ljust(len(current))
    assert len(older) == len(current)  # the footer's length prefix stays right
    path.write_bytes(blob.replace(current, older))
    code, report = _check(fixture_dir)
    assert code == 1
    finding = _finding(report, "features.parquet")
    assert finding["kind"] == "metadata-only"
    assert any(
        d.startswith("created_by: parquet-cpp-arrow version 15.0.0") for d in finding["details"]
    )


def test_changed_onnx_weight_is_content_naming_the_initializer(fixture_dir: Path) -> None:
    path = fixture_dir / "models" / "model_03.onnx"
    model = onnx.load_model(path)
    (weights,) = [t for t in model.graph.initializer if t.name == "weights"]
    values = numpy_helper.to_array(weights).copy()
    values[4] += np.float32(0.25)
    weights.CopyFrom(numpy_helper.from_array(values, "weights"))
    onnx.save_model(model, path)
    code, report = _check(fixture_dir, "--require", "content")
    assert code == 1
    finding = _finding(report, "models/model_03.onnx")
    assert finding["kind"] == "content"
    (line,) = finding["details"]
    assert line.startswith(
        "initializer weights: 1 of 6 values changed, largest change at weights[4]"
    )
    assert "absolute difference 0.25" in line


def test_changed_producer_version_is_metadata_only(fixture_dir: Path) -> None:
    edit_model(fixture_dir / "models" / "model_05.onnx", producer_version="9.9.9")
    code, report = _check(fixture_dir)
    assert code == 1
    finding = _finding(report, "models/model_05.onnx")
    assert finding["kind"] == "metadata-only"
    assert finding["details"] == ["producer_version: 9.9.9 -> 1"]
    assert _check(fixture_dir, "--require", "content")[0] == 0


def test_changed_ir_version_is_metadata_only(fixture_dir: Path) -> None:
    edit_model(fixture_dir / "models" / "model_02.onnx", ir_version=9)
    code, report = _check(fixture_dir, "--require", "content")
    assert code == 0
    finding = _finding(report, "models/model_02.onnx")
    assert finding["kind"] == "metadata-only"
    assert finding["details"] == ["ir_version: 9 -> 8"]


def test_changed_opset_is_content(fixture_dir: Path) -> None:
    path = fixture_dir / "models" / "model_01.onnx"
    model = onnx.load_model(path)
    model.opset_import[0].version = 18
    onnx.save_model(model, path)
    code, report = _check(fixture_dir, "--require", "content")
    assert code == 1
    finding = _finding(report, "models/model_01.onnx")
    assert finding["kind"] == "content"
    assert "opset: ai.onnx 18 -> ai.onnx 17" in finding["details"]


def test_deleted_model_is_missing(fixture_dir: Path) -> None:
    (fixture_dir / "models" / "model_07.onnx").unlink()
    code, report = _check(fixture_dir, "--require", "content")
    assert code == 1
    assert _finding(report, "models/model_07.onnx")["kind"] == "missing"


def test_stray_file_is_extra(fixture_dir: Path) -> None:
    (fixture_dir / "models" / "model_08.onnx").write_bytes(b"stray")
    code, report = _check(fixture_dir, "--require", "content")
    assert code == 1
    assert _finding(report, "models/model_08.onnx")["kind"] == "extra"
    assert report["counts"]["extra"] == 1


def test_toolchain_only_manifest_difference_is_reported_not_drift(fixture_dir: Path) -> None:
    path = fixture_dir / "MANIFEST.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["toolchain"]["pyarrow"] = "15.0.2"
    manifest["platform"]["os"] = "Darwin"
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    code, report = _check(fixture_dir, "--require", "bytes")
    assert code == 0
    assert set(_kinds(report).values()) == {"identical"}
    changes = {c["name"]: (c["recorded"], c["current"]) for c in report["toolchain"]["changes"]}
    assert changes == {"pyarrow": ("15.0.2", pa.__version__), "platform os": ("Darwin", "Linux")}


def test_drift_under_another_toolchain_names_it_and_points_to_nox(fixture_dir: Path) -> None:
    path = fixture_dir / "MANIFEST.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["toolchain"]["pyarrow"] = "15.0.2"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    edit_model(fixture_dir / "models" / "model_00.onnx", producer_version="2")
    code, report = _check(fixture_dir)
    assert code == 1
    assert report["advice"].startswith(
        f"written by pyarrow 15.0.2; this run has pyarrow {pa.__version__}"
    )
    assert "`nox -s drift`" in report["advice"]
    assert "`invoke regenerate`" in report["advice"]


def test_manifest_that_misdescribes_matching_files_is_content(fixture_dir: Path) -> None:
    path = fixture_dir / "MANIFEST.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["artifacts"]["models/model_02.onnx"]["sha256"] = "0" * 64
    path.write_text(json.dumps(manifest), encoding="utf-8")
    code, report = _check(fixture_dir, "--require", "content")
    assert code == 1
    finding = _finding(report, "MANIFEST.json")
    assert finding["kind"] == "content"
    assert finding["details"] == ["stale sha256/size for models/model_02.onnx"]


def test_unreadable_committed_parquet_is_content(fixture_dir: Path) -> None:
    (fixture_dir / "features.parquet").write_bytes(b"PAR1 truncated")
    code, report = _check(fixture_dir, "--require", "content")
    assert code == 1
    finding = _finding(report, "features.parquet")
    assert finding["kind"] == "content"
    assert finding["details"][0].startswith("committed file is not readable parquet")


def test_check_without_a_manifest_exits_3_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "bisect").mkdir()
    result = run_module("cache_builder", "check", "--out", str(tmp_path / "bisect"))
    assert result.code == 3
    assert result.err.count("\n") == 1
    assert result.err.startswith("error: no MANIFEST.json in ")
    assert "Traceback" not in result.err


def test_usage_errors_exit_3_not_2() -> None:
    result = run_module("cache_builder", "check", "--require", "everything")
    assert result.code == 3
    assert result.err.startswith("error: argument --require: invalid choice")
    assert result.err.count("\n") == 1


def test_committed_fixture_passes_check_require_bytes() -> None:
    """From the repository root, with --out left to its default (the pinned toolchain venv)."""
    result = run_module("cache_builder", "check", "--require", "bytes")
    assert result.code == 0, result.out + result.err
    assert "byte-identical" in result.out
