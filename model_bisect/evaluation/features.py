"""The feature cache: which columns a model reads, loading them once with pyarrow, and
feeding them to graph inputs a batch of rows at a time.

``FeatureTable`` is the first ``Dataset`` (``dataset.py``): float32 columns, each graph input
fed ``[N, F]``, one-hot blocks built per batch so a wide one never exists for every row at
once. Kept cheap to import (cache_builder reads the constants): numpy and pyarrow load inside
the functions that need them.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError, first_line
from ..files import (
    BoundedReadError,
    ReadProblem,
    file_sha256,
    read_text_bounded,
    special_file_kind,
)
from ..safetext import unicode_safe
from .dataset import DroppedRows, Items, UnknownRows
from .strings import StringColumn, string_columns

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from .dataset import Dataset
    from .inputs import InputDescription, ModelInput

__all__ = [
    "CANONICAL_FEATURES",
    "TARGET_COLUMN",
    "FeatureTable",
    "Feed",
    "StringColumn",
    "columns_for",
    "load_features",
    "load_for",
    "read_sidecar",
    "sidecar_names",
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
# A sidecar lists feature names: a few MB is thousands of them, and the bound keeps a huge
# or endless file (/dev/zero behind a symlink) from filling memory.
MAX_SIDECAR_BYTES = 4 << 20
# PLCC, SROCC and their intervals need at least three rows; fewer is no measurement at all.
MIN_ROWS = 3
_DROPPED_BECAUSE = "a needed feature or the target is missing or not finite"


@dataclass(frozen=True, eq=False)
class FeatureTable:
    """The loaded cache: ``matrix`` holds ``names`` as float32 columns, rows with any
    non-finite needed value already removed (``dropped_rows`` counts them).

    Which rows were kept depends on every column the run loads, not only one model's, so
    ``rows_sha256`` (a digest of the kept-row mask) is part of every evaluation-cache key:
    without it a model would reuse metrics computed on other rows.
    """

    path: Path
    sha256: str
    names: tuple[str, ...]
    matrix: np.ndarray  # float32 [rows, len(names)], C-contiguous, read-only
    target: np.ndarray  # float32 (as stored) or float64 [rows], read-only
    target_name: str
    dropped_rows: int
    rows_sha256: str = ""
    strings: Mapping[str, StringColumn] = field(default_factory=dict)  # read only when needed
    absent: tuple[str, ...] = ()  # requested with allow_missing, but not in the file
    # Requested with allow_missing as numeric (or one-hot) but of another type in the file:
    # column -> what is wrong ("float, not a string column"); the models needing it skip.
    mistyped: Mapping[str, str] = field(default_factory=dict)
    kept: np.ndarray | None = None  # file row of each kept row; None when none dropped
    _subsets: dict[tuple[str, ...], np.ndarray] = field(
        default_factory=dict, init=False, repr=False
    )
    _feeds: dict[ModelInput, Feed] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def rows(self) -> int:
        return int(self.matrix.shape[0])

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
            f"features {self.sha256}\nrows {self.rows_sha256}".encode()
        ).hexdigest()

    @property
    def dropped(self) -> DroppedRows:
        return DroppedRows(self.dropped_rows, _DROPPED_BECAUSE if self.dropped_rows else "")

    def lacking(self, description: InputDescription) -> list[str]:
        """Columns the description needs that this table did not load."""
        loaded = set(self.names)  # a sidecar may list 100,000s of names: no tuple scans
        numeric = [name for name in description.numeric_columns if name not in loaded]
        strings = [name for name in description.string_columns if name not in self.strings]
        return [*numeric, *strings]

    def row_shape(self, model_input: ModelInput) -> tuple[int, ...]:
        return (len(model_input.columns),)

    def batch(self, model_input: ModelInput, start: int, stop: int) -> np.ndarray:
        """float32 ``[stop - start, columns]``; a plain numeric input is a view, not a copy."""
        return self._feed(model_input).batch(start, stop)

    def _feed(self, model_input: ModelInput) -> Feed:
        """The input's column subset and one-hot lookups, built once per distinct input:
        models of one timeline mostly share them."""
        feed = self._feeds.get(model_input)
        if feed is None:
            built = Feed.build(model_input, self)  # takes self._lock itself, for the subset
            with self._lock:
                feed = self._feeds.setdefault(model_input, built)
        return feed

    def items(self) -> Items:
        return Items(rows=self.kept)

    def string_columns(self, max_values: int) -> Mapping[str, StringColumn]:
        return string_columns(self.path, self.kept, max_values)

    def unknown_rows(self, description: InputDescription) -> UnknownRows:
        """Rows holding a one-hot column value that the layout does not list (null
        included), and the sentence the report shows for them."""
        import numpy as np

        affected = np.zeros(self.rows, dtype=bool)
        where_to: dict[str, str] = {}
        for spec in description.inputs:
            for column in dict.fromkeys(s.column for s in spec.columns if s.onehot):
                listed = {s.value for s in spec.columns if s.column == column}
                strings = self.strings[column]
                known = np.asarray([False, *(v in listed for v in strings.vocabulary)], dtype=bool)
                outside = ~known[strings.codes.astype(np.int64) + 1]
                if outside.any():
                    affected |= outside
                    slot = spec.unknown_slot(column)
                    where_to[column] = "all zeros" if slot is None else spec.columns[slot].text
        count = int(np.count_nonzero(affected))
        if not count:
            return UnknownRows()
        parts = ", ".join(f"{column} (fed as {target})" for column, target in where_to.items())
        noun = "row has a value" if count == 1 else "rows have a value"
        return UnknownRows(count, f"{count} {noun} outside the one-hot layout: {parts}")

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


def _listed(names: Sequence[str], limit: int = 12) -> str:
    """Names for a one-line message: a file with thousands of columns must not make the
    error line megabytes long."""
    shown = ", ".join(unicode_safe(str(n))[:80] for n in names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def sidecar_path(model_path: Path) -> Path:
    """``model_03.onnx`` -> ``model_03.json``, the file VMAF-style tiny models ship beside them."""
    return model_path.with_suffix(".json")


_SIDECAR_PROBLEMS = {
    ReadProblem.NOT_REGULAR: "sidecar is not a regular file ({detail})",
    ReadProblem.TOO_LARGE: f"sidecar is larger than {MAX_SIDECAR_BYTES >> 20} MB",
    ReadProblem.UNREADABLE: "unreadable sidecar ({detail})",
}
_SIDECAR_FIXES = {
    ReadProblem.NOT_REGULAR: "make it a JSON file or remove it",
    ReadProblem.TOO_LARGE: "list only the feature names in it",
    ReadProblem.UNREADABLE: "make it a UTF-8 JSON file or remove it",
}


def read_sidecar(model_path: Path) -> dict[str, Any] | None:
    """The model's sidecar JSON object, or None when there is none. A sidecar that exists but
    cannot be trusted is an InputError, never a silent fall-back that would feed the model
    the wrong columns."""
    sidecar = sidecar_path(model_path)
    where = unicode_safe(str(sidecar))
    try:
        text = read_text_bounded(sidecar, MAX_SIDECAR_BYTES)
    except BoundedReadError as exc:
        if exc.problem is ReadProblem.MISSING:
            if os.path.lexists(sidecar):  # a link to nowhere is a broken sidecar, not none
                raise InputError(
                    "sidecar is a symlink to a missing file",
                    where,
                    "point the link at the sidecar JSON or remove it",
                ) from None
            return None
        raise InputError(
            exc.worded(_SIDECAR_PROBLEMS), where, _SIDECAR_FIXES[exc.problem]
        ) from None
    try:
        data: Any = json.loads(text)
    except RecursionError:
        raise InputError("sidecar nests too deeply to parse", where, "fix or remove it") from None
    except ValueError as exc:
        raise InputError(
            f"sidecar is not valid JSON ({unicode_safe(first_line(exc))})",
            where,
            "fix or remove it",
        ) from None
    if not isinstance(data, dict):
        raise InputError("sidecar is not a JSON object", where, 'write {"features": ["adm2", ...]}')
    return data


def repeated_names(names: Sequence[str]) -> list[str]:
    """The names listed more than once, sorted; linear, since a sidecar within its 4 MB
    bound can list 380,000 names (``list.count`` per name took minutes)."""
    return sorted(name for name, seen in Counter(names).items() if seen > 1)


def sidecar_names(data: Mapping[str, Any], key: str, sidecar: Path) -> tuple[str, ...]:
    """The sidecar's ``key`` as a non-empty list of distinct non-empty names."""
    names = data[key]
    where = unicode_safe(str(sidecar))
    fix = f'make "{key}" a list of distinct column names, e.g. ["adm2", "motion2"]'
    if not isinstance(names, list) or not names:
        raise InputError(f'sidecar "{key}" is not a non-empty list', where, fix)
    if not all(isinstance(n, str) and n for n in names):
        raise InputError(f'sidecar "{key}" holds a non-string or empty name', where, fix)
    duplicates = repeated_names(names)
    if duplicates:
        raise InputError(f'sidecar "{key}" repeats {", ".join(map(repr, duplicates))}', where, fix)
    return tuple(names)


def columns_for(model_path: Path) -> tuple[str, ...]:
    """The feature names a model reads, in order: its sidecar's ``features`` list, else the
    canonical six (the single-input rule; ``inputs.describe`` knows the whole sidecar)."""
    data = read_sidecar(model_path)
    if data is None or "features" not in data:
        return CANONICAL_FEATURES
    return sidecar_names(data, "features", sidecar_path(model_path))


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
    *,
    strings: Sequence[str] = (),
    allow_missing: bool = False,
) -> FeatureTable:
    """Read only ``columns`` and ``target`` from a parquet file, once, as float32 features and
    the target in the file's precision (float32 stays float32, anything else is float64);
    drop (and count) rows where any of them is missing or non-finite.

    ``strings`` are string columns (one-hot inputs) read dictionary-encoded; they never drop a
    row. With ``allow_missing`` a requested column the file lacks is left out and listed in
    ``absent`` (the models that need it are skipped) instead of failing the whole read.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    where = unicode_safe(str(path))
    try:
        kind = special_file_kind(os.stat(path))
    except FileNotFoundError:
        raise InputError(
            "features file not found", where, "pass an existing parquet file"
        ) from None
    except (OSError, ValueError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(
            f"features file cannot be opened ({unicode_safe(problem)})",
            where[:300],
            "pass an existing parquet file",
        ) from None
    if kind is not None:
        raise InputError(f"features path is {kind}, not a file", where, "pass a parquet file")
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
    shown = _listed(available) or "(none)"
    wanted = list(dict.fromkeys(columns))
    counts = Counter(available)  # a set and a count: both lists can be 100,000s long
    repeated = sorted({n for n in [*wanted, *strings, target] if counts[n] > 1})
    if repeated:
        raise InputError(
            f"column {_listed(list(map(repr, repeated)))} appears more than once",
            where,
            "give every column of the features file a distinct name",
        )
    if target not in counts:
        raise InputError(
            f"no target column {target!r}",
            where,
            f"pass --target with one of: {shown}",
        )
    wanted_strings = list(dict.fromkeys(strings))
    missing = [name for name in [*wanted, *wanted_strings] if name not in counts]
    if missing and not allow_missing:
        raise InputError(
            f"missing feature column{'s' if len(missing) > 1 else ''} {_listed(missing)}",
            where,
            f"the file has {shown}; add the columns or list the model's in a sidecar JSON",
        )
    names = [name for name in wanted if name in counts]
    string_names = [name for name in wanted_strings if name in counts]
    mistyped: dict[str, str] = {}
    if allow_missing:  # a column of the wrong type is the needing model's skip, not the run's
        for name in string_names:
            if not _is_string(schema.field(name).type):
                mistyped[name] = f"{schema.field(name).type}, not a string column"
        for name in names:
            if name != target and not _is_number(schema.field(name).type):
                mistyped.setdefault(name, f"{schema.field(name).type}, not numeric")
        names = [n for n in names if n == target or _is_number(schema.field(n).type)]
        string_names = [n for n in string_names if _is_string(schema.field(n).type)]
    _check_string_columns(schema, string_names, where)
    for name in [*names, target]:
        kind = schema.field(name).type
        if not _is_number(kind):
            raise InputError(
                f"column {name!r} is {kind}, not numeric",
                where,
                "store features and target as float or integer columns",
            )
    # One column of one row group at a time, straight into the final arrays: a whole-table
    # read plus float64 casts would hold several copies of the data at once (peak memory is
    # benchmarked: `nox -s bench`).
    total = parquet.metadata.num_rows
    in_groups = sum(parquet.metadata.row_group(g).num_rows for g in range(parquet.num_row_groups))
    if in_groups != total:  # a forged or damaged footer: the arrays below are sized by it
        raise _corrupt(where, f"its footer says {total} rows, its row groups {in_groups}")
    try:  # the row count comes from the file's footer: untrusted until the rows are read
        matrix = np.empty((total, len(names)), dtype=np.float32)
        target_values = np.empty(total, dtype=_target_dtype(schema.field(target).type))
    except (MemoryError, ValueError):
        raise InputError(
            f"the file claims {total} rows, more than memory holds",
            where,
            "check the file, or split it",
        ) from None
    filled = 0
    try:
        for group in range(parquet.num_row_groups):
            stop = filled + parquet.metadata.row_group(group).num_rows
            for i, name in enumerate([*names, target]):
                column = parquet.read_row_group(group, columns=[name], use_threads=False)
                if len(column) != stop - filled:  # never leave rows of `out` unwritten
                    raise _corrupt(
                        where,
                        f"row group {group} says {stop - filled} rows, column {name!r} holds "
                        f"{len(column)}",
                    )
                out = target_values[filled:stop] if name == target else matrix[filled:stop, i]
                _copy_floats(column.column(0), out)
                del column
            filled = stop
    except (OSError, pa.ArrowException) as exc:
        raise _corrupt(where, first_line(exc)) from None
    pa.default_memory_pool().release_unused()  # give decoded pages back before evaluating
    if filled != total:
        raise _corrupt(where, f"{filled} of {total} rows readable")

    string_columns = _read_strings(path, string_names, total) if string_names else {}

    keep = np.isfinite(target_values) & np.isfinite(matrix).all(axis=1)
    dropped = int(total - int(keep.sum()))
    if dropped:
        matrix = np.ascontiguousarray(matrix[keep])
        target_values = target_values[keep]
        string_columns = {
            name: StringColumn(np.ascontiguousarray(column.codes[keep]), column.vocabulary)
            for name, column in string_columns.items()
        }
    for column in string_columns.values():
        column.codes.setflags(write=False)
    if matrix.shape[0] < MIN_ROWS:
        raise InputError(
            f"too few rows: {matrix.shape[0]} usable of {total}, at least {MIN_ROWS} needed "
            "(a row is usable when every needed column is finite)",
            where,
            f"fill in the columns {_listed([*names, target])}",
        )
    mask = hashlib.sha256(f"{total}\n".encode())
    mask.update(np.packbits(keep).tobytes())
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
        rows_sha256=mask.hexdigest(),
        strings=string_columns,
        absent=tuple(missing),
        mistyped=mistyped,
        kept=np.flatnonzero(keep) if dropped else None,
    )


def _target_dtype(kind: Any) -> type[np.floating[Any]]:
    """float32 for a float32 target column, float64 for any other: a float64 copy of a
    float32 target is 40 MB at 10M rows held all run long, and upcasting is exact, so the
    statistics convert it where they need float64 (metrics.py) and see the same values."""
    import numpy as np
    import pyarrow as pa

    return np.float32 if pa.types.is_float32(kind) else np.float64


def _is_number(kind: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))


def _is_string(kind: Any) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _check_string_columns(schema: Any, names: Sequence[str], where: str) -> None:
    import pyarrow as pa

    for name in names:
        kind = schema.field(name).type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if not _is_string(kind):
            raise InputError(
                f"column {name!r} is {kind}, not a string column",
                where,
                "store one-hot source columns (COLUMN in COLUMN_onehot[VALUE]) as strings",
            )


def _corrupt(where: str, detail: str) -> InputError:
    return InputError(
        f"corrupt parquet file ({detail})", where, "regenerate or re-export the features file"
    )


def _read_strings(path: Path, names: Sequence[str], total: int) -> dict[str, StringColumn]:
    """Each string column as int32 codes into one vocabulary, a row group at a time: pyarrow
    hands back each group's dictionary, so no row's string is ever built in Python."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .arrow import int32_values

    where = str(path)
    try:
        parquet = pq.ParquetFile(path, read_dictionary=list(names))
        found: dict[str, StringColumn] = {}
        for name in names:
            codes = np.empty(total, dtype=np.int32)
            vocabulary: dict[str, int] = {}
            filled = 0
            for group in range(parquet.num_row_groups):
                column = parquet.read_row_group(group, columns=[name], use_threads=False)
                for chunk in column.column(0).chunks:
                    local = [
                        -1 if value is None else vocabulary.setdefault(value, len(vocabulary))
                        for value in chunk.dictionary.to_pylist()
                    ]
                    # index -1 (a null row) picks the appended -1
                    remap = np.asarray([*local, -1], dtype=np.int32)
                    codes[filled : filled + len(chunk)] = remap[int32_values(chunk.indices)]
                    filled += len(chunk)
            if filled != total:
                raise _corrupt(where, f"{filled} of {total} rows of {name!r} readable")
            found[name] = StringColumn(codes, tuple(vocabulary))
    except (OSError, pa.ArrowException) as exc:
        raise _corrupt(where, first_line(exc)) from None
    pa.default_memory_pool().release_unused()
    return found


@dataclass(frozen=True, eq=False)
class Feed:
    """One graph input's values for every row of a table, cut into batches on demand."""

    spec: ModelInput
    numeric: np.ndarray  # float32 [rows, numeric columns], shared with the table
    numeric_positions: tuple[int, ...]
    onehots: tuple[tuple[np.ndarray, np.ndarray], ...]  # (codes, slot of code+1 or -1)
    mean: np.ndarray | None
    std: np.ndarray | None

    @property
    def width(self) -> int:
        return len(self.spec.columns)

    @classmethod
    def build(cls, spec: ModelInput, table: FeatureTable) -> Feed:
        import numpy as np

        numeric_specs = [(p, s) for p, s in enumerate(spec.columns) if not s.onehot]
        numeric = table.columns([s.column for _, s in numeric_specs])
        onehots = []
        for column in dict.fromkeys(s.column for s in spec.columns if s.onehot):
            strings = table.strings[column]
            slots = {s.value: p for p, s in enumerate(spec.columns) if s.column == column}
            fallback = spec.unknown_slot(column)
            default = -1 if fallback is None else fallback
            # index 0 stands for a null row (code -1), index c + 1 for vocabulary[c]
            lookup = np.asarray(
                [default, *(slots.get(v, default) for v in strings.vocabulary)], dtype=np.int64
            )
            onehots.append((strings.codes, lookup))
        mean = None if spec.mean is None else np.asarray(spec.mean, dtype=np.float32)
        std = None if spec.std is None else np.asarray(spec.std, dtype=np.float32)
        return cls(spec, numeric, tuple(p for p, _ in numeric_specs), tuple(onehots), mean, std)

    def batch(self, begin: int, end: int) -> np.ndarray:
        """float32 ``[end - begin, width]``; a plain numeric input is a view, not a copy."""
        import numpy as np

        plain = not self.onehots and self.numeric_positions == tuple(range(self.width))
        if plain:
            values = self.numeric[begin:end]
        else:
            values = np.zeros((end - begin, self.width), dtype=np.float32)
            if self.numeric_positions:
                values[:, list(self.numeric_positions)] = self.numeric[begin:end]
            for codes, lookup in self.onehots:
                slots = lookup[codes[begin:end].astype(np.int64) + 1]
                rows = np.flatnonzero(slots >= 0)
                values[rows, slots[rows]] = 1.0
        if self.mean is not None and self.std is not None:
            values = (values - self.mean) / self.std  # float32 throughout
        return values


def load_for(
    path: Path,
    descriptions: Sequence[InputDescription],
    target: str,
    *,
    one_model: bool = False,
) -> FeatureTable:
    """The parquet read once for every model: a column only some models need may be missing
    (those models skip, naming it), but a file no model can be fed from is an InputError.
    For ``one_model`` (judge) a missing column is that model's skip whatever the others need."""
    numeric = list(dict.fromkeys(c for d in descriptions for c in d.numeric_columns))
    strings = list(dict.fromkeys(c for d in descriptions for c in d.string_columns))
    features = load_features(path, numeric, target, strings=strings, allow_missing=True)
    if one_model:
        return features
    unfed = features.absent or features.mistyped
    if unfed and all(features.lacking(d) for d in descriptions):
        # Read again without allow_missing for the usual message naming the missing columns.
        load_features(path, numeric, target, strings=strings)
    return features


if TYPE_CHECKING:  # mypy checks that the feature table is a Dataset
    _IS_A_DATASET: type[Dataset] = FeatureTable
