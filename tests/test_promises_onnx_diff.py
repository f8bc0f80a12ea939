"""The ONNX differ's edges the mutation session's second pass found unpinned: a field
emptied in the regenerated model, graphs of different lengths, and a tensor no numpy dtype
reads ahead of one that is only re-encoded. Models are built here with onnx.helper.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from cache_builder.onnx_diff import compare_onnx


def _save(path: Path, nodes: list[onnx.NodeProto], tensors: list[onnx.TensorProto]) -> Path:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        tensors,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(model.SerializeToString())
    return path


def _weight(value: float = 1.0, *, float_data: bool = False) -> onnx.TensorProto:
    tensor = numpy_helper.from_array(np.array([value], np.float32), "w")
    if float_data:  # the same value in the other encoding
        tensor.ClearField("raw_data")
        tensor.float_data.extend([value])
    return tensor


def test_a_field_emptied_in_the_regenerated_model_reads_empty(tmp_path: Path) -> None:
    old = _save(tmp_path / "old.onnx", [helper.make_node("Mul", ["x", "w"], ["y"])], [_weight()])
    model = onnx.load(str(old))
    model.doc_string = "notes"
    old.write_bytes(model.SerializeToString())
    new = _save(tmp_path / "new.onnx", [helper.make_node("Mul", ["x", "w"], ["y"])], [_weight()])
    assert compare_onnx(old, new).metadata == ("doc_string: notes -> (empty)",)


def test_a_regenerated_graph_with_another_node_count_is_compared_not_refused(
    tmp_path: Path,
) -> None:
    one = [helper.make_node("Mul", ["x", "w"], ["y"], name="mul")]
    two = [
        helper.make_node("Mul", ["x", "w"], ["m"], name="mul"),
        helper.make_node("Relu", ["m"], ["y"], name="relu"),
    ]
    old = _save(tmp_path / "old.onnx", one, [_weight()])
    new = _save(tmp_path / "new.onnx", two, [_weight()])
    difference = compare_onnx(old, new)
    assert difference.metadata == ()
    assert difference.content != ()
    assert any("Relu" in line for line in difference.content)


def test_a_tensor_no_dtype_reads_does_not_stop_the_others_being_normalised(
    tmp_path: Path,
) -> None:
    # data_type 999 is no TensorProto type: numpy_helper cannot read it, so it is compared as
    # it is; the weight after it still counts as equal in either encoding.
    def odd() -> onnx.TensorProto:
        return onnx.TensorProto(name="odd", data_type=999, dims=[1], raw_data=b"\0\0\0\0")

    node = [helper.make_node("Mul", ["x", "w"], ["y"], name="mul")]
    old = _save(tmp_path / "old.onnx", node, [odd(), _weight()])
    new = _save(tmp_path / "new.onnx", node, [odd(), _weight(float_data=True)])
    assert old.read_bytes() != new.read_bytes()
    difference = compare_onnx(old, new)
    assert difference.content == ()
    assert difference.metadata == (
        "bytes differ, fields equal: serialisation order or tensor encoding",
    )
