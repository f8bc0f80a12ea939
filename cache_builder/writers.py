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
import stat
from collections.abc import Mapping, Sequence
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
from model_bisect.safetext import unicode_safe

from .fixture import Fixture, FixtureData, LinearWeights, Origin
from .layout import FEATURES_FILE, MANIFEST_FILE, is_hand_written, model_file
from .manifest import Manifest, describe, read_manifest

__all__ = [
    "IR_VERSION",
    "OPSET",
    "PARQUET_SETTINGS",
    "PRODUCER_NAME",
    "PRODUCER_VERSION",
    "onnx_bytes",
    "parquet_bytes",
    "parquet_options",
    "pinned_model_bytes",
    "write_fixture",
    "write_tree",
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
    return pinned_model_bytes(graph)


def pinned_model_bytes(graph: onnx.GraphProto) -> bytes:
    """``graph`` as a checked model with the pinned producer, IR version and opset, serialised
    deterministically: every fixture model's bytes go through here."""
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
    """Write the feature fixture to ``out`` all or nothing (see ``write_tree``)."""
    artifacts = [(FEATURES_FILE, parquet_bytes(fixture.data))]
    artifacts += [(model_file(i), onnx_bytes(w, i)) for i, w in enumerate(fixture.timeline)]
    return write_tree(out, artifacts, fixture.origin)


def write_tree(out: Path, artifacts: Sequence[tuple[str, bytes]], origin: Origin) -> Manifest:
    """Write ``artifacts`` (relative POSIX path, bytes) and their manifest to ``out`` all or
    nothing; top-level *.md files in ``out`` survive.

    The new tree is built in a hidden sibling and swapped in with two renames; the old tree
    waits in a fixed-name sibling until the swap is done, so a kill at any point leaves a
    whole fixture that the next run restores (see ``_recover``).
    """
    out = Path(os.path.realpath(out))  # a symlinked --out stays a link; its target is written
    if out.parent == out:  # "/": no sibling to stage in, and never ours to replace
        raise InputError(
            "the root of a file system cannot be the fixture folder",
            str(out),
            "pass an empty or new folder, or a fixture folder, as --out",
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    _recover(out)
    _refuse_foreign(out)
    staging = out.with_name(f".{out.name}.staging-{secrets.token_hex(4)}")
    staging.mkdir()  # not mkdtemp: its mode 0700 would become the fixture folder's
    try:
        for name, data in artifacts:
            write_bytes_atomic(staging / name, data)
        manifest = describe(staging, [name for name, _ in artifacts], origin)
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
    """The swap replaces the whole folder: only take a folder that is a fixture by content.

    That is an empty folder, or one whose ``MANIFEST.json`` parses and lists every file in
    it (a listed file may be missing: regenerating restores it, and nothing is lost). Any
    other entry — a file the manifest does not list, a symlink, a FIFO — would be deleted,
    so the folder is refused, naming those entries. Top-level *.md files are kept anyway.
    Nor is a file, FIFO or device that is not a folder at all ever taken."""
    fix = "pass an empty or new folder, or a fixture folder, as --out"
    if out.exists() and not out.is_dir():
        raise InputError("not a folder (the fixture is a folder of files)", str(out), fix)
    if not out.is_dir():
        return
    present = _entries(out)
    if not present:
        return
    if MANIFEST_FILE not in present:
        raise InputError(f"not a fixture folder (no {MANIFEST_FILE}, yet it holds {_few(present)})",
                         str(out), fix)  # fmt: skip
    try:
        listed = set(read_manifest(out).artifacts)
    except InputError as exc:
        raise InputError(
            f"not a fixture folder: its {MANIFEST_FILE} does not parse ({exc.problem})",
            str(out),
            f"{fix}; delete {MANIFEST_FILE} and the files yourself to start afresh",
        ) from None
    stray = [name for name in present if name != MANIFEST_FILE and name not in listed]
    if stray:
        raise InputError(
            f"not a fixture folder: {MANIFEST_FILE} does not list {_few(stray)}",
            str(out),
            f"move {'it' if len(stray) == 1 else 'them'} out first, or {fix}",
        )


def _entries(out: Path) -> list[str]:
    """Every entry under ``out`` the swap would delete, as relative POSIX paths: regular
    files by name, anything else (a symlink, a FIFO) with a note; folders only through
    what they hold; top-level *.md files left out, since they are kept."""
    found = []
    for folder, dirs, files in os.walk(out, followlinks=False):
        here = Path(folder)
        for name in sorted(dirs):
            if (here / name).is_symlink():
                found.append(f"{(here / name).relative_to(out).as_posix()} (a symlink)")
        for name in sorted(files):
            path = here / name
            relative = path.relative_to(out).as_posix()
            if path.is_symlink():
                found.append(f"{relative} (a symlink)")
            elif not stat.S_ISREG(path.lstat().st_mode):
                found.append(f"{relative} (not a regular file)")
            elif not is_hand_written(relative):
                found.append(relative)
    return found


def _few(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(unicode_safe(n) for n in names[:limit])
    more = len(names) - limit
    return shown + (f" and {more} more" if more > 0 else "")


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
