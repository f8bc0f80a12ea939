"""What an ONNX file says about the files beside it: its external-data locations, and
whether each is safe to open.

Model files are untrusted, so a location is checked before anything opens it. The timeline
needs this to hash a model with its weights, the evaluator before ONNX Runtime loads it;
neither needs ONNX Runtime for it, so this module imports only ``onnx`` (lazily).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING

from ..files import read_bytes_bounded
from ..safetext import unicode_safe

if TYPE_CHECKING:
    import onnx

__all__ = [
    "MAX_MODEL_BYTES",
    "external_data_locations",
    "names_no_external_data",
    "parse_model",
    "unsafe_location_reason",
]

# protobuf cannot parse a message of 2 GiB or more, so a larger .onnx file is no model (big
# weights live in external-data files, which are never read whole by us).
MAX_MODEL_BYTES = (2 << 30) - 1

# Common file-system limits (PATH_MAX, NAME_MAX): a longer location cannot name a real file,
# and asking the OS about it raises instead of answering.
_MAX_LOCATION_BYTES = 4096
_MAX_NAME_BYTES = 255


def parse_model(data: bytes) -> onnx.ModelProto:
    """The model graph from a file's bytes; external data stays unopened."""
    import onnx

    return onnx.load_model_from_string(data)


def names_no_external_data(data: bytes) -> bool:
    """True when the bytes cannot name external data, so parsing them can be skipped.

    A tensor names its external file in a key/value entry whose key is the string
    "location"; protobuf stores strings as their plain bytes, so a file without the bytes
    b"location" has no such entry. (The converse does not hold: a doc string may say
    "location". Such files are parsed.) Parsing costs the import of onnx and a pass over
    every weight; most models are self-contained.
    """
    return b"location" not in data


def external_data_locations(model: Path | bytes | onnx.ModelProto) -> list[str]:
    """The distinct external-data ``location`` strings a model's tensors name, unchecked
    (the model file only is parsed, and only when its bytes could name one; no external
    data is opened). Raises what protobuf raises for bytes that it must parse and cannot."""
    if isinstance(model, Path):
        model = read_bytes_bounded(model, MAX_MODEL_BYTES)
    if isinstance(model, bytes):
        if names_no_external_data(model):
            return []
        model = parse_model(model)
    import onnx

    tensors = [*_tensors(model.graph)]
    for function in model.functions:
        for node in function.node:
            tensors.extend(_node_tensors(node))
    locations = []
    for tensor in tensors:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entries = {e.key: e.value for e in tensor.external_data}
            location: str | bytes = entries.get("location", "")
            if isinstance(location, bytes):  # protobuf's answer for a string that is not UTF-8
                location = location.decode("utf-8", "surrogateescape")
            locations.append(location)
    return list(dict.fromkeys(locations))


def unsafe_location_reason(location: str, folder: Path) -> str | None:
    """Why an external-data location must not be opened, or None when it stays in ``folder``.

    Absolute paths and ``..`` are refused on sight (in either separator style, since a model
    may come from another platform); anything else must still resolve, symlinks followed,
    inside the model's folder.
    """
    if not location:
        return "unsafe external-data location '' (empty)"
    shown = unicode_safe(repr(location[:80] + ("..." if len(location) > 80 else "")))
    if "\0" in location:
        return f"unsafe external-data location {shown}: holds a NUL byte"
    try:
        location.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes, carried as lone surrogates
        return f"unsafe external-data location {shown}: not valid UTF-8"
    encoded = location.encode("utf-8", "surrogateescape")
    if len(encoded) > _MAX_LOCATION_BYTES or any(
        len(part.encode("utf-8", "surrogateescape")) > _MAX_NAME_BYTES
        for part in PureWindowsPath(location).parts
    ):
        return f"unsafe external-data location {shown}: name too long"
    if (
        PurePosixPath(location).is_absolute()
        or PureWindowsPath(location).is_absolute()
        or PureWindowsPath(location).drive
        or location.startswith(("/", "\\"))
    ):
        return f"unsafe external-data location {location!r}: absolute path"
    if ".." in PureWindowsPath(location).parts:  # splits on both / and \
        return f"unsafe external-data location {location!r}: leaves the model's folder via '..'"
    try:
        base = os.path.realpath(folder)
        resolved = os.path.realpath(os.path.join(base, location))
    except (OSError, ValueError) as exc:
        problem = exc.__class__.__name__
        return f"unsafe external-data location {shown}: cannot be resolved ({problem})"
    if os.path.commonpath([base, resolved]) != base:
        return f"unsafe external-data location {location!r}: resolves outside the model's folder"
    return None


def _tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: onnx.NodeProto) -> Iterator[onnx.TensorProto]:
    for attribute in node.attribute:
        if attribute.HasField("t"):
            yield attribute.t
        yield from attribute.tensors
        if attribute.HasField("sparse_tensor"):
            yield attribute.sparse_tensor.values
            yield attribute.sparse_tensor.indices
        for sparse in attribute.sparse_tensors:
            yield sparse.values
            yield sparse.indices
        if attribute.HasField("g"):
            yield from _tensors(attribute.g)
        for graph in attribute.graphs:
            yield from _tensors(graph)
