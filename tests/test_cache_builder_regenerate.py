"""regenerate: deterministic bytes, pinned writer settings, an honest manifest, atomic swaps."""

from __future__ import annotations

import hashlib
import json
import os
import types
from pathlib import Path
from typing import Any

import onnx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import cache_builder.writers as writers
from cache_builder.cli import main
from model_bisect.evaluation.features import CANONICAL_FEATURES, TARGET_COLUMN
from model_bisect.toolchain import FIXTURE_PACKAGES
from tests.cachekit import snapshot


def _regenerate(out: Path) -> Path:
    assert main(["regenerate", "--out", str(out)]) == 0
    return out


def test_two_regenerations_into_two_folders_give_identical_bytes(tmp_path: Path) -> None:
    first = snapshot(_regenerate(tmp_path / "a" / "bisect"))
    second = snapshot(_regenerate(tmp_path / "b" / "bisect"))
    assert sorted(first) == sorted(second)
    assert len(first) == 10  # parquet, eight models, manifest
    assert first == second


def test_parquet_is_written_straight_from_arrow_without_codec_or_schema_blob(
    tmp_path: Path,
) -> None:
    out = _regenerate(tmp_path / "bisect")
    meta = pq.read_metadata(out / "features.parquet")
    assert meta.metadata is None  # no pandas metadata, no ARROW:schema
    assert meta.num_rows == 256
    assert meta.num_row_groups == 1
    group = meta.row_group(0)
    assert {group.column(i).compression for i in range(group.num_columns)} == {"UNCOMPRESSED"}
    assert not any(group.column(i).has_dictionary_page for i in range(group.num_columns))
    schema = pq.read_schema(out / "features.parquet")
    assert schema.names == [*CANONICAL_FEATURES, TARGET_COLUMN]
    assert set(schema.types) == {pa.float32()}


def test_models_pin_producer_ir_version_opset_and_dynamic_batch(tmp_path: Path) -> None:
    out = _regenerate(tmp_path / "bisect")
    models = sorted((out / "models").glob("*.onnx"))
    assert [m.name for m in models] == [f"model_{i:02d}.onnx" for i in range(8)]
    for path in models:
        model = onnx.load_model(path)
        assert model.producer_name == writers.PRODUCER_NAME
        assert model.producer_version == writers.PRODUCER_VERSION != onnx.__version__
        assert model.ir_version == 8
        assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
        assert [n.op_type for n in model.graph.node] == ["MatMul", "Add"]
        (given,) = model.graph.input
        (score,) = model.graph.output
        assert given.name == "input"
        assert score.name == "score"
        in_dims = [d.dim_param or d.dim_value for d in given.type.tensor_type.shape.dim]
        out_dims = [d.dim_param or d.dim_value for d in score.type.tensor_type.shape.dim]
        assert in_dims == ["N", 6]
        assert out_dims == ["N"]


def test_models_of_the_timeline_all_differ(tmp_path: Path) -> None:
    out = _regenerate(tmp_path / "bisect")
    blobs = {path.read_bytes() for path in (out / "models").glob("*.onnx")}
    assert len(blobs) == 8


def test_manifest_records_hashes_seeds_toolchain_and_no_path_or_clock(tmp_path: Path) -> None:
    out = _regenerate(tmp_path / "bisect")
    text = (out / "MANIFEST.json").read_text(encoding="utf-8")
    manifest = json.loads(text)
    for name, record in manifest["artifacts"].items():
        blob = (out / name).read_bytes()
        assert record == {"sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob)}
    assert set(manifest["artifacts"]) == {"features.parquet"} | {
        f"models/model_{i:02d}.onnx" for i in range(8)
    }
    assert manifest["origin"]["kind"] == "synthetic"
    assert set(manifest["origin"]["seeds"]) >= {"features", "target_noise", "timeline"}
    assert set(manifest["toolchain"]) == set(FIXTURE_PACKAGES)
    assert manifest["toolchain"]["pyarrow"] == pa.__version__
    assert set(manifest["platform"]) == {"os", "machine"}
    assert str(tmp_path) not in text
    assert str(Path.home()) not in text


def test_regenerate_keeps_readme_and_restores_a_missing_listed_file(tmp_path: Path) -> None:
    out = _regenerate(tmp_path / "bisect")
    (out / "README.md").write_text("# hand-written\n", encoding="utf-8")
    (out / "models" / "model_03.onnx").unlink()
    _regenerate(out)
    assert (out / "README.md").read_text(encoding="utf-8") == "# hand-written\n"
    assert (out / "models" / "model_03.onnx").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bisect"]  # no staging left


def test_regenerate_refuses_a_fixture_holding_a_file_its_manifest_does_not_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _regenerate(tmp_path / "bisect")
    capsys.readouterr()
    (out / "models" / "model_99.onnx").write_bytes(b"old")
    assert main(["regenerate", "--out", str(out)]) == 3
    assert "does not list models/model_99.onnx" in capsys.readouterr().err
    assert (out / "models" / "model_99.onnx").read_bytes() == b"old"


def test_regenerate_refuses_to_replace_a_folder_that_is_not_a_fixture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine\n", encoding="utf-8")
    assert main(["regenerate", "--out", str(tmp_path)]) == 3
    assert capsys.readouterr().err.startswith("error: not a fixture folder (no MANIFEST.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_failure_mid_write_leaves_previous_fixture_and_readme_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _regenerate(tmp_path / "bisect")
    (out / "README.md").write_text("# keep me\n", encoding="utf-8")
    (out / "features.parquet").write_bytes(b"previous fixture")  # so a rewrite would show
    before = snapshot(out)
    real = writers.onnx_bytes
    written: list[int] = []

    def flaky(weights: Any, index: int) -> bytes:
        if len(written) == 3:
            raise OSError("disk full")
        written.append(index)
        return real(weights, index)

    monkeypatch.setattr(writers, "onnx_bytes", flaky)
    assert main(["regenerate", "--out", str(out)]) == 3
    assert written == [0, 1, 2]
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bisect"]


def test_failure_between_the_swap_renames_restores_previous_fixture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _regenerate(tmp_path / "bisect")
    (out / "features.parquet").write_bytes(b"previous fixture")
    before = snapshot(out)
    real_replace = os.replace
    calls: list[str] = []

    def replace(src: Any, dst: Any) -> None:
        calls.append(Path(src).name)
        if len(calls) == 2:  # staging -> out, after out -> .previous
            raise OSError("killed")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)  # the module global writers calls
    with pytest.raises(OSError, match="killed"):
        writers.write_fixture(_synthetic(), out)
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bisect"]


def test_next_run_restores_a_fixture_a_kill_left_set_aside(tmp_path: Path) -> None:
    out = _regenerate(tmp_path / "bisect")
    (out / "README.md").write_text("# survives a kill\n", encoding="utf-8")
    before = snapshot(out)
    os.replace(out, tmp_path / ".bisect.previous")  # killed between the two renames
    _regenerate(out)
    assert snapshot(out) == before
    assert not (tmp_path / ".bisect.previous").exists()


def test_parquet_options_leave_out_settings_an_older_pyarrow_lacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def write_table(table: Any, where: Any, compression: str = "snappy", **kwargs: Any) -> None:
        raise AssertionError("not called")

    class ParquetWriter:
        def __init__(self, where: Any, schema: Any, use_dictionary: bool = True) -> None:
            raise AssertionError("not called")

    monkeypatch.setattr(
        writers, "pq", types.SimpleNamespace(write_table=write_table, ParquetWriter=ParquetWriter)
    )
    writers.parquet_options.cache_clear()
    try:
        assert writers.parquet_options() == {"compression": "NONE", "use_dictionary": False}
    finally:
        writers.parquet_options.cache_clear()


def test_every_pinned_parquet_setting_reaches_this_pyarrow() -> None:
    assert set(writers.parquet_options()) == set(writers.PARQUET_SETTINGS)


def _synthetic() -> Any:
    from cache_builder.synthetic import build_synthetic

    return build_synthetic()
