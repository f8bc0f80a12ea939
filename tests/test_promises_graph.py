"""The culprit section's change lines, word for word: people read them in the terminal and in
the pull-request comment, so each kind of change is pinned on a small model built here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from model_bisect.culprit.graph import diff_models, load_with_weights, short, summary_lines
from model_bisect.culprit.record import ChangeKind, GraphChange
from model_bisect.errors import InputError
from tests.modelkit import (
    IR_VERSION,
    linear_model,
    linear_proto,
    missing_external_data_model,
    unsafe_external_data_model,
)

GOOD = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]


def _details(before: onnx.ModelProto, after: onnx.ModelProto) -> list[str]:
    return [c.detail for c in diff_models(before, after)]


def _chain(
    nodes: list[onnx.NodeProto],
    initializers: list[onnx.TensorProto] = (),  # type: ignore[assignment]
    *,
    opsets: tuple[tuple[str, int], ...] = (("", 17),),
) -> onnx.ModelProto:
    """A graph over input x [N, 2] and output y [N, 2] of the given nodes (not run)."""
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        initializer=list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = IR_VERSION
    return model


# --- numbers and empty sides -----------------------------------------------------------------


def test_numbers_are_shown_to_float32_precision_and_other_values_as_they_are() -> None:
    assert short(0.1 + 0.2) == "0.3"
    assert short(1234567.891) == "1234568"
    assert short(2.5e-9) == "2.5e-09"
    assert short(7) == "7"
    assert short("relu") == "relu"


def test_an_opset_gained_from_nothing_is_shown_as_empty() -> None:
    before = _chain([helper.make_node("Relu", ["x"], ["y"])], opsets=())
    after = _chain([helper.make_node("Relu", ["x"], ["y"])])
    assert _details(before, after) == ["opset: (empty) -> ai.onnx 17"]


# --- opset, signature, IR version --------------------------------------------------------------


def test_opsets_are_listed_by_domain_with_the_default_one_named_ai_onnx() -> None:
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    before = _chain(relu, opsets=(("com.microsoft", 1), ("", 17)))
    after = _chain(relu, opsets=(("com.microsoft", 1), ("", 18)))
    assert _details(before, after) == [
        "opset: ai.onnx 17, com.microsoft 1 -> ai.onnx 18, com.microsoft 1"
    ]
    assert [c.kind for c in diff_models(before, after)] == [ChangeKind.OPSET]
    assert diff_models(before, after)[0].name == "opset"


def test_a_second_input_is_shown_in_the_signature_with_dtype_and_dims() -> None:
    before = linear_proto(GOOD)
    after = linear_proto(GOOD, extra_input="gain")
    (signature,) = [c for c in diff_models(before, after) if c.kind is ChangeKind.SIGNATURE]
    assert signature.name == "inputs"
    assert signature.detail == "inputs: input float[N,6] -> input float[N,6]; gain float[1]"


def test_an_output_that_changes_shape_and_dtype_is_an_outputs_signature_change() -> None:
    before = linear_proto(GOOD)
    after = linear_proto(GOOD, output_shape="N1")
    after.graph.output[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    changes = [c for c in diff_models(before, after) if c.kind is ChangeKind.SIGNATURE]
    assert [(c.name, c.detail) for c in changes] == [
        ("outputs", "outputs: score float[N] -> score double[N,1]")
    ]


def test_an_unknown_element_type_is_named_by_its_number() -> None:
    before = linear_proto(GOOD)
    after = linear_proto(GOOD)
    after.graph.input[0].type.tensor_type.elem_type = 99
    assert _details(before, after) == ["inputs: input float[N,6] -> input dtype99[N,6]"]


def test_the_ir_version_comes_last_after_every_other_change() -> None:
    before = linear_proto(GOOD, 0.0)
    after = linear_proto(GOOD, 1.0, opset=18)
    after.ir_version = IR_VERSION + 1
    changes = diff_models(before, after)
    assert [c.kind for c in changes] == [
        ChangeKind.OPSET,
        ChangeKind.INITIALIZER_VALUES,
        ChangeKind.IR_VERSION,
    ]
    assert changes[-1].name == "ir_version"
    assert changes[-1].detail == f"ir_version: {IR_VERSION} -> {IR_VERSION + 1}"


# --- nodes -----------------------------------------------------------------------------------


def test_an_added_and_a_removed_node_are_each_one_line() -> None:
    before = _chain([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["r"], ["y"])])
    after = _chain([helper.make_node("Relu", ["x"], ["y"], name="act")])
    changes = diff_models(before, after)
    assert [(c.kind, c.name, c.detail) for c in changes] == [
        (ChangeKind.NODE_REMOVED, "Neg y", "node removed: Neg y"),
        (ChangeKind.NODE_WIRING, "Relu act", "node Relu act outputs: r -> y"),
    ]


def test_an_added_node_lists_its_inputs_and_outputs() -> None:
    before = _chain([helper.make_node("Relu", ["x"], ["y"])])
    after = _chain(
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Split", ["y"], ["a", "b"])]
    )
    (added,) = diff_models(before, after)
    assert (added.kind, added.name) == (ChangeKind.NODE_ADDED, "Split a,b")
    assert added.detail == "node added: Split a,b (y -> a, b)"


def test_a_node_without_name_or_outputs_is_called_unnamed() -> None:
    before = _chain([helper.make_node("Relu", ["x"], ["y"])])
    after = _chain([helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Print", ["y"], [])])
    (added,) = diff_models(before, after)
    assert added.detail == "node added: Print (unnamed) (y -> )"


def test_a_retyped_node_shows_domain_and_op_on_both_sides() -> None:
    before = _chain([helper.make_node("Relu", ["x"], ["y"], name="act")])
    after = _chain([helper.make_node("Gelu", ["x"], ["y"], name="act", domain="com.microsoft")])
    (change,) = diff_models(before, after)
    assert (change.kind, change.name) == (ChangeKind.NODE_RETYPED, "Gelu act")
    assert change.detail == "node Gelu act op: :Relu -> com.microsoft:Gelu"


def test_rewired_inputs_are_shown_comma_separated() -> None:
    before = _chain([helper.make_node("Add", ["x", "x"], ["y"])])
    after = _chain([helper.make_node("Add", ["x", "c"], ["y"])])
    (change,) = diff_models(before, after)
    assert (change.kind, change.name) == (ChangeKind.NODE_WIRING, "Add y")
    assert change.detail == "node Add y inputs: x,x -> x,c"


def test_a_renamed_node_with_the_same_wiring_is_the_same_node() -> None:
    before = _chain([helper.make_node("Relu", ["x"], ["y"], name="one")])
    after = _chain([helper.make_node("Relu", ["x"], ["y"], name="two")])
    assert diff_models(before, after) == ()


def test_a_node_whose_output_was_renamed_is_matched_by_op_and_inputs() -> None:
    before = _chain([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["r"], ["y"])])
    after = _chain([helper.make_node("Relu", ["x"], ["s"]), helper.make_node("Neg", ["s"], ["y"])])
    assert sorted(_details(before, after)) == [
        "node Neg y inputs: r -> s",
        "node Relu s outputs: r -> s",
    ]


def test_a_node_with_another_op_and_inputs_is_matched_by_what_it_writes() -> None:
    before = _chain([helper.make_node("Relu", ["x"], ["y"])])
    after = _chain([helper.make_node("Abs", ["z"], ["y"])])
    assert _details(before, after) == ["node Abs y op: :Relu -> :Abs", "node Abs y inputs: x -> z"]


def test_twin_nodes_are_paired_in_graph_order() -> None:
    # Two Relus on x with renamed outputs: each is matched by op and inputs, first to first.
    before = _chain(
        [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Relu", ["x"], ["b"])]
    )
    after = _chain([helper.make_node("Relu", ["x"], ["c"]), helper.make_node("Relu", ["x"], ["d"])])
    assert _details(before, after) == ["node Relu c outputs: a -> c", "node Relu d outputs: b -> d"]


def test_named_nodes_are_matched_by_name_before_their_wiring() -> None:
    # The names swap places: matched by name, each node reports its own rewiring.
    before = _chain(
        [
            helper.make_node("Relu", ["x"], ["a"], name="first"),
            helper.make_node("Relu", ["a"], ["y"], name="second"),
        ]
    )
    after = _chain(
        [
            helper.make_node("Relu", ["a"], ["y"], name="first"),
            helper.make_node("Relu", ["x"], ["a"], name="second"),
        ]
    )
    assert _details(before, after) == [
        "node Relu first inputs: x -> a",
        "node Relu first outputs: a -> y",
        "node Relu second inputs: a -> x",
        "node Relu second outputs: y -> a",
    ]


# --- attributes ------------------------------------------------------------------------------


def test_attribute_changes_are_listed_by_name_with_absent_sides() -> None:
    before = _chain([helper.make_node("LeakyRelu", ["x"], ["y"], alpha=0.1, name="act")])
    after = _chain([helper.make_node("LeakyRelu", ["x"], ["y"], beta=2, name="act")])
    after.graph.node[0].attribute.append(helper.make_attribute("alpha", 0.25))
    after.graph.node[0].attribute.append(helper.make_attribute("axes", [1, 2]))
    before.graph.node[0].attribute.append(helper.make_attribute("mode", "constant"))
    changes = diff_models(before, after)
    assert [(c.kind, c.name) for c in changes] == [
        (ChangeKind.ATTRIBUTE, "LeakyRelu act.alpha"),
        (ChangeKind.ATTRIBUTE, "LeakyRelu act.axes"),
        (ChangeKind.ATTRIBUTE, "LeakyRelu act.beta"),
        (ChangeKind.ATTRIBUTE, "LeakyRelu act.mode"),
    ]
    assert [c.detail for c in changes] == [
        "node LeakyRelu act attribute alpha: 0.1 -> 0.25",
        "node LeakyRelu act attribute axes: (absent) -> [1, 2]",
        "node LeakyRelu act attribute beta: (absent) -> 2",
        "node LeakyRelu act attribute mode: b'constant' -> (absent)",
    ]


def test_an_unchanged_attribute_is_not_a_change() -> None:
    node = helper.make_node("LeakyRelu", ["x"], ["y"], alpha=0.1)
    assert diff_models(_chain([node]), _chain([node])) == ()


def test_a_long_attribute_is_cut_to_eighty_characters() -> None:
    before = _chain([helper.make_node("Pad", ["x"], ["y"], pads=[0] * 40)])
    after = _chain([helper.make_node("Pad", ["x"], ["y"], pads=[1] * 40)])
    (change,) = diff_models(before, after)
    old, new = ("[" + ", ".join([str(v)] * 40) + "]" for v in (0, 1))
    assert change.detail == f"node Pad y attribute pads: {old[:80]} -> {new[:80]}"


def test_an_attribute_onnx_cannot_read_is_shown_as_unreadable() -> None:
    before = _chain([helper.make_node("Relu", ["x"], ["y"])])
    after = _chain([helper.make_node("Relu", ["x"], ["y"])])
    # A reference to a function's attribute: onnx.helper cannot give its value.
    broken = onnx.AttributeProto(name="odd", ref_attr_name="outer", type=onnx.AttributeProto.FLOAT)
    after.graph.node[0].attribute.append(broken)
    assert _details(before, after) == ["node Relu y attribute odd: (absent) -> (unreadable)"]


# --- initializers ----------------------------------------------------------------------------


def _tensor(values: object, name: str, dtype: type = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


def test_added_and_removed_initializers_show_their_onnx_dtype_and_dims() -> None:
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    before = _chain(relu, [_tensor([[1, 2, 3], [4, 5, 6]], "gone")])
    after = _chain(relu, [_tensor([1, 2], "new", np.int64)])
    changes = diff_models(before, after)
    assert [(c.kind, c.name, c.detail) for c in changes] == [
        (ChangeKind.INITIALIZER_ADDED, "new", "initializer new: added int64[2]"),
        (ChangeKind.INITIALIZER_REMOVED, "gone", "initializer gone: removed float[2,3]"),
    ]


def test_unmatched_initializers_pair_by_position_only_when_dtype_and_shape_agree() -> None:
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    before = _chain(relu, [_tensor([1, 2], "a"), _tensor([1, 2, 3], "b"), _tensor([7], "c")])
    after = _chain(relu, [_tensor([1, 2], "p"), _tensor([1, 2], "q"), _tensor([7], "c")])
    # a and p agree (equal values: no line); b [3] and q [2] do not; c is matched by name.
    assert _details(before, after) == [
        "initializer q: added float[2]",
        "initializer b: removed float[3]",
    ]


def test_an_extra_unmatched_initializer_on_either_side_is_added_or_removed() -> None:
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    one, two = [_tensor([1], "a")], [_tensor([1], "a"), _tensor([5], "b")]
    assert _details(_chain(relu, one), _chain(relu, two)) == ["initializer b: added float[1]"]
    assert _details(_chain(relu, two), _chain(relu, one)) == ["initializer b: removed float[1]"]
    renamed = [_tensor([1], "z"), _tensor([2, 3], "y2")]
    assert _details(_chain(relu, one), _chain(relu, renamed)) == ["initializer y2: added float[2]"]


def test_a_retyped_initializer_is_a_shape_change_in_numpy_terms() -> None:
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    before = _chain(relu, [_tensor([1, 2], "w")])
    after = _chain(relu, [_tensor([1, 2], "w", np.float16)])
    (change,) = diff_models(before, after)
    assert (change.kind, change.name) == (ChangeKind.INITIALIZER_SHAPE, "w")
    assert change.detail == "initializer w: float32[2] -> float16[2]"


def test_changed_weights_say_how_many_moved_where_most_and_by_how_much() -> None:
    before = linear_proto(GOOD)
    after = linear_proto([1.0, 0.9, 0.8, 2.0, 0.6, 0.4])
    (change,) = diff_models(before, after)
    old = np.asarray(GOOD, dtype=np.float32).astype(np.float64)
    new = np.asarray([1.0, 0.9, 0.8, 2.0, 0.6, 0.4], dtype=np.float32).astype(np.float64)
    rel = np.linalg.norm(new - old) / np.linalg.norm(old)
    gap = new[3] - old[3]
    assert change.detail == (
        "initializer W: 2 of 6 values changed, largest change at W[3] 0.7 -> 2 "
        f"(absolute difference {gap:.7g}), relative L2 change {rel:.7g}"
    )
    assert change.max_abs == pytest.approx(gap)
    assert change.rel_l2 == pytest.approx(rel)


def test_a_changed_scalar_has_no_index_and_a_zero_scalar_grows_infinitely() -> None:
    before, after = linear_proto(GOOD, 0.0), linear_proto(GOOD, -0.5)
    (change,) = diff_models(before, after)
    assert change.detail == (
        "initializer B: 1 of 1 values changed, largest change at B -0 -> -0.5 "
        "(absolute difference 0.5), relative L2 change inf"
    ) or change.detail == (
        "initializer B: 1 of 1 values changed, largest change at B 0 -> -0.5 "
        "(absolute difference 0.5), relative L2 change inf"
    )
    assert change.rel_l2 == float("inf")
    assert change.max_abs == pytest.approx(0.5)


def test_a_value_that_became_nan_is_the_largest_change() -> None:
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    before = _chain(relu, [_tensor([1.0, 2.0, 3.0], "w")])
    after = _chain(relu, [_tensor([1.0, 2.5, np.nan], "w")])
    (change,) = diff_models(before, after)
    assert change.detail == (
        "initializer w: 2 of 3 values changed, largest change at w[2] 3 -> nan "
        "(absolute difference nan), relative L2 change nan"
    )
    assert change.max_abs == float("inf")


def test_nan_left_as_nan_is_no_change_and_old_nan_makes_the_relative_change_infinite() -> None:
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    before = _chain(relu, [_tensor([1.0, 2.0, np.nan], "w")])
    after = _chain(relu, [_tensor([1.0, 2.5, np.nan], "w")])
    assert diff_models(before, before) == ()
    (change,) = diff_models(before, after)
    assert change.detail == (
        "initializer w: 1 of 3 values changed, largest change at w[1] 2 -> 2.5 "
        "(absolute difference 0.5), relative L2 change inf"
    )


def test_changed_integer_weights_are_compared_as_numbers() -> None:
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    before = _chain(relu, [_tensor([[3, 4], [0, 0]], "q", np.int8)])
    after = _chain(relu, [_tensor([[3, 4], [0, -5]], "q", np.int8)])
    (change,) = diff_models(before, after)
    assert change.detail == (
        "initializer q: 1 of 4 values changed, largest change at q[3] 0 -> -5 "
        "(absolute difference 5), relative L2 change 1"
    )


def test_weights_that_are_not_numbers_are_equal_or_differ() -> None:
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    words = helper.make_tensor("labels", TensorProto.STRING, [2], [b"cat", b"dog"])
    other = helper.make_tensor("labels", TensorProto.STRING, [2], [b"cat", b"cow"])
    assert diff_models(_chain(relu, [words]), _chain(relu, [words])) == ()
    changes = diff_models(_chain(relu, [words]), _chain(relu, [other]))
    assert [(c.kind, c.name, c.detail) for c in changes] == [
        (ChangeKind.INITIALIZER_VALUES, "labels", "initializer labels: values differ")
    ]
    assert (changes[0].max_abs, changes[0].rel_l2) == (None, None)


def test_boolean_weights_are_counted_as_zeros_and_ones() -> None:
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    before = _chain(relu, [_tensor([True, False, False], "mask", np.bool_)])
    after = _chain(relu, [_tensor([True, True, False], "mask", np.bool_)])
    assert _details(before, after) == [
        "initializer mask: 1 of 3 values changed, largest change at mask[1] 0 -> 1 "
        "(absolute difference 1), relative L2 change 1"
    ]


def test_a_weight_onnx_cannot_read_is_compared_by_its_bytes() -> None:
    relu = [helper.make_node("Relu", ["x"], ["y"])]

    def unreadable(raw: bytes) -> onnx.TensorProto:
        tensor = onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4])
        tensor.raw_data = raw  # 3 bytes for four floats: numpy_helper refuses it
        return tensor

    same = diff_models(_chain(relu, [unreadable(b"abc")]), _chain(relu, [unreadable(b"abc")]))
    assert same == ()
    changes = diff_models(_chain(relu, [unreadable(b"abc")]), _chain(relu, [unreadable(b"abd")]))
    assert [(c.kind, c.name, c.detail) for c in changes] == [
        (ChangeKind.INITIALIZER_VALUES, "w", "initializer w: differs (not readable as an array)")
    ]


def test_a_renamed_weight_is_named_with_its_old_name() -> None:
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    before = _chain(relu, [_tensor([1.0, 2.0], "old")])
    after = _chain(relu, [_tensor([1.0, 4.0], "new")])
    (change,) = diff_models(before, after)
    assert change.name == "new (was old)"
    assert change.detail.startswith(
        "initializer new (was old): 1 of 2 values changed, largest change at new (was old)[1] "
    )


def test_changed_weights_rank_by_relative_change_then_absolute_change_then_name() -> None:
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    before = _chain(
        relu, [_tensor([1.0], "b"), _tensor([1.0], "a"), _tensor([10.0], "c"), _tensor([1.0], "d")]
    )
    # b and a both double (relative 1, absolute 1): by name; c doubles too, absolute 10: first;
    # d moves by 10%: last.
    after = _chain(
        relu, [_tensor([2.0], "b"), _tensor([2.0], "a"), _tensor([20.0], "c"), _tensor([1.1], "d")]
    )
    assert [c.name for c in diff_models(before, after)] == ["c", "a", "b", "d"]


# --- the summary -----------------------------------------------------------------------------


def _changes(count: int) -> list[GraphChange]:
    return [GraphChange(ChangeKind.OPSET, f"c{i}", f"line {i}") for i in range(count)]


def test_the_summary_shows_three_lines_and_counts_the_rest() -> None:
    assert summary_lines(_changes(3)) == ["line 0", "line 1", "line 2"]
    assert summary_lines(_changes(5)) == ["line 0", "line 1", "line 2", "... and 2 more"]
    assert summary_lines(iter(_changes(2)), limit=1) == ["line 0", "... and 1 more"]
    assert summary_lines([]) == []


# --- loading ---------------------------------------------------------------------------------


def test_a_file_that_is_not_a_model_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\xff\xff not onnx")
    with pytest.raises(InputError) as raised:
        load_with_weights(path)
    error = raised.value
    assert error.problem.startswith("not a readable ONNX model (")
    assert error.where == str(path)
    assert error.fix == "pass an .onnx file"


def test_a_missing_model_file_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "absent.onnx"
    with pytest.raises(InputError) as raised:
        load_with_weights(path)
    assert raised.value.problem.startswith("not a readable ONNX model (")
    assert raised.value.where == str(path)


def test_weights_outside_the_models_folder_are_refused_before_reading(tmp_path: Path) -> None:
    path = unsafe_external_data_model(
        tmp_path / "m" / "model.onnx", GOOD, "parent", outside=tmp_path / "elsewhere.data"
    )
    with pytest.raises(InputError) as raised:
        load_with_weights(path)
    error = raised.value
    assert error.problem == (
        "unsafe external-data location '../elsewhere.data': leaves the model's folder via '..'"
    )
    assert error.where == str(path)
    assert error.fix == "keep external data beside the model"


def test_missing_external_weights_ask_for_the_data_file(tmp_path: Path) -> None:
    path = missing_external_data_model(tmp_path / "model.onnx", GOOD)
    with pytest.raises(InputError) as raised:
        load_with_weights(path)
    error = raised.value
    assert error.problem.startswith("external data cannot be read (")
    assert "\n" not in error.problem
    assert error.where == str(path)
    assert error.fix == "restore the model's .data files beside it"


def test_external_weights_beside_the_model_are_read_in(tmp_path: Path) -> None:
    path = linear_model(tmp_path / "model.onnx", GOOD, external_data=True)
    model = load_with_weights(path)
    assert isinstance(model, onnx.ModelProto)
    weights = {t.name: numpy_helper.to_array(t).tolist() for t in model.graph.initializer}
    assert weights["W"] == pytest.approx(GOOD)
    assert diff_models(model, linear_proto(GOOD)) == ()


# --- second pass: empty sides, unreadable halves, overflow and NaN, the order of odd changes ---


def test_an_opset_dropped_to_nothing_is_shown_as_empty() -> None:
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    assert _details(_chain(relu), _chain(relu, opsets=())) == ["opset: ai.onnx 17 -> (empty)"]


def test_a_weight_that_became_unreadable_on_one_side_differs() -> None:
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    broken = onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4])
    broken.raw_data = b"abc"  # too short for four floats
    readable = _tensor([1, 2, 3, 4], "w")
    for before, after in ((readable, broken), (broken, readable)):
        assert _details(_chain(relu, [before]), _chain(relu, [after])) == [
            "initializer w: differs (not readable as an array)"
        ]


def test_an_infinite_change_outranks_a_nan_that_comes_after_it() -> None:
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    before = _chain(relu, [_tensor([1.0, 2.0], "w")])
    after = _chain(relu, [_tensor([np.inf, np.nan], "w")])
    (change,) = diff_models(before, after)
    assert change.detail.startswith(
        "initializer w: 2 of 2 values changed, largest change at w[0] 1 -> inf "
        "(absolute difference inf)"
    )


def test_weights_that_stay_infinite_or_overflow_the_difference_raise_no_warning() -> None:
    # Warnings are errors in this suite: inf - inf (an unchanged infinite weight) and a
    # difference past the float64 range must be computed quietly.
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    before = _chain(relu, [_tensor([np.inf, 1.0], "w", np.float64)])
    after = _chain(relu, [_tensor([np.inf, 2.0], "w", np.float64)])
    (change,) = diff_models(before, after)
    assert change.detail.startswith("initializer w: 1 of 2 values changed, largest change at w[1]")
    before = _chain(relu, [_tensor([1e308, 1.0], "v", np.float64)])
    after = _chain(relu, [_tensor([-1e308, 1.0], "v", np.float64)])
    (change,) = diff_models(before, after)
    # (The relative change is inf / inf there: not pinned.)
    assert change.detail.startswith(
        "initializer v: 1 of 2 values changed, largest change at v[0] 1e+308 -> -1e+308 "
        "(absolute difference inf), relative L2 change "
    )


def test_weights_that_cannot_be_measured_come_after_every_measured_change() -> None:
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    words = helper.make_tensor("a_labels", TensorProto.STRING, [1], [b"cat"])
    other = helper.make_tensor("a_labels", TensorProto.STRING, [1], [b"dog"])
    # w moves by 10%; z by a relative change that underflows to 0 (a tiny step on a huge norm).
    before = _chain(relu, [words, _tensor([1.0], "w"), _tensor([1e300, 0.0], "z", np.float64)])
    after = _chain(relu, [other, _tensor([1.1], "w"), _tensor([1e300, 1e-310], "z", np.float64)])
    changes = diff_models(before, after)
    assert [c.name for c in changes] == ["w", "z", "a_labels"]
    assert changes[1].rel_l2 == 0.0


def test_unnamed_nodes_in_another_order_are_the_same_nodes() -> None:
    before = _chain([helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Neg", ["x"], ["b"])])
    after = _chain([helper.make_node("Neg", ["x"], ["b"]), helper.make_node("Relu", ["x"], ["a"])])
    assert diff_models(before, after) == ()


def test_a_model_that_cannot_be_read_says_why_in_its_problem(tmp_path: Path) -> None:
    path = tmp_path / "absent.onnx"
    with pytest.raises(InputError) as raised:
        load_with_weights(path)
    assert "No such file" in raised.value.problem


def test_unreadable_external_data_says_which_tensor_in_its_problem(tmp_path: Path) -> None:
    path = missing_external_data_model(tmp_path / "model.onnx", GOOD)
    with pytest.raises(InputError) as raised:
        load_with_weights(path)
    assert "tensor name: W" in raised.value.problem
