"""The committed image fixture: byte-for-byte regeneration, its drift check, and what its
tensor caches and CNN timelines hold when read and run by hand."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cache_builder.cli import main
from tests.cachekit import REPO_ROOT, snapshot
from tests.clirun import call_main

COMMITTED = REPO_ROOT / "testdata" / "bisect-images"


def _generated(tree: dict[str, bytes]) -> dict[str, bytes]:
    return {name: data for name, data in tree.items() if name != "README.md"}


def test_regenerating_the_image_fixture_gives_the_committed_bytes(tmp_path: Path) -> None:
    out = tmp_path / "bisect-images"
    assert main(["regenerate", "--kind", "images", "--out", str(out)]) == 0
    assert _generated(snapshot(out)) == _generated(snapshot(COMMITTED))


def test_check_passes_on_the_committed_image_fixture(tmp_path: Path) -> None:
    report = tmp_path / "check.json"
    assert main(["check", "--out", str(COMMITTED), "--json", str(report)]) == 0
    findings = json.loads(report.read_text())["findings"]
    assert {f["kind"] for f in findings} == {"identical"}
    assert any(f["path"] == "frames.parquet" for f in findings)


def test_regenerate_without_kind_still_writes_the_feature_fixture(tmp_path: Path) -> None:
    out = tmp_path / "bisect"
    assert main(["regenerate", "--out", str(out)]) == 0
    assert _generated(snapshot(out)) == _generated(snapshot(REPO_ROOT / "testdata" / "bisect"))


def test_the_image_fixture_takes_no_source_features(tmp_path: Path) -> None:
    source = tmp_path / "source.parquet"
    source.write_bytes(b"")
    regen = call_main(
        "cache_builder", "regenerate", "--kind", "images", "--out", tmp_path / "x",
        "--source-features", source,
    )  # fmt: skip
    assert regen.code == 3
    assert "--source-features makes a feature fixture" in regen.err
    assert not (tmp_path / "x").exists()
    check = call_main("cache_builder", "check", "--out", COMMITTED, "--source-features", source)
    assert check.code == 3
    assert "--source-features does not apply to the image fixture" in check.err


def test_one_changed_pixel_is_content_drift_naming_row_and_index(tmp_path: Path) -> None:
    copy = tmp_path / "bisect-images"
    shutil.copytree(COMMITTED, copy)
    table = pq.read_table(copy / "frames.parquet")
    frames = table.column("frame").combine_chunks().to_numpy_ndarray().copy()
    before = int(frames[11, 0, 20, 9])
    frames[11, 0, 20, 9] = 255 - before
    tensor = pa.FixedShapeTensorArray.from_numpy_ndarray(frames)
    pq.write_table(table.set_column(0, "frame", tensor), copy / "frames.parquet")
    report = tmp_path / "check.json"
    assert main(["check", "--out", str(copy), "--require", "content", "--json", str(report)]) == 1
    (finding,) = [f for f in json.loads(report.read_text())["findings"] if f["kind"] != "identical"]
    assert finding["path"] == "frames.parquet"
    assert finding["kind"] == "content"
    expected = (
        f"1 of 120 tensors differ, first at row 11 index [0, 20, 9] ({255 - before} -> {before})"
    )
    assert expected in finding["details"][0]


def test_tensor_columns_follow_the_data_contract() -> None:
    frames = pq.read_table(COMMITTED / "frames.parquet")
    pairs = pq.read_table(COMMITTED / "pairs.parquet")
    caches = ((frames, ["frame"], [1, 32, 32]), (pairs, ["ref", "dist"], [3, 32, 32]))
    for table, columns, shape in caches:
        for name in columns:
            kind = table.schema.field(name).type
            assert isinstance(kind, pa.FixedShapeTensorType)
            assert kind.value_type == pa.uint8()
            assert list(kind.shape) == shape
        assert table.schema.field("mos").type == pa.float64()
        assert table.schema.field("clip").type == pa.string()
        clips: dict[str, set[float]] = {}
        for clip, mos in zip(table["clip"].to_pylist(), table["mos"].to_pylist(), strict=True):
            clips.setdefault(clip, set()).add(mos)
        assert all(len(scores) == 1 for scores in clips.values())  # one target per clip
        assert len(clips) < table.num_rows  # several frames per clip
    assert frames.num_rows + pairs.num_rows <= 300
    size = sum(p.stat().st_size for p in COMMITTED.rglob("*") if p.is_file())
    assert size < 500_000


def _timeline(name: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = tomllib.loads((COMMITTED / name).read_text())["models"]
    return entries


def _feed(table: pa.Table, spec: dict[str, Any]) -> np.ndarray:
    """The contract's preprocessing, written out: scale first, then per-channel mean/std."""
    pixels = table.column(spec["tensor"]).combine_chunks().to_numpy_ndarray()
    x = pixels.astype(np.float32) * np.float32(spec["scale"])
    if "mean" in spec:
        mean = np.array(spec["mean"], dtype=np.float32).reshape(1, -1, 1, 1)
        std = np.array(spec["std"], dtype=np.float32).reshape(1, -1, 1, 1)
        x = (x - mean) / std
    return x.astype(np.float32)


def _plcc_by_hand(timeline: str, cache: str) -> list[float]:
    """Each model run by ONNX Runtime row batch by row batch; lower-is-better negated."""
    table = pq.read_table(COMMITTED / cache)
    target = np.array(table["mos"].to_pylist())
    plcc = []
    for entry in _timeline(timeline):
        session = ort.InferenceSession(
            str(COMMITTED / entry["path"]), providers=["CPUExecutionProvider"]
        )
        feeds = {name: _feed(table, spec) for name, spec in entry["inputs"].items()}
        batch = session.get_inputs()[0].shape[0]
        step = batch if isinstance(batch, int) else table.num_rows
        scores = []
        for start in range(0, table.num_rows, step):
            chunk = {name: x[start : start + step] for name, x in feeds.items()}
            scores.append(np.asarray(session.run(None, chunk)[0], dtype=np.float64).reshape(-1))
        predicted = np.concatenate(scores)
        if entry.get("direction") == "lower":
            predicted = -predicted
        plcc.append(float(np.corrcoef(predicted, target)[0, 1]))
    return plcc


def test_the_no_reference_timeline_regresses_at_model_4() -> None:
    plcc = _plcc_by_hand("nr-timeline.toml", "frames.parquet")
    assert len(plcc) == 6
    assert min(plcc[:4]) > 0.85
    assert plcc[4] < plcc[3] - 0.5
    assert plcc[5] < plcc[3] - 0.5


def test_the_full_reference_models_are_good_and_the_distance_is_declared_lower() -> None:
    entries = _timeline("fr-timeline.toml")
    assert [e.get("direction", "higher") for e in entries] == ["higher", "higher", "lower"]
    plcc = _plcc_by_hand("fr-timeline.toml", "pairs.parquet")
    assert min(plcc) > 0.85  # the distance too, once negated as its direction says


@pytest.mark.parametrize("name", ["nr_00", "fr_00", "fr_02"])
def test_cnn_models_pin_producer_ir_opset_and_the_layer_chain(name: str) -> None:
    model = onnx.load_model(COMMITTED / "models" / f"{name}.onnx")
    assert (model.producer_name, model.producer_version) == ("model-bisect cache_builder", "1")
    assert model.ir_version == 8
    assert [o.version for o in model.opset_import] == [17]
    ops = [node.op_type for node in model.graph.node]
    chain = ["Conv", "Relu", "GlobalAveragePool", "Flatten", "Gemm"]
    assert ops[ops.index("Conv") : ops.index("Gemm") + 1] == chain
    if name.startswith("fr"):
        assert [i.name for i in model.graph.input] == ["ref", "dist"]
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert (batch.dim_value == 1) if name == "fr_02" else (batch.dim_param == "N")
