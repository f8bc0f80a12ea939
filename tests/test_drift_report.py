"""The drift report's own words: advice, JSON fields, toolchain changes, manifest findings.

These close survivors of `nox -s mutation -- cache_builder/drift.py` (docs/testing.md). Most
call `compare_trees` on two regenerated trees, the committed one edited by hand; the JSON
fields are read from a real `check --json`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cache_builder import drift
from cache_builder.cli import main
from cache_builder.difference import Difference
from cache_builder.drift import ADVICE, Kind, Require, ToolchainChange, compare_trees
from cache_builder.writers import parquet_options
from tests.cachekit import edit_model, read_json


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("drift-report") / "fresh"
    assert main(["regenerate", "--out", str(out)]) == 0
    return out


@pytest.fixture
def trees(tmp_path: Path, pristine: Path) -> tuple[Path, Path]:
    """(committed, regenerated): two byte-identical copies to edit."""
    committed, regenerated = tmp_path / "committed", tmp_path / "regenerated"
    shutil.copytree(pristine, committed)
    shutil.copytree(pristine, regenerated)
    return committed, regenerated


def _edit_manifest(tree: Path, **changes: Any) -> dict[str, Any]:
    path = tree / "MANIFEST.json"
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    for key, edit in changes.items():
        edit(manifest[key])
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def _change_a_value(tree: Path) -> None:
    path = tree / "features.parquet"
    table = pq.read_table(path)
    values = table.column("motion2").to_numpy().copy()
    values[5] += 1.0
    index = table.schema.get_field_index("motion2")
    table = table.set_column(index, "motion2", pa.array(values, type=pa.float32()))
    pq.write_table(table, path, **parquet_options())


def test_check_json_carries_schema_require_exit_code_and_both_toolchains(
    trees: tuple[Path, Path],
) -> None:
    committed, _ = trees
    report_path = committed.parent / "check.json"
    argv = ["check", "--out", str(committed), "--json", str(report_path)]
    assert main([*argv, "--require", "content"]) == 0
    clean = read_json(report_path)
    assert clean["schema_version"] == 1
    assert clean["require"] == "content"
    assert clean["exit_code"] == 0
    assert clean["advice"] == ""
    toolchain = clean["toolchain"]
    assert toolchain["changes"] == []
    assert toolchain["recorded"] == toolchain["current"]
    assert "python" in toolchain["recorded"]
    edit_model(committed / "models" / "model_04.onnx", producer_version="7")
    assert main([*argv, "--require", "bytes"]) == 1
    drifted = read_json(report_path)
    assert drifted["require"] == "bytes"
    assert drifted["exit_code"] == 1


def test_advice_names_every_toolchain_change_old_then_new(trees: tuple[Path, Path]) -> None:
    committed, regenerated = trees

    def older(toolchain: dict[str, str]) -> None:
        toolchain["numpy"], toolchain["pyarrow"] = "1.0.0", "2.0.0"

    _edit_manifest(committed, toolchain=older)
    current = _edit_manifest(regenerated, toolchain=lambda t: None)["toolchain"]
    edit_model(committed / "models" / "model_01.onnx", producer_version="7")
    report = compare_trees(committed, regenerated)
    assert report.advice() == (
        "written by numpy 1.0.0, pyarrow 2.0.0; this run has "
        f"numpy {current['numpy']}, pyarrow {current['pyarrow']}: {ADVICE}"
    )


def test_advice_without_a_toolchain_change_blames_the_generator_or_the_files(
    trees: tuple[Path, Path],
) -> None:
    committed, regenerated = trees
    assert compare_trees(committed, regenerated).advice() == ""
    edit_model(committed / "models" / "model_01.onnx", producer_version="7")
    assert compare_trees(committed, regenerated).advice() == (
        "this run's toolchain matches MANIFEST.json, so the generator or the committed files "
        "changed: if that is intended, regenerate with `invoke regenerate` and commit"
    )


def test_a_package_the_manifest_lacks_is_unrecorded_and_one_no_longer_tracked_is_no_change(
    trees: tuple[Path, Path],
) -> None:
    committed, regenerated = trees
    current = _edit_manifest(regenerated, toolchain=lambda t: None)["toolchain"]

    def reshape(toolchain: dict[str, str]) -> None:
        del toolchain["onnx"]
        toolchain["pandas"] = "3.1.1"  # what older manifests recorded; no writer imports it

    _edit_manifest(committed, toolchain=reshape)
    changes = compare_trees(committed, regenerated).toolchain
    assert changes == (ToolchainChange("onnx", "unrecorded", current["onnx"]),)


def test_missing_and_extra_files_say_which_side_has_them(trees: tuple[Path, Path]) -> None:
    committed, regenerated = trees
    (committed / "models" / "model_07.onnx").unlink()
    (committed / "models" / "stray.onnx").write_bytes(b"x")
    findings = {f.path: f for f in compare_trees(committed, regenerated).findings}
    assert findings["models/model_07.onnx"].kind is Kind.MISSING
    assert findings["models/model_07.onnx"].details == ("the generator writes it",)
    assert findings["models/stray.onnx"].kind is Kind.EXTRA
    assert findings["models/stray.onnx"].details == ("the generator does not write it",)


def test_a_file_no_differ_explains_is_content_with_both_sizes(trees: tuple[Path, Path]) -> None:
    committed, regenerated = trees
    (committed / "models" / "notes.txt").write_bytes(b"old")
    (regenerated / "models" / "notes.txt").write_bytes(b"newer")
    report = compare_trees(committed, regenerated)
    (finding,) = [f for f in report.findings if f.path == "models/notes.txt"]
    assert finding.kind is Kind.CONTENT
    assert finding.details == ("bytes differ (size 3 -> 5)",)
    assert report.fails(Require.CONTENT)


def test_another_recipe_in_the_manifest_is_content_naming_the_origin(
    trees: tuple[Path, Path],
) -> None:
    committed, regenerated = trees

    def reseed(origin: dict[str, Any]) -> None:
        origin["seeds"]["features"] += 1

    _edit_manifest(committed, origin=reseed)
    (finding,) = [
        f for f in compare_trees(committed, regenerated).findings if f.path == "MANIFEST.json"
    ]
    assert finding.path == "MANIFEST.json"
    assert finding.kind is Kind.CONTENT
    (line,) = finding.details
    assert line.startswith("origin: {")
    assert " -> {" in line


def test_an_unlisted_matching_file_is_named_even_after_a_drifted_one(
    trees: tuple[Path, Path],
) -> None:
    """features.parquet sorts first and drifts; model_07 matches but the manifest lacks it."""
    committed, regenerated = trees
    _change_a_value(committed)
    _edit_manifest(committed, artifacts=lambda a: a.pop("models/model_07.onnx"))
    findings = {f.path: f for f in compare_trees(committed, regenerated).findings}
    assert findings["features.parquet"].kind is Kind.CONTENT
    assert findings["MANIFEST.json"].details == ("does not list models/model_07.onnx",)


def test_metadata_only_drift_a_differ_cannot_name_still_says_bytes_differ(
    trees: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The classifier's fallback, with a differ that finds nothing to itemise (the differs
    themselves always name something today, so only a stand-in can reach it)."""
    committed, regenerated = trees
    path = committed / "features.parquet"
    pq.write_table(pq.read_table(path), path, compression="snappy")
    monkeypatch.setitem(drift._EXPLAINERS, ".parquet", lambda old, new: Difference())
    (finding,) = [f for f in compare_trees(committed, regenerated).findings if f.path == path.name]
    assert finding.kind is Kind.METADATA_ONLY
    assert finding.details == ("bytes differ",)
