"""Deterministic bytes of the image fixture: tensor-column parquet, CNN models, timelines.

The parquet settings are the feature fixture's with two exceptions: the Arrow schema is
stored, since it is what carries the ``arrow.fixed_shape_tensor`` extension type of the tensor
columns; and dictionary encoding is on, since parquet stores uint8 as INT32 and the dictionary
of at most 256 pixel values brings 4 bytes a pixel down to about one, without a codec.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from onnx import TensorProto, helper, numpy_helper

from model_bisect.catalogue import Direction

from .fixture import Origin, OriginKind
from .images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PIXEL_SCALE,
    SIZE,
    Cnn,
    FrameSet,
    ImageFixture,
)
from .layout import FR_FRAMES_FILE, FR_TIMELINE_FILE, NR_FRAMES_FILE, NR_TIMELINE_FILE, image_model
from .writers import parquet_options, pinned_model_bytes

__all__ = [
    "cnn_onnx_bytes",
    "image_artifacts",
    "image_origin",
    "tensor_parquet_bytes",
    "tensor_table",
    "timeline_toml",
]


def tensor_table(frames: FrameSet) -> pa.Table:
    """Tensor columns first (fixed-shape tensor, channels first), then ``mos`` and strings."""
    columns: dict[str, pa.Array] = {
        name: pa.FixedShapeTensorArray.from_numpy_ndarray(np.ascontiguousarray(values))
        for name, values in frames.tensors.items()
    }
    columns["mos"] = pa.array(frames.mos, pa.float64())
    columns["clip"] = pa.array(frames.clip, pa.string())
    columns["distortion"] = pa.array(frames.distortion, pa.string())
    return pa.table(columns)


def tensor_parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(
        table, sink, **{**parquet_options(), "store_schema": True, "use_dictionary": True}
    )
    return bytes(sink.getvalue().to_pybytes())


def cnn_onnx_bytes(model: Cnn) -> bytes:
    """Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm; a full-reference model subtracts
    ``ref`` from ``dist`` first, and a batch fixed at one ends in a ``[1]`` output."""
    channels = int(model.kernels.shape[1])
    batch: int | str = model.batch or "N"
    shape = [batch, channels, SIZE, SIZE]
    nodes = []
    if model.full_reference:
        inputs = [
            helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
            for name in ("ref", "dist")
        ]
        nodes.append(helper.make_node("Sub", ["dist", "ref"], ["difference"], name="difference"))
        first = "difference"
    else:
        inputs = [helper.make_tensor_value_info("frame", TensorProto.FLOAT, shape)]
        first = "frame"
    score = "score" if model.batch == 0 else "score_2d"
    nodes += [
        helper.make_node("Conv", [first, "kernels", "kernel_bias"], ["conv"], name="conv",
                         kernel_shape=[3, 3], strides=[1, 1], pads=[0, 0, 0, 0]),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
        helper.make_node("GlobalAveragePool", ["relu"], ["pooled"], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "weights", "bias"], [score], name="head", transB=1),
    ]  # fmt: skip
    initializers = [
        numpy_helper.from_array(model.kernels.astype(np.float32), "kernels"),
        numpy_helper.from_array(model.kernel_bias.astype(np.float32), "kernel_bias"),
        numpy_helper.from_array(model.weights.astype(np.float32).reshape(1, -1), "weights"),
        numpy_helper.from_array(np.array([model.bias], dtype=np.float32), "bias"),
    ]
    if model.batch == 0:
        output = helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1])
    else:
        nodes.append(helper.make_node("Reshape", [score, "one"], ["score"], name="to_vector"))
        initializers.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "one"))
        output = helper.make_tensor_value_info("score", TensorProto.FLOAT, [1])
    graph = helper.make_graph(nodes, model.name, inputs, [output], initializer=initializers)
    return pinned_model_bytes(graph)


def timeline_toml(models: Sequence[Cnn]) -> str:
    """The timeline file of ``models``: paths relative to the fixture folder, one ``inputs``
    table per graph input (scale 1/255; ImageNet mean and std for the RGB pairs)."""
    lines = ["# Written by `python -m cache_builder regenerate --kind images`; do not edit.", ""]
    for model in models:
        lines += ["[[models]]", f'path = "{image_model(model.name)}"', f'label = "{model.name}"']
        if model.direction is Direction.LOWER_IS_BETTER:
            lines.append(f'direction = "{model.direction.value}"')
        for name in ("ref", "dist") if model.full_reference else ("frame",):
            lines += [f"[models.inputs.{name}]", f'tensor = "{name}"', f"scale = {PIXEL_SCALE!r}"]
            if model.full_reference:
                lines.append(f"mean = [{', '.join(repr(v) for v in IMAGENET_MEAN)}]")
                lines.append(f"std = [{', '.join(repr(v) for v in IMAGENET_STD)}]")
        lines.append("")
    return "\n".join(lines)


def image_origin(fixture: ImageFixture) -> Origin:
    """Rows are the no-reference frames; models count both timelines."""
    models = len(fixture.nr_models) + len(fixture.fr_models)
    return Origin(OriginKind.IMAGES, dict(fixture.seeds), fixture.nr.rows, models)


def image_artifacts(fixture: ImageFixture) -> list[tuple[str, bytes]]:
    """Every generated file of the image fixture, by relative POSIX path."""
    artifacts = [
        (NR_FRAMES_FILE, tensor_parquet_bytes(tensor_table(fixture.nr))),
        (FR_FRAMES_FILE, tensor_parquet_bytes(tensor_table(fixture.fr))),
        (NR_TIMELINE_FILE, timeline_toml(fixture.nr_models).encode("utf-8")),
        (FR_TIMELINE_FILE, timeline_toml(fixture.fr_models).encode("utf-8")),
    ]
    for model in (*fixture.nr_models, *fixture.fr_models):
        artifacts.append((image_model(model.name), cnn_onnx_bytes(model)))
    return artifacts
