"""String columns of a cache as dictionary codes: for one-hot inputs, and for the culprit.

The culprit breaks the error down per value of every string column with few values, whatever
kind of cache the run evaluated: a feature parquet or a tensor cache, whose tensor columns
are never read here. Read straight into numpy as dictionary codes: no string per row is
built, and pyarrow.compute (whose first call costs most of a second) is never loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["PROBE_ROWS", "StringColumn", "read_codes", "string_columns", "string_names"]

# An id or path column is told apart within its first rows, before all of it is read.
PROBE_ROWS = 4096


@dataclass(frozen=True, eq=False)
class StringColumn:
    """A string column, dictionary-encoded: a million rows of a handful of encoder names
    cost 4 MB of codes instead of a million Python strings."""

    codes: np.ndarray  # int32 [rows], index into ``vocabulary``; -1 where the value is null
    vocabulary: tuple[str, ...]


def string_names(path: Path) -> tuple[str, ...]:
    """The file's string columns (plain or dictionary-encoded), in schema order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    found = []
    for field in pq.ParquetFile(path).schema_arrow:
        kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            found.append(field.name)
    return tuple(found)


def read_codes(
    path: Path, name: str, kept: np.ndarray | None, max_values: int
) -> StringColumn | None:
    """String column ``name`` as int32 codes (-1 for null) of the kept rows (``kept``: their
    file rows, None for all), or None when it holds more than ``max_values`` values."""
    import numpy as np
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path, read_dictionary=[name])
    probe = next(parquet.iter_batches(batch_size=PROBE_ROWS, columns=[name]), None)
    if probe is not None and len(probe.column(0).dictionary) > max_values:
        return None
    column = parquet.read(columns=[name]).column(0).unify_dictionaries()
    chunks = column.chunks
    vocabulary = tuple(str(v) for v in chunks[0].dictionary.to_pylist()) if chunks else ()
    if len(vocabulary) > max_values:
        return None
    codes = (
        np.concatenate([_codes(chunk) for chunk in chunks])
        if chunks
        else np.empty(0, dtype=np.int32)
    )
    return StringColumn(codes if kept is None else codes[kept], vocabulary)


def string_columns(path: Path, kept: np.ndarray | None, max_values: int) -> dict[str, StringColumn]:
    """``read_codes`` of every string column of the file with at most ``max_values`` values."""
    found = {}
    for name in string_names(path):
        column = read_codes(path, name, kept, max_values)
        if column is not None:
            found[name] = column
    return found


def _codes(chunk: Any) -> np.ndarray:
    """A dictionary chunk's indices as int32, -1 where the value is null."""
    import numpy as np

    indices = chunk.indices
    values = np.frombuffer(indices.buffers()[1], dtype=indices.type.to_pandas_dtype())
    values = values[indices.offset : indices.offset + len(indices)].astype(np.int32)
    if indices.null_count:
        bits = np.frombuffer(indices.buffers()[0], dtype=np.uint8)
        valid = np.unpackbits(bits, bitorder="little")[
            indices.offset : indices.offset + len(indices)
        ]
        values[valid == 0] = -1
    return values
