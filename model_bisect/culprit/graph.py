"""What changed between two ONNX graphs, as ranked records.

The one differ of the project: ``cache_builder`` explains fixture drift with it, and the
culprit section explains a regression with it. Nodes are matched by the tensors they produce
(names are optional in ONNX, outputs are unique), initializers by name and then by position
and shape, so a renamed weight is still compared value by value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError, first_line
from .record import ChangeKind, GraphChange

if TYPE_CHECKING:
    import numpy as np
    import onnx

__all__ = ["diff_models", "load_with_weights", "short", "summary_lines"]


def short(value: object) -> str:
    """Numbers to 7 significant digits (float32 precision); anything else as plain text."""
    if isinstance(value, float):
        return f"{value:.7g}"
    return str(value)


def _line(label: str, old: object, new: object) -> str:
    return f"{label}: {short(old) or '(empty)'} -> {short(new) or '(empty)'}"


def load_with_weights(path: Path) -> onnx.ModelProto:
    """The model with its external-data tensors read in, each location checked first (model
    files are untrusted). Raises InputError naming the file."""
    import onnx
    from onnx.external_data_helper import load_external_data_for_model

    from ..evaluation.onnxfile import (
        MAX_MODEL_BYTES,
        external_data_locations,
        parse_model,
        unsafe_location_reason,
    )
    from ..files import read_bytes_bounded

    where = str(path)
    try:
        model = parse_model(read_bytes_bounded(path, MAX_MODEL_BYTES))
    except Exception as exc:  # OSError, or protobuf's DecodeError (it has no stubs)
        raise InputError(
            f"not a readable ONNX model ({first_line(exc)})", where, "pass an .onnx file"
        ) from None
    for location in external_data_locations(model):
        reason = unsafe_location_reason(location, path.parent)
        if reason is not None:
            raise InputError(reason, where, "keep external data beside the model")
    try:
        load_external_data_for_model(model, str(path.parent))
    # onnx raises its checker's ValidationError (an Exception only) for a data file that is
    # missing or not a regular file.
    except (OSError, ValueError, onnx.checker.ValidationError) as exc:
        raise InputError(
            f"external data cannot be read ({first_line(exc)})",
            where,
            "restore the model's .data files beside it",
        ) from None
    assert isinstance(model, onnx.ModelProto)
    return model


def diff_models(before: onnx.ModelProto, after: onnx.ModelProto) -> tuple[GraphChange, ...]:
    """Every computing difference from ``before`` to ``after``, largest first: nodes, opset,
    signature and initializer shapes in graph order, then changed weights by relative L2,
    then the IR version (layout, not arithmetic)."""
    structural: list[GraphChange] = []
    if _opsets(before) != _opsets(after):
        structural.append(
            GraphChange(ChangeKind.OPSET, "opset", _line("opset", _opsets(before), _opsets(after)))
        )
    for label, old, new in (
        ("inputs", before.graph.input, after.graph.input),
        ("outputs", before.graph.output, after.graph.output),
    ):
        if _signature(old) != _signature(new):
            detail = _line(label, _signature(old), _signature(new))
            structural.append(GraphChange(ChangeKind.SIGNATURE, label, detail))
    structural += _nodes(before.graph, after.graph)
    shapes, values = _initializers(before.graph, after.graph)
    structural += shapes
    values.sort(key=lambda c: (-(c.rel_l2 or 0.0), -(c.max_abs or 0.0), c.name))
    last = []
    if before.ir_version != after.ir_version:
        detail = _line("ir_version", before.ir_version, after.ir_version)
        last.append(GraphChange(ChangeKind.IR_VERSION, "ir_version", detail))
    return (*structural, *values, *last)


def _opsets(model: onnx.ModelProto) -> str:
    return ", ".join(
        f"{entry.domain or 'ai.onnx'} {entry.version}"
        for entry in sorted(model.opset_import, key=lambda e: e.domain)
    )


def _signature(values: Sequence[onnx.ValueInfoProto]) -> str:
    parts = []
    for value in values:
        tensor = value.type.tensor_type
        dims = ",".join(d.dim_param or str(d.dim_value) for d in tensor.shape.dim)
        parts.append(f"{value.name} {_dtype_name(tensor.elem_type)}[{dims}]")
    return "; ".join(parts)


def _dtype_name(elem_type: int) -> str:
    import onnx

    try:
        return str(onnx.TensorProto.DataType.Name(elem_type)).lower()
    except ValueError:
        return f"dtype{elem_type}"


def _node_label(node: onnx.NodeProto) -> str:
    name = node.name or ",".join(node.output) or "(unnamed)"
    return f"{node.op_type} {name}"


def _match_keys(node: onnx.NodeProto) -> list[tuple[object, ...]]:
    """Keys from the strictest to the loosest: a node keeps its name, or its op and wiring,
    or its op and one side of its wiring, or at least the tensors it writes (retyped)."""
    op = (node.domain, node.op_type)
    inputs, outputs = tuple(node.input), tuple(node.output)
    return [
        ("name", node.name) if node.name else ("unnamed", id(node)),
        (op, inputs, outputs),
        (op, "out", outputs),
        (op, "in", inputs),
        ("out", outputs),
    ]


def _match_nodes(
    old: Sequence[onnx.NodeProto], new: Sequence[onnx.NodeProto]
) -> tuple[list[tuple[onnx.NodeProto, onnx.NodeProto]], list[int], list[int]]:
    """Pairs of (old, new) nodes, then the unmatched old and new positions."""
    left, right = set(range(len(old))), set(range(len(new)))
    pairs = []
    for level in range(5):
        index: dict[tuple[object, ...], list[int]] = {}
        for j in sorted(right):
            index.setdefault(_match_keys(new[j])[level], []).append(j)
        for i in sorted(left):
            candidates = index.get(_match_keys(old[i])[level])
            if candidates:
                j = candidates.pop(0)
                pairs.append((old[i], new[j]))
                left.discard(i)
                right.discard(j)
    return pairs, sorted(left), sorted(right)


def _nodes(old: onnx.GraphProto, new: onnx.GraphProto) -> list[GraphChange]:
    pairs, removed, added = _match_nodes(list(old.node), list(new.node))
    changes: list[GraphChange] = []
    for j in added:
        node = new.node[j]
        label = _node_label(node)
        detail = f"node added: {label} ({', '.join(node.input)} -> {', '.join(node.output)})"
        changes.append(GraphChange(ChangeKind.NODE_ADDED, label, detail))
    for i in removed:
        label = _node_label(old.node[i])
        changes.append(GraphChange(ChangeKind.NODE_REMOVED, label, f"node removed: {label}"))
    for was, node in pairs:
        label = _node_label(node)
        if (was.domain, was.op_type) != (node.domain, node.op_type):
            detail = _line(
                f"node {label} op", f"{was.domain}:{was.op_type}", f"{node.domain}:{node.op_type}"
            )
            changes.append(GraphChange(ChangeKind.NODE_RETYPED, label, detail))
        for side, a, b in (("inputs", was.input, node.input), ("outputs", was.output, node.output)):
            if list(a) != list(b):
                detail = _line(f"node {label} {side}", ",".join(a), ",".join(b))
                changes.append(GraphChange(ChangeKind.NODE_WIRING, label, detail))
        changes += _attributes(label, was, node)
    return changes


def _attributes(label: str, old: onnx.NodeProto, new: onnx.NodeProto) -> list[GraphChange]:
    import onnx

    def values(node: onnx.NodeProto) -> dict[str, tuple[bytes, str]]:
        found = {}
        for a in node.attribute:
            try:
                shown = short(onnx.helper.get_attribute_value(a))
            except Exception:  # an attribute of a kind helper cannot read
                shown = "(unreadable)"
            found[a.name] = (a.SerializeToString(deterministic=True), shown[:80])
        return found

    a, b = values(old), values(new)
    changes = []
    for name in sorted(set(a) | set(b)):
        if a.get(name, (b"", ""))[0] != b.get(name, (b"", ""))[0]:
            detail = _line(
                f"node {label} attribute {name}",
                a.get(name, (b"", "(absent)"))[1],
                b.get(name, (b"", "(absent)"))[1],
            )
            changes.append(GraphChange(ChangeKind.ATTRIBUTE, f"{label}.{name}", detail))
    return changes


def _array(tensor: onnx.TensorProto) -> np.ndarray | None:
    from onnx import numpy_helper

    try:
        return numpy_helper.to_array(tensor)
    except Exception:  # external data not loaded, an unknown dtype
        return None


def _shape_of(tensor: onnx.TensorProto) -> tuple[int, tuple[int, ...]]:
    return tensor.data_type, tuple(int(d) for d in tensor.dims)


_Tensors = list["onnx.TensorProto"]


def _pairs(
    old: Sequence[onnx.TensorProto], new: Sequence[onnx.TensorProto]
) -> tuple[list[tuple[onnx.TensorProto, onnx.TensorProto]], _Tensors, _Tensors]:
    """Matched by name; the rest by position among the unmatched when dtype and shape agree
    (an exporter that renames ``onnx::MatMul_12`` to ``onnx::MatMul_15``)."""
    names_new = {t.name for t in new}
    names_old = {t.name for t in old}
    by_name = {t.name: t for t in new}
    pairs = [(t, by_name[t.name]) for t in old if t.name in names_new]
    rest_old = [t for t in old if t.name not in names_new]
    rest_new = [t for t in new if t.name not in names_old]
    removed, added = [], []
    for i in range(max(len(rest_old), len(rest_new))):
        a = rest_old[i] if i < len(rest_old) else None
        b = rest_new[i] if i < len(rest_new) else None
        if a is not None and b is not None and _shape_of(a) == _shape_of(b):
            pairs.append((a, b))
            continue
        if a is not None:
            removed.append(a)
        if b is not None:
            added.append(b)
    return pairs, removed, added


def _initializers(
    old: onnx.GraphProto, new: onnx.GraphProto
) -> tuple[list[GraphChange], list[GraphChange]]:
    pairs, removed, added = _pairs(list(old.initializer), list(new.initializer))
    structural = [
        GraphChange(
            ChangeKind.INITIALIZER_ADDED, t.name, f"initializer {t.name}: added {_describe(t)}"
        )
        for t in added
    ]
    structural += [
        GraphChange(
            ChangeKind.INITIALIZER_REMOVED,
            t.name,
            f"initializer {t.name}: removed {_describe(t)}",
        )
        for t in removed
    ]
    values: list[GraphChange] = []
    for a, b in pairs:
        name = b.name if a.name == b.name else f"{b.name} (was {a.name})"
        x, y = _array(a), _array(b)
        if x is None or y is None:
            if a.SerializeToString() != b.SerializeToString():
                detail = f"initializer {name}: differs (not readable as an array)"
                values.append(GraphChange(ChangeKind.INITIALIZER_VALUES, name, detail))
        elif x.dtype != y.dtype or x.shape != y.shape:
            detail = f"initializer {name}: {x.dtype}{list(x.shape)} -> {y.dtype}{list(y.shape)}"
            structural.append(GraphChange(ChangeKind.INITIALIZER_SHAPE, name, detail))
        else:
            change = _values(name, x, y)
            if change is not None:
                values.append(change)
    return structural, values


def _describe(tensor: onnx.TensorProto) -> str:
    dims = ",".join(str(d) for d in tensor.dims)
    return f"{_dtype_name(tensor.data_type)}[{dims}]"


def _values(name: str, old: np.ndarray, new: np.ndarray) -> GraphChange | None:
    import numpy as np

    flat_old, flat_new = old.reshape(-1), new.reshape(-1)
    if flat_old.dtype.kind not in "biuf":  # strings, bools: equal or not
        if np.array_equal(flat_old, flat_new):
            return None
        detail = f"initializer {name}: values differ"
        return GraphChange(ChangeKind.INITIALIZER_VALUES, name, detail)
    equal = (flat_old == flat_new) | (np.isnan(flat_old) & np.isnan(flat_new))
    if equal.all():
        return None
    changed = np.flatnonzero(~equal)
    a, b = flat_old.astype(np.float64), flat_new.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        gaps = np.abs(a[changed] - b[changed])
        worst = int(changed[int(np.argmax(np.where(np.isnan(gaps), np.inf, gaps)))])
        max_abs = float(np.nanmax(np.where(np.isnan(gaps), np.inf, gaps)))
        scale = float(np.linalg.norm(a))
        change = float(np.linalg.norm(b - a))
        rel_l2 = change / scale if scale > 0 else float("inf")
        gap = float(abs(a[worst] - b[worst]))  # inf past the float64 range, quietly
    where = f"[{worst}]" if old.ndim else ""
    detail = (
        f"initializer {name}: {changed.size} of {flat_old.size} values changed, largest change "
        f"at {name}{where} {short(float(a[worst]))} -> {short(float(b[worst]))} "
        f"(absolute difference {short(gap)}), "
        f"relative L2 change {short(rel_l2)}"
    )
    return GraphChange(ChangeKind.INITIALIZER_VALUES, name, detail, max_abs, rel_l2)


def summary_lines(changes: Iterable[GraphChange], limit: int = 3) -> list[str]:
    """The first ``limit`` changes as lines, with a count of the rest."""
    shown = list(changes)
    lines = [c.detail for c in shown[:limit]]
    if len(shown) > limit:
        lines.append(f"... and {len(shown) - limit} more")
    return lines
