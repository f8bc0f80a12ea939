"""The feature cache: which columns a model reads, and loading them once with pyarrow.

Kept cheap to import (cache_builder reads the constants): numpy and pyarrow load inside the
functions that need them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError, first_line
from .files import file_sha256

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = [
    "CANONICAL_FEATURES",
    "TARGET_COLUMN",
    "FeatureTable",
    "columns_for",
    "load_features",
    "sidecar_path",
]

# The canonical VMAF feature set, in the order a model without a sidecar JSON expects.
CANONICAL_FEATURES: tuple[str, ...] = (
    "adm2",
    "vif_scale0",
    "vif_scale1",
    "vif_scale2",
    "vif_scale3",
    "motion2",
)
TARGET_COLUMN = "mos"


@dataclass(frozen=True, eq=False)
class FeatureTable:
    """The loaded cache: ``matrix`` holds ``names`` as float32 columns, rows with any
    non-finite needed value already removed (``dropped_rows`` counts them)."""

    path: Path
    sha256: str
    names: tuple[str, ...]
    matrix: np.ndarray  # float32 [rows, len(names)], C-contiguous, read-only
    target: np.ndarray  # float64 [rows], read-only
    target_name: str
    dropped_rows: int
    _subsets: dict[tuple[str, ...], np.ndarray] = field(
        default_factory=dict, init=False, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def rows(self) -> int:
        return int(self.matrix.shape[0])

    def columns(self, names: Sequence[str]) -> np.ndarray:
        """float32 ``[rows, len(names)]`` in the order given, built once per order.

        Several models share one order (the canonical one), and evaluations run in threads:
        building under a lock means each subset costs its copy once, not once per model.
        """
        key = tuple(names)
        if key == self.names:
            return self.matrix
        with self._lock:
            cached = self._subsets.get(key)
            if cached is not None:
                return cached
            missing = [name for name in key if name not in self.names]
            if missing:
                raise InputError(
                    f"feature column {', '.join(repr(m) for m in missing)} not loaded",
                    str(self.path),
                    f"loaded columns are {', '.join(self.names) or '(none)'}",
                )
            import numpy as np

            order = [self.names.index(name) for name in key]
            subset = np.ascontiguousarray(self.matrix[:, order])
            subset.setflags(write=False)
            self._subsets[key] = subset
            return subset


def sidecar_path(model_path: Path) -> Path:
    """``model_03.onnx`` -> ``model_03.json``, the file VMAF-style tiny models ship beside them."""
    return model_path.with_suffix(".json")


def columns_for(model_path: Path) -> tuple[str, ...]:
    """The feature names a model reads, in order: its sidecar's ``features`` list, else the
    canonical six. A sidecar that exists but cannot be trusted is an InputError, never a
    silent fall-back that would feed the model the wrong columns."""
    sidecar = sidecar_path(model_path)
    try:
        text = sidecar.read_text(encoding="utf-8")
    except FileNotFoundError:
        return CANONICAL_FEATURES
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"unreadable sidecar ({exc.__class__.__name__})",
            str(sidecar),
            "make it a UTF-8 JSON file or remove it",
        ) from None
    try:
        data: Any = json.loads(text)
    except ValueError as exc:
        raise InputError(
            f"sidecar is not valid JSON ({exc})", str(sidecar), "fix or remove it"
        ) from None
    if not isinstance(data, dict):
        raise InputError(
            "sidecar is not a JSON object", str(sidecar), 'write {"features": ["adm2", ...]}'
        )
    if "features" not in data:
        return CANONICAL_FEATURES
    names = data["features"]
    fix = 'make "features" a list of distinct column names, e.g. ["adm2", "motion2"]'
    if not isinstance(names, list) or not names:
        raise InputError('sidecar "features" is not a non-empty list', str(sidecar), fix)
    if not all(isinstance(n, str) and n for n in names):
        raise InputError('sidecar "features" holds a non-string or empty name', str(sidecar), fix)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(
            f'sidecar "features" repeats {", ".join(map(repr, duplicates))}', str(sidecar), fix
        )
    return tuple(names)


def _copy_floats(column: pa.ChunkedArray, out: np.ndarray) -> None:
    """Write a numeric Arrow column into ``out`` (nulls as NaN). Float chunks are read from
    their buffers: no float64 copy of a float32 column, and no pyarrow.compute, whose import
    costs a quarter of a second; other types go through ``float_values``'s cast."""
    import numpy as np
    import pyarrow as pa

    from .arrow import float_values

    start = 0
    for chunk in column.chunks:
        count = len(chunk)
        target = out[start : start + count]
        start += count
        kind = chunk.type
        if count == 0:
            continue
        if not (pa.types.is_float32(kind) or pa.types.is_float64(kind)):
            with np.errstate(over="ignore"):
                target[:] = float_values(chunk)
            continue
        dtype = np.float32 if pa.types.is_float32(kind) else np.float64
        validity, data = chunk.buffers()
        size = np.dtype(dtype).itemsize
        values = np.frombuffer(data, dtype=dtype, count=count, offset=chunk.offset * size)
        # float32 overflow turns an out-of-range value into inf: its row drops.
        with np.errstate(over="ignore"):
            target[:] = values
        if chunk.null_count:
            bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
            target[bits[chunk.offset : chunk.offset + count] == 0] = np.nan


def load_features(
    path: Path,
    columns: Sequence[str],
    target: str = TARGET_COLUMN,
) -> FeatureTable:
    """Read only ``columns`` and ``target`` from a parquet file, once, as float32 features and a
    float64 target; drop (and count) rows where any of them is missing or non-finite."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    where = str(path)
    if not path.exists():
        raise InputError("features file not found", where, "pass an existing parquet file")
    if not path.is_file():
        raise InputError("features path is not a file", where, "pass a parquet file")
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except (OSError, pa.ArrowException) as exc:
        raise InputError(
            f"not a readable parquet file ({first_line(exc)})",
            where,
            "pass a parquet file with float feature columns and a target column",
        ) from None
    available = list(schema.names)
    shown = ", ".join(available) or "(none)"
    wanted = list(dict.fromkeys(columns))
    if target not in available:
        raise InputError(
            f"no target column {target!r}",
            where,
            f"pass --target with one of: {shown}",
        )
    missing = [name for name in wanted if name not in available]
    if missing:
        raise InputError(
            f"missing feature column{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
            where,
            f"the file has {shown}; add the columns or list the model's in a sidecar JSON",
        )
    names = wanted
    for name in [*names, target]:
        kind = schema.field(name).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            raise InputError(
                f"column {name!r} is {kind}, not numeric",
                where,
                "store features and target as float or integer columns",
            )
    # One column of one row group at a time, straight into the final arrays: a whole-table
    # read plus float64 casts would hold several copies of the data at once (peak memory is
    # benchmarked: `nox -s bench`).
    total = parquet.metadata.num_rows
    matrix = np.empty((total, len(names)), dtype=np.float32)
    target_values = np.empty(total, dtype=np.float64)
    filled = 0
    try:
        for group in range(parquet.num_row_groups):
            stop = filled + parquet.metadata.row_group(group).num_rows
            for i, name in enumerate([*names, target]):
                column = parquet.read_row_group(group, columns=[name], use_threads=False)
                out = target_values[filled:stop] if name == target else matrix[filled:stop, i]
                _copy_floats(column.column(0), out)
                del column
            filled = stop
    except (OSError, pa.ArrowException) as exc:
        raise InputError(
            f"corrupt parquet file ({first_line(exc)})",
            where,
            "regenerate or re-export the features file",
        ) from None
    pa.default_memory_pool().release_unused()  # give decoded pages back before evaluating
    if filled != total:
        raise InputError(
            f"corrupt parquet file ({filled} of {total} rows readable)",
            where,
            "regenerate or re-export the features file",
        )

    keep = np.isfinite(target_values) & np.isfinite(matrix).all(axis=1)
    dropped = int(total - int(keep.sum()))
    if dropped:
        matrix = np.ascontiguousarray(matrix[keep])
        target_values = target_values[keep]
    if matrix.shape[0] == 0:
        raise InputError(
            f"no usable rows ({total} rows, all with a missing or non-finite value)",
            where,
            f"fill in the columns {', '.join([*names, target])}",
        )
    matrix.setflags(write=False)
    target_values.setflags(write=False)
    return FeatureTable(
        path=path,
        sha256=file_sha256(path),
        names=tuple(names),
        matrix=matrix,
        target=target_values,
        target_name=target,
        dropped_rows=dropped,
    )
