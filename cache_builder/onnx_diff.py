"""Explain how two ONNX models differ: producer fields, IR and opset, signature, weights, nodes."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from .difference import Difference, short

__all__ = ["compare_onnx"]

# Looked up at run time: protobuf ships no type stubs, and this is the one name needed.
_DecodeError: type[Exception] = importlib.import_module("google.protobuf.message").DecodeError

# Fields no runtime reads when it computes a score: differences there are metadata only.
_MODEL_METADATA = ("producer_name", "producer_version", "domain", "model_version", "doc_string")


def compare_onnx(old: Path, new: Path) -> Difference:
    """``old`` is the committed model, ``new`` the regenerated one."""
    try:
        before = onnx.ModelProto.FromString(old.read_bytes())
    except (_DecodeError, ValueError) as exc:
        return Difference(content=(f"committed file is not a readable ONNX model ({exc})",))
    after = onnx.ModelProto.FromString(new.read_bytes())

    metadata = [
        _line(name, getattr(before, name), getattr(after, name)) for name in _MODEL_METADATA
    ]
    metadata.append(_line("metadata_props", _props(before), _props(after)))
    metadata.append(_line("graph name", before.graph.name, after.graph.name))
    metadata.append(_line("graph doc_string", before.graph.doc_string, after.graph.doc_string))
    # The IR version says how the file is laid out, not what it computes: the same graph and
    # weights score the same (a runtime too old for the IR refuses to load it instead).
    metadata.append(_line("ir_version", before.ir_version, after.ir_version))
    content = [
        _line("opset", _opsets(before), _opsets(after)),
        _line("inputs", _signature(before.graph.input), _signature(after.graph.input)),
        _line("outputs", _signature(before.graph.output), _signature(after.graph.output)),
    ]
    content += _initializers(before.graph, after.graph)
    node_metadata, node_content = _nodes(before.graph, after.graph)
    metadata += node_metadata
    content += node_content

    metadata_lines = tuple(line for line in metadata if line)
    content_lines = tuple(line for line in content if line)
    if _normalised(before) != _normalised(after):
        if not content_lines:
            content_lines = ("graph differs in fields not itemised here (value_info, functions…)",)
    elif not metadata_lines and not content_lines:
        metadata_lines = ("bytes differ, fields equal: serialisation order or tensor encoding",)
    return Difference(metadata=metadata_lines, content=content_lines)


def _line(label: str, old: object, new: object) -> str:
    return "" if old == new else f"{label}: {short(old) or '(empty)'} -> {short(new) or '(empty)'}"


def _props(model: onnx.ModelProto) -> str:
    return ", ".join(f"{p.key}={p.value}" for p in model.metadata_props)


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
        kind = _dtype_name(tensor.elem_type)
        parts.append(f"{value.name} {kind}[{dims}]")
    return "; ".join(parts)


def _dtype_name(elem_type: int) -> str:
    try:
        return str(onnx.TensorProto.DataType.Name(elem_type)).lower()
    except ValueError:
        return f"dtype{elem_type}"


def _array(tensor: onnx.TensorProto) -> np.ndarray | None:
    try:
        return numpy_helper.to_array(tensor)
    except (ValueError, TypeError, KeyError):  # external data, unknown dtype
        return None


def _initializers(old: onnx.GraphProto, new: onnx.GraphProto) -> list[str]:
    before = {t.name: t for t in old.initializer}
    after = {t.name: t for t in new.initializer}
    lines = [
        f"initializer {name}: only in the regenerated model" for name in after if name not in before
    ]
    lines += [
        f"initializer {name}: only in the committed model" for name in before if name not in after
    ]
    for name in (n for n in after if n in before):
        a, b = _array(before[name]), _array(after[name])
        if a is None or b is None:
            if before[name].SerializeToString() != after[name].SerializeToString():
                lines.append(f"initializer {name}: differs (not readable as an array)")
        elif a.dtype != b.dtype or a.shape != b.shape:
            lines.append(
                f"initializer {name}: {a.dtype}{list(a.shape)} -> {b.dtype}{list(b.shape)}"
            )
        else:
            lines += _values(name, a, b)
    return lines


def _values(name: str, old: np.ndarray, new: np.ndarray) -> list[str]:
    flat_old, flat_new = old.reshape(-1), new.reshape(-1)
    equal = (flat_old == flat_new) | (np.isnan(flat_old) & np.isnan(flat_new))
    if equal.all():
        return []
    changed = np.flatnonzero(~equal)
    with np.errstate(invalid="ignore", over="ignore"):
        gaps = np.abs(flat_old[changed].astype(np.float64) - flat_new[changed].astype(np.float64))
    worst = int(changed[int(np.argmax(np.where(np.isnan(gaps), np.inf, gaps)))])
    where = f"[{worst}]" if old.ndim else ""
    return [
        f"initializer {name}: {changed.size} of {flat_old.size} values changed, largest change at "
        f"{name}{where} {short(float(flat_old[worst]))} -> {short(float(flat_new[worst]))} "
        f"(absolute difference {short(float(abs(flat_old[worst] - flat_new[worst])))})"
    ]


def _nodes(old: onnx.GraphProto, new: onnx.GraphProto) -> tuple[list[str], list[str]]:
    metadata: list[str] = []
    content = [_line("node count", len(old.node), len(new.node))]
    for index, (a, b) in enumerate(zip(old.node, new.node, strict=False)):
        label = f"node {index} ({b.op_type})"
        content.append(_line(f"{label} op", f"{a.domain}:{a.op_type}", f"{b.domain}:{b.op_type}"))
        content.append(_line(f"{label} inputs", ",".join(a.input), ",".join(b.input)))
        content.append(_line(f"{label} outputs", ",".join(a.output), ",".join(b.output)))
        if _attributes(a) != _attributes(b):
            content.append(f"{label}: attributes differ")
        metadata.append(_line(f"{label} name", a.name, b.name))
    return metadata, content


def _attributes(node: onnx.NodeProto) -> list[bytes]:
    return [a.SerializeToString(deterministic=True) for a in node.attribute]


def _normalised(model: onnx.ModelProto) -> bytes:
    """The model with every metadata field blanked and tensors in one encoding."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for name in _MODEL_METADATA:
        copy.ClearField(name)
    copy.ClearField("ir_version")
    copy.ClearField("metadata_props")
    copy.graph.ClearField("name")
    copy.graph.ClearField("doc_string")
    for node in copy.graph.node:
        node.ClearField("name")
        node.ClearField("doc_string")
    for tensor in copy.graph.initializer:
        array = _array(tensor)
        if array is not None:
            tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))
    return bytes(copy.SerializeToString(deterministic=True))
