"""The tensor cache: graph inputs fed from parquet tensor columns, streamed a batch at a time.

A tensor column holds one tensor per row: Arrow's canonical fixed-shape tensor type
(``arrow.fixed_shape_tensor``, shape without the batch axis), or a plain ``fixed_size_list``
whose row shape the input description gives. Image caches do not fit in memory the way a
feature matrix does, so ``TensorTable`` keeps only the target (and the kept-row index) for
every row; tensors are decoded from the file in record batches as the evaluator asks for
consecutive rows, one reader per thread and column. numpy and pyarrow load when a cache opens.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError, first_line
from ..safetext import unicode_safe
from .dataset import DroppedRows, Items, UnknownRows
from .features import load_features

if TYPE_CHECKING:
    import numpy as np

    from .dataset import Dataset
    from .inputs import InputDescription, ModelInput
    from .strings import StringColumn

__all__ = ["DECODE_BYTES", "TensorTable", "open_tensors", "preprocess"]

# Bytes of stored values one record batch decodes: one 1080p RGB frame, a thousand of 64x64.
DECODE_BYTES = 4 << 20
_READ_BUFFER = 1 << 20
_VALUE_TYPES = ("uint8", "float16", "float32")
_DROPPED_BECAUSE = "the target is missing or not finite"


@dataclass(frozen=True)
class _Column:
    """A tensor column as stored: its stored row shape (None for a fixed_size_list, whose
    shape the description gives), its value count per row and its numpy value type."""

    name: str
    shape: tuple[int, ...] | None
    size: int
    dtype: str


def _column_of(name: str, kind: Any) -> _Column | str:
    """The column, or what is wrong with its type (the models fed it skip, saying so)."""
    import pyarrow as pa

    if isinstance(kind, pa.FixedShapeTensorType):
        permutation = kind.permutation
        if permutation is not None and list(permutation) != list(range(len(kind.shape))):
            return f"{kind}, a permuted layout (store it row-major, channels first)"
        shape: tuple[int, ...] | None = tuple(int(d) for d in kind.shape)
        values = kind.value_type
    elif pa.types.is_fixed_size_list(kind):
        shape = None
        values = kind.value_type
    else:
        return f"{kind}, not a tensor column"
    dtype = {"uint8": "uint8", "halffloat": "float16", "float": "float32"}.get(str(values), "")
    if dtype not in _VALUE_TYPES:
        return f"{kind}, values not uint8, float16 or float32"
    size = math.prod(shape) if shape is not None else int(kind.list_size)
    return _Column(name, shape, size, dtype)


def preprocess(values: np.ndarray, model_input: ModelInput) -> np.ndarray:
    """float32 ``values * scale``, then ``(x - mean) / std`` per channel (axis 1, the row
    shape's first): the description's preprocessing, computed in float32."""
    import numpy as np

    out = values.astype(np.float32)
    if model_input.scale is not None:
        out *= np.float32(model_input.scale)
    per_channel = (-1, *([1] * (out.ndim - 2)))
    if model_input.mean is not None:
        out -= np.asarray(model_input.mean, dtype=np.float32).reshape(per_channel)
    if model_input.std is not None:
        out /= np.asarray(model_input.std, dtype=np.float32).reshape(per_channel)
    return out


class _Reader:
    """Consecutive rows of one tensor column, decoded a record batch at a time; asking for
    rows before the ones held starts again at their row group."""

    def __init__(self, path: Path, column: _Column, group_starts: Sequence[int]) -> None:
        import pyarrow.parquet as pq

        # One per reader (threads never share one), read through a buffered stream without
        # pre-buffering: iter_batches otherwise reads ahead by a share of the whole file.
        self.file = pq.ParquetFile(path, pre_buffer=False, buffer_size=_READ_BUFFER)
        self.column = column
        self.group_starts = list(group_starts)
        self.batch_rows = max(1, DECODE_BYTES // max(1, column.size * _itemsize(column.dtype)))
        self.batches: Any = None
        self.held: Any = None  # stored values of rows [start, end), flat per row
        self.start = self.end = 0

    def rows(self, begin: int, stop: int) -> np.ndarray:
        """Stored values of file rows ``begin:stop``, ``[stop - begin, size]``."""
        import bisect

        import numpy as np

        if self.batches is None or begin < self.start:
            group = bisect.bisect_right(self.group_starts, begin) - 1
            self.batches = self.file.iter_batches(
                batch_size=self.batch_rows,
                row_groups=range(group, len(self.group_starts)),
                columns=[self.column.name],
                use_threads=False,
            )
            self.start = self.end = self.group_starts[group]
            self.held = np.empty((0, self.column.size), dtype=self.column.dtype)
        pieces = [self.held[max(0, begin - self.start) :]]
        self.start = max(self.start, begin)
        while self.end < stop:
            values = self._values(next(self.batches))
            self.end += len(values)
            if self.end <= begin:
                self.start = self.end
                continue
            pieces.append(values[max(0, len(values) - (self.end - begin)) :])
            self.start = max(self.start, begin)
        held: np.ndarray = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        self.held = held
        return held[: stop - begin]

    def _values(self, batch: Any) -> np.ndarray:
        array = batch.column(0)
        if array.null_count:
            raise ValueError(f"tensor column {self.column.name!r} holds null rows")
        storage = getattr(array, "storage", array)  # the extension type's fixed_size_list
        flat: np.ndarray = storage.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(array), self.column.size)


def _itemsize(dtype: str) -> int:
    return {"uint8": 1, "float16": 2, "float32": 4}[dtype]


@dataclass(frozen=True, eq=False)
class TensorTable:
    """A parquet cache of tensor columns: the target in memory, the tensors streamed."""

    path: Path
    sha256: str
    target: np.ndarray  # float32 (as stored) or float64 [rows], read-only
    target_name: str
    columns: Mapping[str, _Column]
    mistyped: Mapping[str, str]
    kept: np.ndarray | None  # file row of each kept row; None when every row is kept
    group_starts: tuple[int, ...]
    dropped_rows: int
    rows_sha256: str
    _local: threading.local = field(default_factory=threading.local, init=False, repr=False)

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.columns, self.target_name)

    @property
    def rows(self) -> int:
        return int(self.target.shape[0])

    @property
    def fed_rows(self) -> int:
        return self.rows

    def pooled(self, predictions: np.ndarray) -> np.ndarray:
        return predictions

    def kept_rows(self) -> np.ndarray | None:
        return self.kept

    @property
    def digest(self) -> str:
        return hashlib.sha256(
            f"tensors {self.sha256}\nrows {self.rows_sha256}".encode()
        ).hexdigest()

    @property
    def dropped(self) -> DroppedRows:
        return DroppedRows(self.dropped_rows, _DROPPED_BECAUSE if self.dropped_rows else "")

    def lacking(self, description: InputDescription) -> list[str]:
        """Tensor columns the file lacks, and every feature column (none is loaded here)."""
        tensors = [c for c in description.tensor_columns if c not in self.columns]
        return [*tensors, *description.numeric_columns, *description.string_columns]

    def row_shape(self, model_input: ModelInput) -> tuple[int, ...]:
        column = self._column(model_input)
        given = model_input.shape
        if given is not None and math.prod(given) != column.size:
            raise ValueError(
                f"input {model_input.name!r} gives shape {list(given)} "
                f"({math.prod(given)} values) for {column.size} values a row"
            )
        shape = given or column.shape
        if shape is None:
            raise ValueError(
                f"tensor column {column.name!r} is a plain fixed_size_list: give its row shape"
                f" with shape = [...] in input {model_input.name!r}"
            )
        for what, values in (("mean", model_input.mean), ("std", model_input.std)):
            if values is not None and len(values) not in (1, shape[0]):
                raise ValueError(
                    f"input {model_input.name!r} gives {len(values)} {what} values for "
                    f"{shape[0]} channels"
                )
        return shape

    def batch(self, model_input: ModelInput, start: int, stop: int) -> np.ndarray:
        """float32 ``[stop - start, *row_shape]``, preprocessed as described."""
        shape = self.row_shape(model_input)
        reader = self._reader(self._column(model_input))
        if self.kept is None:
            stored = reader.rows(start, stop)
        else:
            wanted = self.kept[start:stop]
            first = int(wanted[0])
            stored = reader.rows(first, int(wanted[-1]) + 1)[wanted - first]
        return preprocess(stored.reshape(stop - start, *shape), model_input)

    def unknown_rows(self, description: InputDescription) -> UnknownRows:
        return UnknownRows()

    def items(self) -> Items:
        return Items(rows=self.kept)

    def string_columns(self, max_values: int) -> Mapping[str, StringColumn]:
        """The string columns only: a tensor column is never read here."""
        from .strings import string_columns

        return string_columns(self.path, self.kept, max_values)

    def _column(self, model_input: ModelInput) -> _Column:
        if model_input.tensor is None or model_input.tensor not in self.columns:
            raise ValueError(f"input {model_input.name!r} is not fed a tensor column")
        return self.columns[model_input.tensor]

    def _reader(self, column: _Column) -> _Reader:
        readers: dict[str, _Reader] | None = getattr(self._local, "readers", None)
        if readers is None:
            readers = self._local.readers = {}
        reader = readers.get(column.name)
        if reader is None:
            reader = readers[column.name] = _Reader(self.path, column, self.group_starts)
        return reader


def open_tensors(
    path: Path,
    descriptions: Sequence[InputDescription],
    target: str,
    *,
    one_model: bool = False,
) -> TensorTable:
    """The cache's target read whole (its checks are the feature cache's) and its tensor
    columns' types checked; no tensor is read here. A file no model can be fed from is an
    InputError naming the first missing or mistyped column, unless ``one_model`` (judge),
    where it is that model's skip."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = load_features(path, [], target)  # file checks, target, rows with a finite target
    where = unicode_safe(str(path))
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
        raw = np.concatenate(
            [
                parquet.read_row_group(g, columns=[target]).column(0).to_numpy().astype(float)
                for g in range(parquet.num_row_groups)
            ]
        )
    except (OSError, pa.ArrowException) as exc:
        raise InputError(
            f"corrupt parquet file ({first_line(exc)})", where, "regenerate the tensor cache"
        ) from None
    wanted = list(dict.fromkeys(c for d in descriptions for c in d.tensor_columns))
    columns: dict[str, _Column] = {}
    mistyped: dict[str, str] = {}
    for name in wanted:
        if name not in schema.names:
            continue
        found = _column_of(name, schema.field(name).type)
        if isinstance(found, str):
            mistyped[name] = found
        else:
            columns[name] = found
    if not one_model and not any(
        all(c in columns for c in d.tensor_columns) for d in descriptions if d.tensor_columns
    ):
        missing = [c for c in wanted if c not in columns]
        first = missing[0]
        problem = mistyped.get(first)
        shown = ", ".join(unicode_safe(n)[:80] for n in schema.names[:12])
        raise InputError(
            f"tensor column {unicode_safe(first)!r} is {problem}"
            if problem
            else f"no tensor column {unicode_safe(first)!r}",
            where,
            f"store it as pyarrow.fixed_shape_tensor (the file has {shown})",
        )
    keep = np.isfinite(raw)
    starts, total = [], 0
    for g in range(parquet.num_row_groups):
        starts.append(total)
        total += parquet.metadata.row_group(g).num_rows
    return TensorTable(
        path=path,
        sha256=table.sha256,
        target=table.target,
        target_name=target,
        columns=columns,
        mistyped=mistyped,
        kept=None if keep.all() else np.flatnonzero(keep),
        group_starts=tuple(starts),
        dropped_rows=table.dropped_rows,
        rows_sha256=table.rows_sha256,
    )


if TYPE_CHECKING:  # mypy checks that the tensor table is a Dataset
    _IS_A_DATASET: type[Dataset] = TensorTable
