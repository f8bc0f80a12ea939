"""Explain how two ONNX models differ: producer fields and node names (metadata), and what
the graph computes (content), the latter from model_bisect's one graph differ."""

from __future__ import annotations

import importlib
from pathlib import Path

import onnx
from onnx import numpy_helper

from model_bisect.culprit.graph import diff_models
from model_bisect.culprit.record import ChangeKind

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
    for index, (a, b) in enumerate(zip(before.graph.node, after.graph.node, strict=False)):
        metadata.append(_line(f"node {index} ({b.op_type}) name", a.name, b.name))
    content: list[str] = []
    for change in diff_models(before, after):
        # The IR version says how the file is laid out, not what it computes: the same graph
        # and weights score the same (a runtime too old for the IR refuses to load it instead).
        (metadata if change.kind is ChangeKind.IR_VERSION else content).append(change.detail)

    metadata_lines = tuple(line for line in metadata if line)
    content_lines = tuple(content)
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
        try:
            array = numpy_helper.to_array(tensor)
        except (ValueError, TypeError, KeyError):  # external data, unknown dtype
            continue
        tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))
    return bytes(copy.SerializeToString(deterministic=True))
