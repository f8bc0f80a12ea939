"""What the drift check's differs say, line for line: each parquet and ONNX difference the
check names, built here with pyarrow and onnx.helper and read back independently.

The mutation session found these lines unpinned: the classes were tested, the words were not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pyarrow as pa
import pyarrow.parquet as pq
from onnx import TensorProto, helper, numpy_helper

from cache_builder.onnx_diff import compare_onnx
from cache_builder.parquet_diff import compare_parquet


def _write(path: Path, table: pa.Table, **options: Any) -> Path:
    pq.write_table(table, path, **options)
    return path


def _table(**columns: Any) -> pa.Table:
    return pa.table(columns)


def _chunk(path: Path, column: int = 0) -> Any:
    return pq.ParquetFile(path).metadata.row_group(0).column(column)


def test_a_codec_change_of_every_column_is_one_metadata_line(tmp_path: Path) -> None:
    table = _table(a=[1.0, 2.0, 3.0], b=[4, 5, 6])
    old = _write(tmp_path / "old.parquet", table, compression="none")
    new = _write(tmp_path / "new.parquet", table, compression="snappy")
    difference = compare_parquet(old, new)
    assert difference.content == ()
    assert f"compression: {_chunk(old).compression} -> {_chunk(new).compression} (all columns)" in (
        difference.metadata
    )
    sizes = [
        f"column chunk bytes of {name}: {_chunk(old, i).total_compressed_size} -> "
        f"{_chunk(new, i).total_compressed_size}"
        for i, name in enumerate("ab")
        if _chunk(old, i).total_compressed_size != _chunk(new, i).total_compressed_size
    ]
    assert [line for line in difference.metadata if line.startswith("column chunk")] == sizes


def test_a_codec_change_of_one_column_names_that_column(tmp_path: Path) -> None:
    table = _table(a=[1.0, 2.0, 3.0], b=[4, 5, 6])
    old = _write(tmp_path / "old.parquet", table, compression="none")
    new = _write(tmp_path / "new.parquet", table, compression={"a": "none", "b": "gzip"})
    lines = compare_parquet(old, new).metadata
    assert [line for line in lines if line.startswith("compression")] == [
        f"compression of b: {_chunk(old, 1).compression} -> {_chunk(new, 1).compression}"
    ]


def test_writer_fields_and_key_value_metadata_are_named(tmp_path: Path) -> None:
    plain = _table(a=[1.0, 2.0, 3.0, 4.0])
    old_table = plain.replace_schema_metadata({"gone": "1", "same": "x", "changed": "1"})
    new_table = plain.replace_schema_metadata({"same": "x", "changed": "2", "added": "1"})
    old = _write(
        tmp_path / "old.parquet", old_table, version="1.0", write_statistics=True,
        use_dictionary=True,
    )  # fmt: skip
    new = _write(
        tmp_path / "new.parquet", new_table, version="2.6", write_statistics=False,
        use_dictionary=False, row_group_size=2,
    )  # fmt: skip
    old_meta, new_meta = pq.ParquetFile(old).metadata, pq.ParquetFile(new).metadata
    lines = compare_parquet(old, new).metadata
    assert f"format_version: {old_meta.format_version} -> {new_meta.format_version}" in lines
    assert "row groups: 1 -> 2" in lines
    assert "key-value metadata 'added' only in the regenerated file" in lines
    assert "key-value metadata 'gone' only in the committed file" in lines
    assert "key-value metadata 'changed' differs" in lines
    assert not any("'same'" in line for line in lines)
    assert "statistics: written -> absent (all columns)" in lines
    assert "dictionary page: yes -> no (all columns)" in lines
    assert f"footer size (bytes): {old_meta.serialized_size} -> {new_meta.serialized_size}" in (
        lines
    )
    encodings = ["+".join(sorted(_chunk(p).encodings)) for p in (old, new)]
    assert f"encodings: {encodings[0]} -> {encodings[1]} (all columns)" in lines


def test_a_page_index_written_only_now_is_named(tmp_path: Path) -> None:
    table = _table(a=[1.0, 2.0, 3.0], b=[4, 5, 6])
    old = _write(tmp_path / "old.parquet", table)
    new = _write(tmp_path / "new.parquet", table, write_page_index=True)
    assert "page index: no -> yes (all columns)" in compare_parquet(old, new).metadata


def test_equal_files_differ_in_nothing(tmp_path: Path) -> None:
    table = _table(a=[1.0, float("nan")], s=["x", None])
    old = _write(tmp_path / "old.parquet", table)
    new = _write(tmp_path / "new.parquet", table)
    difference = compare_parquet(old, new)
    assert (difference.metadata, difference.content) == ((), ())


def test_schema_changes_are_named_column_by_column(tmp_path: Path) -> None:
    old = _write(tmp_path / "old.parquet", _table(a=[1, 2], b=[1.0, 2.0], gone=[0, 0]))
    new = _write(
        tmp_path / "new.parquet",
        _table(a=pa.array([1, 2], pa.int32()), b=[1.0, 2.0], x=[0, 0], y=[0, 0]),
    )
    assert compare_parquet(old, new).content == (
        "schema: columns x, y missing from the committed file",
        "schema: extra columns gone in the committed file",
        "schema: type of a: int64 -> int32",
    )


def test_a_reordered_schema_and_a_row_count_are_named(tmp_path: Path) -> None:
    old = _write(tmp_path / "old.parquet", _table(a=[1, 2, 3], b=[4, 5, 6]))
    new = _write(tmp_path / "new.parquet", _table(b=[4, 5], a=[1, 2]))
    assert compare_parquet(old, new).content == (
        "schema: column order ['a', 'b'] -> ['b', 'a']",
        "rows: 3 -> 2",
    )


def test_a_numeric_column_names_count_first_row_and_largest_gap(tmp_path: Path) -> None:
    old_values = [1.0, 2.0, float("nan"), 4.0, 5.0]
    new_values = [1.0, 2.5, float("nan"), 1.0, float("nan")]
    old = _write(tmp_path / "old.parquet", _table(v=old_values, n=[1, 2, 3, 4, 5]))
    new = _write(tmp_path / "new.parquet", _table(v=new_values, n=[1, 2, 3, 4, 9]))
    assert compare_parquet(old, new).content == (
        "column v: 3 of 5 rows differ, first at row 1 (2 -> 2.5), largest absolute difference inf",
        "column n: 1 of 5 rows differ, first at row 4 (5 -> 9), largest absolute difference 4",
    )


def test_a_text_column_names_count_and_first_row(tmp_path: Path) -> None:
    old = _write(tmp_path / "old.parquet", _table(s=["a", "b", "c", "d"]))
    new = _write(tmp_path / "new.parquet", _table(s=["a", "B", "c", "D"]))
    assert compare_parquet(old, new).content == (
        "column s: 2 of 4 rows differ, first at row 1 ('b' -> 'B')",
    )


def _tensor_column(values: np.ndarray) -> pa.Array:
    kind = pa.fixed_shape_tensor(pa.float32(), list(values.shape[1:]))
    return pa.FixedShapeTensorArray.from_numpy_ndarray(values.astype(np.float32)).cast(kind)


def test_a_tensor_column_names_rows_first_index_and_largest_gap(tmp_path: Path) -> None:
    old_values = np.arange(24, dtype=np.float32).reshape(3, 2, 4)
    new_values = old_values.copy()
    new_values[1, 1, 2] += 0.5
    new_values[2, 0, 0] -= 3.0
    old = _write(tmp_path / "old.parquet", pa.table({"t": _tensor_column(old_values)}))
    new = _write(tmp_path / "new.parquet", pa.table({"t": _tensor_column(new_values)}))
    assert compare_parquet(old, new).content == (
        "column t: 2 of 3 tensors differ, first at row 1 index [1, 2] (14 -> 14.5), "
        "largest absolute difference 3",
    )
    same = _write(tmp_path / "same.parquet", pa.table({"t": _tensor_column(old_values)}))
    assert compare_parquet(old, same).content == ()


def test_a_fixed_size_list_column_is_compared_as_tensors(tmp_path: Path) -> None:
    kind = pa.list_(pa.int64(), 3)
    old = _write(tmp_path / "old.parquet", pa.table({"f": pa.array([[1, 2, 3], [4, 5, 6]], kind)}))
    new = _write(tmp_path / "new.parquet", pa.table({"f": pa.array([[1, 2, 3], [4, 7, 6]], kind)}))
    assert compare_parquet(old, new).content == (
        "column f: 1 of 2 tensors differ, first at row 1 index [1] (5 -> 7), "
        "largest absolute difference 2",
    )


def test_an_unreadable_committed_parquet_is_content_naming_the_problem(tmp_path: Path) -> None:
    old = tmp_path / "old.parquet"
    old.write_bytes(b"not parquet at all")
    new = _write(tmp_path / "new.parquet", _table(a=[1]))
    difference = compare_parquet(old, new)
    assert difference.metadata == ()
    (line,) = difference.content
    assert line.startswith("committed file is not readable parquet: ")
    assert "\n" not in line
    assert len(line) > len("committed file is not readable parquet: ")


def _model(path: Path, weight: float = 1.0, **fields: Any) -> Path:
    node = helper.make_node("Mul", ["x", "w"], ["y"], name=fields.pop("node_name", "mul"))
    graph = helper.make_graph(
        [node],
        fields.pop("graph_name", "g"),
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [numpy_helper.from_array(np.array([weight], np.float32), "w")],
        doc_string=fields.pop("graph_doc", ""),
    )
    props = fields.pop("props", {})
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], **fields)
    helper.set_model_props(model, props)
    path.write_bytes(model.SerializeToString())
    return path


def test_onnx_metadata_fields_are_each_named_old_then_new(tmp_path: Path) -> None:
    old = _model(tmp_path / "old.onnx", producer_name="p1", doc_string="", props={"k": "1"})
    new = _model(
        tmp_path / "new.onnx", producer_name="p2", producer_version="9", domain="d",
        model_version=3, doc_string="doc", props={"k": "2", "z": "3"}, graph_name="h",
        graph_doc="gd", node_name="times",
    )  # fmt: skip
    difference = compare_onnx(old, new)
    assert difference.content == ()
    assert difference.metadata == (
        "producer_name: p1 -> p2",
        "producer_version: (empty) -> 9",
        "domain: (empty) -> d",
        "model_version: 0 -> 3",
        "doc_string: (empty) -> doc",
        "metadata_props: k=1 -> k=2, z=3",
        "graph name: g -> h",
        "graph doc_string: (empty) -> gd",
        "node 0 (Mul) name: mul -> times",
    )


def test_onnx_ir_version_is_metadata_and_a_weight_is_content(tmp_path: Path) -> None:
    old = _model(tmp_path / "old.onnx")
    model = onnx.load(str(old))
    model.ir_version -= 1
    lower = tmp_path / "lower.onnx"
    lower.write_bytes(model.SerializeToString())
    difference = compare_onnx(old, lower)
    assert difference.content == ()
    assert len(difference.metadata) == 1
    assert str(model.ir_version) in difference.metadata[0]
    weighted = compare_onnx(old, _model(tmp_path / "heavier.onnx", weight=2.0))
    assert weighted.metadata == ()
    assert len(weighted.content) == 1
    assert "w" in weighted.content[0]


def test_onnx_with_equal_fields_but_other_bytes_says_so(tmp_path: Path) -> None:
    old = _model(tmp_path / "old.onnx")
    model = onnx.load(str(old))
    tensor = model.graph.initializer[0]
    values = numpy_helper.to_array(tensor)
    tensor.ClearField("raw_data")
    tensor.float_data.extend(values.tolist())  # the same weight in the other encoding
    new = tmp_path / "new.onnx"
    new.write_bytes(model.SerializeToString())
    assert new.read_bytes() != old.read_bytes()
    difference = compare_onnx(old, new)
    assert difference.content == ()
    assert difference.metadata == (
        "bytes differ, fields equal: serialisation order or tensor encoding",
    )


def test_onnx_graph_change_outside_the_itemised_fields_is_still_content(tmp_path: Path) -> None:
    old = _model(tmp_path / "old.onnx")
    model = onnx.load(str(old))
    model.graph.value_info.append(helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1]))
    new = tmp_path / "new.onnx"
    new.write_bytes(model.SerializeToString())
    difference = compare_onnx(old, new)
    assert difference.content == (
        "graph differs in fields not itemised here (value_info, functions…)",
    )


def test_an_unreadable_committed_onnx_is_content_naming_the_problem(tmp_path: Path) -> None:
    old = tmp_path / "old.onnx"
    old.write_bytes(b"\xff\xff\xff\xff not protobuf")
    difference = compare_onnx(old, _model(tmp_path / "new.onnx"))
    assert difference.metadata == ()
    (line,) = difference.content
    assert line.startswith("committed file is not a readable ONNX model (")
    assert line.endswith(")")
