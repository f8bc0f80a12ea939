"""Explain how two parquet files differ: file metadata first, then schema, rows and values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from model_bisect.errors import first_line
from model_bisect.evaluation.arrow import float_values

from .difference import Difference, short

__all__ = ["compare_parquet"]


def compare_parquet(old: Path, new: Path) -> Difference:
    """``old`` is the committed file, ``new`` the regenerated one; neither may be rewritten."""
    try:
        old_file = pq.ParquetFile(old)
        old_table = old_file.read()
    except (OSError, pa.ArrowException) as exc:
        return Difference(content=(f"committed file is not readable parquet: {first_line(exc)}",))
    new_file = pq.ParquetFile(new)
    new_table = new_file.read()
    return Difference(
        metadata=tuple(_metadata(old_file.metadata, new_file.metadata)),
        content=tuple(_content(old_table, new_table)),
    )


def _change(label: str, old: object, new: object) -> list[str]:
    return [] if old == new else [f"{label}: {short(old)} -> {short(new)}"]


def _metadata(old: pq.FileMetaData, new: pq.FileMetaData) -> list[str]:
    lines = _change("created_by", old.created_by, new.created_by)
    lines += _change("format_version", old.format_version, new.format_version)
    lines += _change("row groups", old.num_row_groups, new.num_row_groups)
    old_keys = {k.decode("utf-8", "replace"): v for k, v in (old.metadata or {}).items()}
    new_keys = {k.decode("utf-8", "replace"): v for k, v in (new.metadata or {}).items()}
    for key in sorted(old_keys.keys() | new_keys.keys()):
        if key not in new_keys:
            lines.append(f"key-value metadata {key!r} only in the committed file")
        elif key not in old_keys:
            lines.append(f"key-value metadata {key!r} only in the regenerated file")
        elif old_keys[key] != new_keys[key]:
            lines.append(f"key-value metadata {key!r} differs")
    for label, getter in _CHUNK_FIELDS:
        lines += _chunk_field(label, getter, old, new)
    lines += _change("footer size (bytes)", old.serialized_size, new.serialized_size)
    return lines


_CHUNK_FIELDS: tuple[tuple[str, Any], ...] = (
    ("compression", lambda c: c.compression),
    ("encodings", lambda c: "+".join(sorted(c.encodings))),
    ("statistics", lambda c: "written" if c.is_stats_set else "absent"),
    ("dictionary page", lambda c: "yes" if c.has_dictionary_page else "no"),
    # has_column_index exists from pyarrow 16 on; older ones cannot tell.
    ("page index", lambda c: "yes" if getattr(c, "has_column_index", False) else "no"),
    ("column chunk bytes", lambda c: c.total_compressed_size),
)


def _chunk_field(label: str, getter: Any, old: pq.FileMetaData, new: pq.FileMetaData) -> list[str]:
    """One line when every column changed alike (``compression: UNCOMPRESSED -> SNAPPY``)."""
    old_values, new_values = _per_column(getter, old), _per_column(getter, new)
    changed = {
        name: (old_values.get(name), new_values.get(name))
        for name in old_values.keys() & new_values.keys()
        if old_values[name] != new_values[name]
    }
    if not changed:
        return []
    pairs = set(changed.values())
    if len(pairs) == 1 and len(changed) == len(old_values):
        ((before, after),) = pairs
        return [f"{label}: {short(before)} -> {short(after)} (all columns)"]
    return [
        f"{label} of {name}: {short(before)} -> {short(after)}"
        for name, (before, after) in sorted(changed.items())
    ]


def _per_column(getter: Any, meta: pq.FileMetaData) -> dict[str, Any]:
    """Values of the first row group per column path; one group is what the writer makes."""
    if meta.num_row_groups == 0:
        return {}
    group = meta.row_group(0)
    return {
        group.column(i).path_in_schema: getter(group.column(i)) for i in range(group.num_columns)
    }


def _content(old: pa.Table, new: pa.Table) -> list[str]:
    lines = []
    old_types = {f.name: f.type for f in old.schema}
    new_types = {f.name: f.type for f in new.schema}
    removed = [name for name in new.schema.names if name not in old_types]
    added = [name for name in old.schema.names if name not in new_types]
    if removed:
        lines.append(f"schema: columns {', '.join(removed)} missing from the committed file")
    if added:
        lines.append(f"schema: extra columns {', '.join(added)} in the committed file")
    common = [name for name in new.schema.names if name in old_types]
    if not removed and not added and old.schema.names != new.schema.names:
        lines.append(f"schema: column order {old.schema.names} -> {new.schema.names}")
    for name in common:
        lines += _change(f"schema: type of {name}", old_types[name], new_types[name])
    lines += _change("rows", old.num_rows, new.num_rows)
    rows = min(old.num_rows, new.num_rows)
    for name in common:
        lines += _column(name, old.column(name).slice(0, rows), new.column(name).slice(0, rows))
    return lines


def _is_number(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))


def _tensor_values(column: pa.ChunkedArray) -> np.ndarray | None:
    """``[rows, *shape]`` float64 values of a fixed-shape tensor column (or a fixed-size list
    of numbers); None for any other column."""
    kind = column.type
    shape: tuple[int, ...]
    if isinstance(kind, pa.FixedShapeTensorType):
        storage, shape = kind.storage_type, tuple(kind.shape)
    elif pa.types.is_fixed_size_list(kind):
        storage, shape = kind, (kind.list_size,)
    else:
        return None
    if not _is_number(storage.value_type):
        return None
    chunks = [c.storage if isinstance(c, pa.ExtensionArray) else c for c in column.chunks]
    flat = [
        np.asarray(c.flatten().to_numpy(zero_copy_only=False), dtype=np.float64) for c in chunks
    ]
    values = np.concatenate(flat) if flat else np.empty(0)
    return values.reshape((len(column), *shape))


def _tensors(name: str, a: np.ndarray, b: np.ndarray) -> list[str]:
    """Rows whose tensors differ; the first differing element as a tensor index."""
    differs = a != b
    # Over every axis but the first: a reshape to (rows, -1) cannot size an empty column.
    rows = differs.any(axis=tuple(range(1, differs.ndim)))
    if not rows.any():
        return []
    first = int(np.argmax(rows))
    where = tuple(int(i) for i in np.argwhere(differs[first])[0])
    largest = float(np.abs(a[differs] - b[differs]).max())
    return [
        f"column {name}: {int(rows.sum())} of {a.shape[0]} tensors differ, first at row {first} "
        f"index {list(where)} ({short(float(a[first][where]))} -> {short(float(b[first][where]))})"
        f", largest absolute difference {short(largest)}"
    ]


def _column(name: str, old: pa.ChunkedArray, new: pa.ChunkedArray) -> list[str]:
    """Rows compared by value (NaN equals NaN): differing count, first row, largest gap."""
    old_tensor, new_tensor = _tensor_values(old), _tensor_values(new)
    if old_tensor is not None and new_tensor is not None and old_tensor.shape == new_tensor.shape:
        return _tensors(name, old_tensor, new_tensor)
    if _is_number(old.type) and _is_number(new.type):
        a, b = float_values(old), float_values(new)
        differs = ~((a == b) | (np.isnan(a) & np.isnan(b)))
        if not differs.any():
            return []
        first = int(np.argmax(differs))
        with np.errstate(invalid="ignore", over="ignore"):
            gaps = np.abs(a[differs] - b[differs])
        gaps[np.isnan(gaps)] = np.inf  # a number against NaN counts as infinitely far
        largest = float(gaps.max())
        return [
            f"column {name}: {int(differs.sum())} of {len(a)} rows differ, first at row {first} "
            f"({short(float(a[first]))} -> {short(float(b[first]))}), "
            f"largest absolute difference {short(largest)}"
        ]
    old_rows, new_rows = old.to_pylist(), new.to_pylist()
    changed = [i for i, (x, y) in enumerate(zip(old_rows, new_rows, strict=True)) if x != y]
    if not changed:
        return []
    first = changed[0]
    return [
        f"column {name}: {len(changed)} of {len(old_rows)} rows differ, first at row {first} "
        f"({old_rows[first]!r} -> {new_rows[first]!r})"
    ]
