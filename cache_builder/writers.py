"""Deterministic parquet and ONNX writers, and the atomic swap of a fixture folder.

Every writer setting that can change a byte is spelled out instead of left to a default,
because defaults move between releases and the drift check compares bytes.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import secrets
import shutil
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pyarrow as pa
import pyarrow.parquet as pq
from onnx import TensorProto, helper, numpy_helper

from model_bisect.errors import InputError
from model_bisect.evaluation.arrow import float_array
from model_bisect.evaluation.features import CANONICAL_FEATURES, TARGET_COLUMN
from model_bisect.files import write_bytes_atomic

from .fixture import Fixture, FixtureData, LinearWeights
from .layout import FEATURES_FILE, MANIFEST_FILE, is_hand_written, model_file
from .manifest import Manifest, describe

__all__ = [
    "IR_VERSION",
    "OPSET",
    "PARQUET_SETTINGS",
    "PRODUCER_NAME",
    "PRODUCER_VERSION",
    "onnx_bytes",
    "parquet_bytes",
    "parquet_options",
    "write_fixture",
]

# Pinned rather than taken from the onnx library, whose version would otherwise become
# part of every model's bytes. IR 8 loads in every onnxruntime since 1.12.
PRODUCER_NAME = "model-bisect cache_builder"
PRODUCER_VERSION = "1"
IR_VERSION = 8
OPSET = 17

# With 7 KB of float32 data a codec buys nothing, its library version is one more thing
# that changes bytes, and gzip's header carries the OS. No arrow schema blob
# (store_schema=False), no pandas metadata (the table never passes through pandas).
PARQUET_SETTINGS: Mapping[str, Any] = {
    "version": "2.6",
    "compression": "NONE",
    "compression_level": None,
    "use_dictionary": False,
    "write_statistics": True,
    "row_group_size": 1 << 20,
    "data_page_size": 1 << 20,
    "data_page_version": "1.0",
    "write_batch_size": 1024,
    "use_byte_stream_split": False,
    "column_encoding": None,
    "store_schema": False,
    "write_page_index": False,
    "write_page_checksum": False,
    "sorting_columns": None,
    "use_compliant_nested_type": True,
    "max_rows_per_page": 20_000,
    "use_content_defined_chunking": False,
    "write_time_adjusted_to_utc": False,
    "store_decimal_as_integer": False,
}


@cache
def parquet_options() -> dict[str, Any]:
    """PARQUET_SETTINGS minus the options this pyarrow predates (the drift matrix runs 15+)."""
    known = set(inspect.signature(pq.write_table).parameters)
    known |= set(inspect.signature(pq.ParquetWriter.__init__).parameters)
    return {name: value for name, value in PARQUET_SETTINGS.items() if name in known}


def parquet_bytes(data: FixtureData) -> bytes:
    """The features table straight from Arrow: no pandas, no schema metadata."""
    names = (*CANONICAL_FEATURES, TARGET_COLUMN)
    table = pa.table(
        [float_array(data.columns[name]) for name in names],
        schema=pa.schema([pa.field(name, pa.float32()) for name in names]),
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **parquet_options())
    return bytes(sink.getvalue().to_pybytes())


def onnx_bytes(weights: LinearWeights, index: int) -> bytes:
    """score[N] = input[N, 6] @ weights[6] + bias: MatMul with a vector yields [N] directly."""
    width = len(CANONICAL_FEATURES)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "weights"], ["projected"], name="project"),
            helper.make_node("Add", ["projected", "bias"], ["score"], name="offset"),
        ],
        f"linear_fr_{index:02d}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", width])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])],
        initializer=[
            numpy_helper.from_array(np.asarray(weights.weights, dtype=np.float32), "weights"),
            numpy_helper.from_array(np.asarray(weights.bias, dtype=np.float32), "bias"),
        ],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name=PRODUCER_NAME,
        producer_version=PRODUCER_VERSION,
        ir_version=IR_VERSION,
    )
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString(deterministic=True))


def write_fixture(fixture: Fixture, out: Path) -> Manifest:
    """Write ``fixture`` to ``out`` all or nothing; top-level *.md files in ``out`` survive.

    The new tree is built in a hidden sibling and swapped in with two renames; the old tree
    waits in a fixed-name sibling until the swap is done, so a kill at any point leaves a
    whole fixture that the next run restores (see ``_recover``).
    """
    out = Path(os.path.realpath(out))  # a symlinked --out stays a link; its target is written
    out.parent.mkdir(parents=True, exist_ok=True)
    _recover(out)
    _refuse_foreign(out)
    staging = out.with_name(f".{out.name}.staging-{secrets.token_hex(4)}")
    staging.mkdir()  # not mkdtemp: its mode 0700 would become the fixture folder's
    try:
        names = [FEATURES_FILE]
        write_bytes_atomic(staging / FEATURES_FILE, parquet_bytes(fixture.data))
        for index, weights in enumerate(fixture.timeline):
            names.append(model_file(index))
            write_bytes_atomic(staging / model_file(index), onnx_bytes(weights, index))
        manifest = describe(staging, names, fixture.origin)
        write_bytes_atomic(staging / MANIFEST_FILE, manifest.dumps().encode("utf-8"))
        if out.is_dir():
            for kept in sorted(out.iterdir()):
                if kept.is_file() and is_hand_written(kept.name):
                    shutil.copyfile(kept, staging / kept.name)
        _swap(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _refuse_foreign(out: Path) -> None:
    """The swap replaces the whole folder: never let it take a folder that is not a fixture,
    nor a file, FIFO or device that is not a folder at all."""
    if out.exists() and not out.is_dir():
        raise InputError(
            "not a folder (the fixture is a folder of files)",
            str(out),
            "pass an empty or new folder, or a fixture folder, as --out",
        )
    if not out.is_dir() or (out / MANIFEST_FILE).is_file():
        return
    foreign = [
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if p.is_file() and not is_hand_written(p.relative_to(out).as_posix())
    ]
    if foreign:
        raise InputError(
            f"not a fixture folder (no {MANIFEST_FILE}, yet it holds {foreign[0]})",
            str(out),
            "pass an empty or new folder, or a fixture folder, as --out",
        )


def _previous(out: Path) -> Path:
    return out.with_name(f".{out.name}.previous")


def _recover(out: Path) -> None:
    """Finish or undo a swap that a kill interrupted, and drop abandoned staging trees."""
    previous = _previous(out)
    if previous.is_dir():
        if out.exists():
            shutil.rmtree(previous)  # killed after the swap, before the clean-up
        else:
            os.replace(previous, out)  # killed between the two renames
    for stale in out.parent.glob(f".{out.name}.staging-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _swap(staging: Path, out: Path) -> None:
    previous = _previous(out)
    if not out.exists():
        os.replace(staging, out)
        return
    os.replace(out, previous)
    try:
        os.replace(staging, out)
    except BaseException:
        os.replace(previous, out)
        raise
    with contextlib.suppress(OSError):
        shutil.rmtree(previous)
