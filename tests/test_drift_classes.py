"""Drift classes when one artifact changes in more than one way at once.

A real toolchain bump that also edits a value changes the bytes a reader ignores (codec,
producer) *and* the values it gets back; such an artifact is still `content`, so
`check --require content` fails. The committed-fixture copies here are regenerated per test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from onnx import numpy_helper

from cache_builder.cli import main
from cache_builder.drift import Kind, Require, compare_trees
from cache_builder.onnx_diff import compare_onnx
from tests.cachekit import read_json


@pytest.fixture
def fixture_dir(tmp_path: Path) -> Path:
    out = tmp_path / "bisect"
    assert main(["regenerate", "--out", str(out)]) == 0
    return out


def _check(out: Path, require: str) -> tuple[int, dict[str, Any]]:
    report = out.parent / f"drift-{require}.json"
    code = main(["check", "--out", str(out), "--json", str(report), "--require", require])
    return code, read_json(report)


def _finding(report: dict[str, Any], path: str) -> dict[str, Any]:
    (found,) = [f for f in report["findings"] if f["path"] == path]
    return dict(found)


def test_value_change_under_another_codec_is_content_and_fails_require_content(
    fixture_dir: Path,
) -> None:
    path = fixture_dir / "features.parquet"
    table = pq.read_table(path)
    column = "adm2"
    values = table.column(column).to_numpy().copy()
    old_value = float(values[42])
    values[42] = np.float32(old_value + 0.5)
    index = table.schema.get_field_index(column)
    table = table.set_column(index, column, pa.array(values, type=pa.float32()))
    # Another codec than the generator's: the footer metadata differs too.
    pq.write_table(table, path, compression="zstd")

    code, report = _check(fixture_dir, "content")
    assert code == 1
    assert report["result"] == "drift"
    finding = _finding(report, "features.parquet")
    assert finding["kind"] == "content"
    details = finding["details"]
    assert any(d.startswith("column adm2: 1 of 256 rows differ, first at row 42") for d in details)
    # The metadata half is explained as well, after the content.
    assert any(d.startswith("compression: ZSTD -> ") for d in details)
    content_at = next(i for i, d in enumerate(details) if d.startswith("column adm2"))
    metadata_at = next(i for i, d in enumerate(details) if d.startswith("compression"))
    assert content_at < metadata_at
    assert report["counts"]["content"] == 1
    assert report["counts"]["metadata-only"] == 0


def test_weight_and_producer_change_is_content_itemising_the_initializer(
    fixture_dir: Path,
) -> None:
    """The ONNX path of the same promise, on another initializer (the scalar bias)."""
    path = fixture_dir / "models" / "model_06.onnx"
    model = onnx.load_model(path)
    (bias,) = [t for t in model.graph.initializer if t.name == "bias"]
    old = float(numpy_helper.to_array(bias))
    bias.CopyFrom(numpy_helper.from_array(np.array(old - 2.0, dtype=np.float32), "bias"))
    model.producer_version = "42"
    onnx.save_model(model, path)

    code, report = _check(fixture_dir, "content")
    assert code == 1
    finding = _finding(report, "models/model_06.onnx")
    assert finding["kind"] == "content"
    assert finding["details"][0].startswith(
        "initializer bias: 1 of 1 values changed, largest change at bias "
    )
    assert "(absolute difference 2)" in finding["details"][0]
    assert "producer_version: 42 -> 1" in finding["details"]


def test_compare_trees_classifies_both_way_change_as_content(fixture_dir: Path) -> None:
    """The classifier called directly, without the CLI's exit-code mapping in between."""
    fresh = fixture_dir.parent / "fresh"
    assert main(["regenerate", "--out", str(fresh)]) == 0
    path = fixture_dir / "features.parquet"
    table = pq.read_table(path)
    values = table.column("mos").to_numpy().copy()
    values[0] = np.float32(values[0] + 1.0)
    table = table.set_column(
        table.schema.get_field_index("mos"), "mos", pa.array(values, type=pa.float32())
    )
    pq.write_table(table, path, compression="gzip")
    report = compare_trees(fixture_dir, fresh)
    kinds = {f.path: f.kind for f in report.findings}
    assert kinds["features.parquet"] is Kind.CONTENT
    assert report.fails(Require.CONTENT)


def test_compare_onnx_itemises_every_changed_initializer(tmp_path: Path) -> None:
    """Two hand-built models, not the fixture's: each changed initializer gets its own line."""
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N"])

    def build(w: list[float], b: float) -> onnx.ModelProto:
        graph = onnx.helper.make_graph(
            [
                onnx.helper.make_node("MatMul", ["x", "w"], ["xw"]),
                onnx.helper.make_node("Add", ["xw", "b"], ["y"]),
            ],
            "g",
            [x],
            [y],
            [
                numpy_helper.from_array(np.array(w, dtype=np.float32), "w"),
                numpy_helper.from_array(np.array(b, dtype=np.float32), "b"),
            ],
        )
        return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])

    old, new = tmp_path / "old.onnx", tmp_path / "new.onnx"
    onnx.save_model(build([1.0, 2.0, 3.0], 0.5), old)
    onnx.save_model(build([1.0, 2.0, 3.75], 0.25), new)
    difference = compare_onnx(old, new)
    assert difference.metadata == ()
    rel_w = np.linalg.norm([0.0, 0.0, 0.75]) / np.linalg.norm([1.0, 2.0, 3.0])
    rel_b = 0.25 / 0.5
    # Both itemised, the larger relative change first.
    assert difference.content == (
        "initializer b: 1 of 1 values changed, largest change at b 0.5 -> 0.25 "
        f"(absolute difference 0.25), relative L2 change {rel_b:.7g}",
        "initializer w: 1 of 3 values changed, largest change at w[2] 3 -> 3.75 "
        f"(absolute difference 0.75), relative L2 change {rel_w:.7g}",
    )
