"""Tiny real ONNX models and parquet feature caches for the tests.

Every model here is built with ``onnx.helper`` and is meant to be run by ONNX Runtime; every
feature file is a real parquet written by pyarrow. The awkward shapes mimic what people ship:
external-data weights, ``[N, 1]`` outputs, sidecar JSON feature lists, int8 quantization, extra
inputs, codec-aware two-input regressors with published-format sidecars, and model files that
are broken or hostile.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import pyarrow as pa
import pyarrow.parquet as pq
from onnx import TensorProto, helper, numpy_helper

from model_bisect.evaluation.features import CANONICAL_FEATURES, TARGET_COLUMN

__all__ = [
    "CODEC_BLOCK_WEIGHTS",
    "CODEC_ENCODERS",
    "CODEC_FEATURE_WEIGHTS",
    "CODEC_LAYOUT",
    "IR_VERSION",
    "bad_weights",
    "baked_scaler_model",
    "codec_features_parquet",
    "codec_regressor",
    "default_weights",
    "features_parquet",
    "invalid_model",
    "linear_model",
    "linear_proto",
    "missing_external_data_model",
    "nan_model",
    "published_sidecar",
    "quantized_model",
    "save_with_external_weights",
    "second_input_model",
    "sidecar_json",
    "timeline_dir",
    "unsafe_external_data_model",
]

# Opset 17 belongs to IR version 8; pinning it keeps the models loadable by older runtimes too.
IR_VERSION = 8


def default_weights(n_features: int) -> list[float]:
    """The "good" weights used when a test does not pass its own: all positive, all different."""
    return [float(w) for w in np.linspace(1.0, 0.4, n_features)]


def linear_proto(
    weights: Sequence[float],
    bias: float = 0.0,
    *,
    input_name: str = "input",
    output_name: str = "score",
    output_shape: Literal["N", "N1"] = "N",
    opset: int = 17,
    extra_input: str | None = None,
) -> onnx.ModelProto:
    """``score = input @ W + bias``; ``extra_input`` adds a second required input (a gain)."""
    n = len(weights)
    if output_shape == "N":
        w = np.asarray(weights, dtype=np.float32)  # [F] -> MatMul gives [N]
        out_dims: list[str | int] = ["N"]
    else:
        w = np.asarray(weights, dtype=np.float32).reshape(n, 1)  # [F, 1] -> [N, 1]
        out_dims = ["N", 1]
    inits = [
        numpy_helper.from_array(w, "W"),
        numpy_helper.from_array(np.asarray(bias, dtype=np.float32), "B"),
    ]
    last = "added" if extra_input else output_name
    nodes = [
        helper.make_node("MatMul", [input_name, "W"], ["mm"]),
        helper.make_node("Add", ["mm", "B"], [last]),
    ]
    inputs = [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", n])]
    if extra_input:
        nodes.append(helper.make_node("Mul", [last, extra_input], [output_name]))
        inputs.append(helper.make_tensor_value_info(extra_input, TensorProto.FLOAT, [1]))
    graph = helper.make_graph(
        nodes,
        "linear",
        inputs,
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, out_dims)],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="modelkit"
    )
    model.ir_version = IR_VERSION
    return model


def _save(model: onnx.ModelProto, path: Path, external_data: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if external_data:
        # onnx appends to an existing data file (offsets grow): start each save afresh.
        path.with_name(path.name + ".data").unlink(missing_ok=True)
        onnx.save_model(
            model,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=path.name + ".data",
            size_threshold=0,
        )
    else:
        onnx.save_model(model, str(path))
    return path


def linear_model(
    path: Path,
    weights: Sequence[float],
    bias: float = 0.0,
    *,
    input_name: str = "input",
    output_name: str = "score",
    output_shape: Literal["N", "N1"] = "N",
    opset: int = 17,
    external_data: bool = False,
) -> Path:
    """A MatMul + Add model with input float ``[N, len(weights)]``; weights go to
    ``<name>.data`` beside it when ``external_data``."""
    model = linear_proto(
        weights,
        bias,
        input_name=input_name,
        output_name=output_name,
        output_shape=output_shape,
        opset=opset,
    )
    return _save(model, path, external_data)


def features_parquet(
    path: Path,
    rows: int = 256,
    *,
    seed: int = 0,
    columns: Sequence[str] = CANONICAL_FEATURES,
    target: str = TARGET_COLUMN,
    noise: float = 0.01,
    weights: Sequence[float] | None = None,
) -> tuple[Path, np.ndarray]:
    """Independent uniform float32 features and ``target = features @ weights + noise``.

    Equal-variance independent columns make the PLCC of another weight vector close to its
    cosine with the good one, which is what lets ``bad_weights`` promise a failing gate.
    Returns the path and the good weights (float64).
    """
    rng = np.random.default_rng(seed)
    good = np.asarray(
        default_weights(len(columns)) if weights is None else weights, dtype=np.float64
    )
    x = rng.uniform(0.0, 1.0, size=(rows, len(columns))).astype(np.float32)
    y = x.astype(np.float64) @ good + rng.normal(0.0, noise, size=rows)
    table = pa.table(
        {**{name: x[:, i] for i, name in enumerate(columns)}, target: y.astype(np.float64)}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path, good


def bad_weights(n_features: int, seed: int, *, good: Sequence[float] | None = None) -> list[float]:
    """Random weights pointing away from ``good`` (default: ``default_weights``), so their
    predictions correlate negatively with the target of ``features_parquet``."""
    rng = np.random.default_rng(10_000 + seed)
    g = np.asarray(default_weights(n_features) if good is None else good, dtype=np.float64)
    unit = g / np.linalg.norm(g)
    w = rng.normal(size=n_features)
    w -= (w @ unit) * unit  # orthogonal to the good direction...
    w -= 0.5 * np.linalg.norm(w) * unit  # ...then tilted against it
    return [float(v) for v in w]


def timeline_dir(
    folder: Path,
    n: int,
    first_bad: int | None,
    *,
    weights: Sequence[float],
    seed: int = 0,
    external_data: bool = False,
) -> list[Path]:
    """``model_00.onnx`` ... : small perturbations of ``weights`` before ``first_bad``, weights
    from ``bad_weights`` from it on (none bad when ``first_bad`` is None)."""
    rng = np.random.default_rng(seed)
    good = np.asarray(weights, dtype=np.float64)
    paths = []
    for i in range(n):
        if first_bad is not None and i >= first_bad:
            w = bad_weights(len(good), seed * 1000 + i, good=weights)
        else:
            w = [float(v) for v in good + rng.normal(0.0, 0.01, size=len(good))]
        paths.append(linear_model(folder / f"model_{i:02d}.onnx", w, external_data=external_data))
    return paths


def sidecar_json(model_path: Path, features: Sequence[str] | object) -> Path:
    """``<stem>.json`` beside the model, as VMAF's tiny models ship it; ``features`` is written
    as given, so tests can also write malformed lists."""
    path = model_path.with_suffix(".json")
    path.write_text(json.dumps({"features": features, "note": "modelkit"}), encoding="utf-8")
    return path


def quantized_model(
    path: Path,
    weights: Sequence[float],
    bias: float = 0.0,
    *,
    mode: Literal["dynamic", "static"] = "dynamic",
    calibration: np.ndarray | None = None,
) -> Path:
    """An int8 model made by onnxruntime's own quantization tools from the float linear model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    float_path = path.with_name(path.stem + ".float.onnx")
    # [N, 1] weights: the quantizers handle 2-D MatMul weights.
    linear_model(float_path, weights, bias, output_shape="N1")
    # The quantizers log "consider pre-processing" on the root logger; not news for a 1-node model.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        _quantize(float_path, path, weights, mode, calibration)
    finally:
        root.setLevel(level)
        float_path.unlink()
    return path


def _quantize(
    float_path: Path,
    path: Path,
    weights: Sequence[float],
    mode: Literal["dynamic", "static"],
    calibration: np.ndarray | None,
) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    if mode == "dynamic":
        quantize_dynamic(str(float_path), str(path), weight_type=QuantType.QInt8)
    else:
        data = calibration
        if data is None:
            data = np.random.default_rng(0).uniform(0, 1, (64, len(weights))).astype(np.float32)

        class _Reader(CalibrationDataReader):  # type: ignore[misc]
            def __init__(self) -> None:
                self._batches = iter([{"input": data[i : i + 16]} for i in range(0, len(data), 16)])

            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(self._batches, None)

        quantize_static(
            str(float_path),
            str(path),
            _Reader(),
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
        )


def second_input_model(path: Path, weights: Sequence[float], *, extra_input: str = "gain") -> Path:
    """A model that also needs ``extra_input`` (float ``[1]``), which no feature cache feeds."""
    return _save(linear_proto(weights, extra_input=extra_input), path, False)


def nan_model(path: Path, n_features: int = len(CANONICAL_FEATURES)) -> Path:
    """Runs fine but predicts NaN for every row (a NaN bias)."""
    return linear_model(path, default_weights(n_features), bias=float("nan"))


def invalid_model(path: Path, data: bytes = b"this is not an ONNX model\n") -> Path:
    """A file named ``.onnx`` whose bytes are not a model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def missing_external_data_model(path: Path, weights: Sequence[float]) -> Path:
    """An external-data model whose ``.data`` file was not shipped."""
    linear_model(path, weights, external_data=True)
    path.with_name(path.name + ".data").unlink()
    return path


def unsafe_external_data_model(
    path: Path,
    weights: Sequence[float],
    kind: Literal["parent", "absolute", "symlink"],
    *,
    outside: Path,
) -> Path:
    """A model whose weights live outside its folder; the data really exists at ``outside``
    (a file path outside the model's folder), so only a safety check stops it loading.

    ``parent`` writes a ``../``-relative location, ``absolute`` an absolute one, ``symlink`` a
    plain name that is a symlink in the model's folder pointing to ``outside``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    outside.parent.mkdir(parents=True, exist_ok=True)
    model = linear_proto(weights)
    outside.write_bytes(_weights_w(model)[1])
    if kind == "parent":
        location = os.path.relpath(outside, path.parent)
        assert ".." in Path(location).parts, "outside must be outside the model's folder"
    elif kind == "absolute":
        location = str(outside.resolve())
    else:
        location = path.name + ".data"
        (path.parent / location).symlink_to(outside.resolve())
    return save_with_external_weights(path, model, location)


def _weights_w(model: onnx.ModelProto) -> tuple[onnx.TensorProto, bytes]:
    """The linear model's weight tensor W and its float32 bytes."""
    w = next(t for t in model.graph.initializer if t.name == "W")
    return w, numpy_helper.to_array(w).astype(np.float32).tobytes()


def save_with_external_weights(path: Path, model: onnx.ModelProto, location: str) -> Path:
    """Save a linear model whose weights W are declared to live at ``location``, written
    verbatim into the protobuf (a path outside the folder, NUL bytes, anything); no data file
    is written."""
    w, raw = _weights_w(model)
    w.ClearField("raw_data")
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(len(raw)))):
        entry = w.external_data.add()
        entry.key = key
        entry.value = value
    path.write_bytes(model.SerializeToString())
    return path


# --- codec-aware regressors: a [N, 6] features input plus a [N, K] codec block -----------------

# The encoders a codec block one-hot encodes, in layout order; anything else is "unknown".
CODEC_ENCODERS: tuple[str, ...] = (
    "libx264",
    "libx265",
    "libvpx-vp9",
    "libaom-av1",
    "libsvtav1",
    "h264_nvenc",
    "hevc_nvenc",
    "h264_qsv",
    "hevc_qsv",
    "av1_qsv",
    "vvenc",
)
# 11 encoders + the unknown slot + two numeric entries: a [N, 14] block.
CODEC_LAYOUT: tuple[str, ...] = (
    *(f"encoder_onehot[{name}]" for name in CODEC_ENCODERS),
    "encoder_onehot[unknown]",
    "preset_norm",
    "crf_norm",
)
# The quality model behind the synthetic target: weights on the *standardised* features...
CODEC_FEATURE_WEIGHTS: tuple[float, ...] = (0.9, 0.5, 0.35, 0.25, 0.15, -0.3)
# ...and on the codec block (one offset per encoder, unknown, preset_norm, crf_norm).
CODEC_BLOCK_WEIGHTS: tuple[float, ...] = (
    *(float(v) for v in np.linspace(-0.6, 0.6, len(CODEC_ENCODERS))),
    -0.2,
    0.3,
    -0.8,
)
# Raw feature ranges of VMAF-like features: on very different scales, so standardising matters.
_RAW_RANGES = ((0.7, 1.0), (0.2, 0.9), (0.4, 0.95), (0.5, 0.97), (0.6, 0.98), (0.0, 25.0))


def codec_features_parquet(
    path: Path,
    rows: int = 400,
    *,
    seed: int = 0,
    encoders: Sequence[str] = CODEC_ENCODERS,
    with_encoder: bool = True,
    row_group_size: int | None = None,
) -> tuple[Path, list[float], list[float]]:
    """The canonical six on their raw scales, a string ``encoder`` column drawn from
    ``encoders`` (values outside CODEC_ENCODERS land in the unknown slot of the truth), and
    ``preset_norm``, ``crf_norm``; ``mos`` follows the standardised features and the codec
    block. Returns the path and the scaler a trainer would publish (mean, std per feature,
    rounded to 6 decimals as a JSON sidecar holds them)."""
    rng = np.random.default_rng(seed)
    raw = np.column_stack([rng.uniform(lo, hi, size=rows) for lo, hi in _RAW_RANGES]).astype(
        np.float32
    )
    mean = [round(float(v), 6) for v in raw.mean(axis=0)]
    std = [round(float(v), 6) for v in raw.std(axis=0)]
    names = [str(v) for v in rng.choice(np.asarray(list(encoders), dtype=object), size=rows)]
    preset = rng.uniform(0.0, 1.0, size=rows).astype(np.float32)
    crf = rng.uniform(0.0, 1.0, size=rows).astype(np.float32)
    block = np.zeros((rows, len(CODEC_LAYOUT)), dtype=np.float64)
    for i, name in enumerate(names):
        slot = CODEC_ENCODERS.index(name) if name in CODEC_ENCODERS else len(CODEC_ENCODERS)
        block[i, slot] = 1.0
    block[:, -2] = preset
    block[:, -1] = crf
    standard = (raw.astype(np.float64) - np.asarray(mean)) / np.asarray(std)
    truth = standard @ np.asarray(CODEC_FEATURE_WEIGHTS) + block @ np.asarray(CODEC_BLOCK_WEIGHTS)
    target = 3.0 + truth + rng.normal(0.0, 0.05, size=rows)
    columns: dict[str, Any] = {name: raw[:, i] for i, name in enumerate(CANONICAL_FEATURES)}
    if with_encoder:
        columns["encoder"] = pa.array(names, type=pa.string())
    columns |= {"preset_norm": preset, "crf_norm": crf, TARGET_COLUMN: target}
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path, mean, std


_ELEM = {
    "float": (TensorProto.FLOAT, np.float32),
    "double": (TensorProto.DOUBLE, np.float64),
}


def codec_regressor(
    path: Path,
    *,
    feature_weights: Sequence[float] = CODEC_FEATURE_WEIGHTS,
    block_weights: Sequence[float] = CODEC_BLOCK_WEIGHTS,
    input_names: tuple[str, str] = ("features", "codec"),
    elem_type: Literal["float", "double"] = "float",
    hidden: int = 4,
    bias: float = 3.0,
) -> Path:
    """A small MLP over two inputs, ``features [N, 6]`` and a codec block ``[N, K]``:
    ``relu(features @ Wf + block @ Wb + b1) @ w2 + bias``. The hidden layer's bias keeps the
    ReLU active on standardised inputs, so the model is ``feature_weights`` and
    ``block_weights`` in effect (fed correctly, it predicts the target of
    ``codec_features_parquet``)."""
    code, dtype = _ELEM[elem_type]
    scales = np.linspace(0.5, 1.5, hidden)
    head = scales / (scales @ scales)  # Wf @ head == feature_weights
    wf = np.outer(np.asarray(feature_weights), scales).astype(dtype)
    wb = np.outer(np.asarray(block_weights), scales).astype(dtype)
    b1 = np.full(hidden, 20.0, dtype=dtype)
    offset = bias - 20.0 * float(head.sum())
    inits = [
        numpy_helper.from_array(wf, "Wf"),
        numpy_helper.from_array(wb, "Wb"),
        numpy_helper.from_array(b1, "b1"),
        numpy_helper.from_array(head.astype(dtype), "w2"),
        numpy_helper.from_array(np.asarray(offset, dtype=dtype), "b2"),
    ]
    first, second = input_names
    nodes = [
        helper.make_node("MatMul", [first, "Wf"], ["hf"]),
        helper.make_node("MatMul", [second, "Wb"], ["hb"]),
        helper.make_node("Add", ["hf", "hb"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h"]),
        helper.make_node("MatMul", ["h", "w2"], ["s0"]),
        helper.make_node("Add", ["s0", "b2"], ["score"]),
    ]
    graph = helper.make_graph(
        nodes,
        "codec_regressor",
        [
            helper.make_tensor_value_info(first, code, ["N", len(feature_weights)]),
            helper.make_tensor_value_info(second, code, ["N", len(block_weights)]),
        ],
        [helper.make_tensor_value_info("score", code, ["N"])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="modelkit"
    )
    model.ir_version = IR_VERSION
    return _save(model, path, False)


def baked_scaler_model(
    path: Path, weights: Sequence[float], mean: Sequence[float], std: Sequence[float]
) -> Path:
    """A single-input model that standardises inside the graph (``(x - mean) / std`` as Sub
    and Div nodes) before its MatMul, as the tiny VMAF models v2..v4 do."""
    inits = [
        numpy_helper.from_array(np.asarray(mean, dtype=np.float32), "mean"),
        numpy_helper.from_array(np.asarray(std, dtype=np.float32), "std"),
        numpy_helper.from_array(np.asarray(weights, dtype=np.float32), "W"),
    ]
    nodes = [
        helper.make_node("Sub", ["input", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["scaled"]),
        helper.make_node("MatMul", ["scaled", "W"], ["score"]),
    ]
    graph = helper.make_graph(
        nodes,
        "baked_scaler",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", len(weights)])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="modelkit"
    )
    model.ir_version = IR_VERSION
    return _save(model, path, False)


def published_sidecar(model_path: Path, **keys: object) -> Path:
    """``<stem>.json`` beside the model with exactly ``keys`` (the published sidecar format:
    ``input_names``, ``feature_order``, ``feature_mean``, ``codec_block_layout``, ...)."""
    path = model_path.with_suffix(".json")
    path.write_text(json.dumps(keys, indent=2), encoding="utf-8")
    return path
