"""The graph differ names exactly what changed between two real ONNX models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from model_bisect.culprit.graph import diff_models, load_with_weights
from model_bisect.culprit.record import ChangeKind
from model_bisect.errors import InputError
from tests.modelkit import linear_model, linear_proto

GOOD = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]


def test_one_scaled_weight_vector_is_named_first_and_alone() -> None:
    before = linear_proto(GOOD, 0.25)
    scaled = np.asarray(GOOD, dtype=np.float32)
    scaled[3] *= np.float32(3.0)
    after = linear_proto(scaled.tolist(), 0.25)
    (change,) = diff_models(before, after)
    assert change.kind is ChangeKind.INITIALIZER_VALUES
    assert change.name == "W"
    old = np.asarray(GOOD, dtype=np.float32).astype(np.float64)
    new = scaled.astype(np.float64)
    assert change.max_abs == pytest.approx(abs(new[3] - old[3]))
    assert change.rel_l2 == pytest.approx(np.linalg.norm(new - old) / np.linalg.norm(old))
    assert "1 of 6 values changed" in change.detail


def test_weights_are_ranked_by_relative_change_largest_first() -> None:
    before = linear_proto(GOOD, 1.0)
    after = linear_proto([w * 1.01 for w in GOOD], 3.0)  # B triples, W moves by 1%
    assert [c.name for c in diff_models(before, after)] == ["B", "W"]


def test_an_added_node_is_shown_with_its_inputs() -> None:
    before = linear_proto(GOOD)
    after = linear_proto(GOOD, extra_input="gain")
    changes = diff_models(before, after)
    added = [c for c in changes if c.kind is ChangeKind.NODE_ADDED]
    assert [c.name for c in added] == ["Mul score"]
    assert added[0].detail == "node added: Mul score (added, gain -> score)"
    # The Add node now writes "added" instead of "score": matched by outputs, it is another node.
    assert any(c.kind is ChangeKind.SIGNATURE and c.name == "inputs" for c in changes)


def test_retyped_node_changed_attribute_and_opset_are_reported() -> None:
    before = linear_proto(GOOD)
    after = linear_proto(GOOD, opset=18)
    after.graph.node[1].op_type = "Sub"
    after.graph.node[0].attribute.append(helper.make_attribute("alpha", 2.0))
    kinds = {c.kind: c.detail for c in diff_models(before, after)}
    assert kinds[ChangeKind.OPSET] == "opset: ai.onnx 17 -> ai.onnx 18"
    assert kinds[ChangeKind.NODE_RETYPED].endswith(":Add -> :Sub")
    assert kinds[ChangeKind.ATTRIBUTE].endswith("alpha: (absent) -> 2")


def test_a_renamed_initializer_of_the_same_shape_is_matched_by_position() -> None:
    before = linear_proto(GOOD)
    after = linear_proto([w + 0.5 for w in GOOD])
    after.graph.initializer[0].name = "W2"
    after.graph.node[0].input[1] = "W2"
    changes = diff_models(before, after)
    values = [c for c in changes if c.kind is ChangeKind.INITIALIZER_VALUES]
    assert [c.name for c in values] == ["W2 (was W)"]
    assert values[0].max_abs == pytest.approx(0.5)
    assert not [c for c in changes if c.kind is ChangeKind.INITIALIZER_ADDED]


def test_a_reshaped_initializer_is_a_shape_change_and_ir_version_comes_last() -> None:
    before = linear_proto(GOOD)
    after = linear_proto([*GOOD, 0.1])
    after.ir_version = 9
    changes = diff_models(before, after)
    shape = [c for c in changes if c.kind is ChangeKind.INITIALIZER_SHAPE]
    assert [c.detail for c in shape] == ["initializer W: float32[6] -> float32[7]"]
    assert changes[-1].kind is ChangeKind.IR_VERSION


def test_external_data_weights_are_read_and_compared(tmp_path: Path) -> None:
    old = linear_model(tmp_path / "a" / "m.onnx", GOOD, external_data=True)
    new = linear_model(tmp_path / "b" / "m.onnx", [*GOOD[:5], 2.0], external_data=True)
    assert (tmp_path / "b" / "m.onnx.data").exists()
    (change,) = diff_models(load_with_weights(old), load_with_weights(new))
    assert change.name == "W"
    assert change.max_abs == pytest.approx(1.5)


def test_an_unreadable_model_is_an_input_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not onnx at all")
    with pytest.raises(InputError, match=r"broken\.onnx"):
        load_with_weights(path)


def test_identical_models_have_no_changes(tmp_path: Path) -> None:
    a = linear_model(tmp_path / "a.onnx", GOOD)
    model = onnx.load(a)
    model.graph.initializer[0].CopyFrom(
        numpy_helper.from_array(numpy_helper.to_array(model.graph.initializer[0]), "W")
    )
    assert diff_models(onnx.load(a), model) == ()
