"""The culprit section for two models: graph changes, prediction agreement, the groups of
rows where the error grew, and the worst rows. Reads the two ONNX files and the string
columns of the features file; everything else is the pure functions beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError, first_line
from .graph import diff_models, load_with_weights
from .predictions import agreement, by_decile, by_value
from .record import Culprit, GraphChange, SliceChange
from .rows import DEFAULT_ROWS, worst_rows

if TYPE_CHECKING:
    from ..evaluation.features import FeatureTable
    from .keep import Boundary

__all__ = ["MAX_SLICE_VALUES", "check_row_id", "explain", "explain_boundary", "graph_changes"]

# A string column with more distinct values than this is an id or a path, not a slice.
MAX_SLICE_VALUES = 64


def graph_changes(before: Path, after: Path) -> tuple[tuple[GraphChange, ...], str]:
    """The changes from ``before`` to ``after``, or why the graphs could not be compared."""
    try:
        return diff_models(load_with_weights(before), load_with_weights(after)), ""
    except InputError as exc:
        return (), str(exc)


def check_row_id(features_path: Path, column: str | None) -> None:
    """Before any work: the ``--row-id`` column must exist (reads the parquet footer only)."""
    if column is None:
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = pq.ParquetFile(features_path).schema_arrow.names
    except (OSError, pa.ArrowException):
        return  # the features read reports an unreadable file with its own message
    if column not in names:
        raise InputError(
            f"no column {column!r} for --row-id",
            str(features_path),
            f"pass --row-id with one of: {', '.join(names[:12])}",
        )


def _kept_rows(features: FeatureTable) -> np.ndarray | None:
    """Positions in the file of the rows the run used; None when none was dropped."""
    if not features.dropped_rows:
        return None
    import pyarrow.parquet as pq

    # ParquetFile, not read_table: that one imports pyarrow.dataset, a second on its own
    table = pq.ParquetFile(features.path).read(columns=[*features.names, features.target_name])
    keep = np.ones(table.num_rows, dtype=bool)
    for column in table.columns:
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)
        keep &= np.isfinite(values)
    return np.flatnonzero(keep)


def _string_slices(
    features: FeatureTable,
    kept: np.ndarray | None,
    exclude: Sequence[str],
    target: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
) -> tuple[SliceChange, ...]:
    """Every string column of the file with at most MAX_SLICE_VALUES values, broken down.

    Read as dictionary codes, straight into numpy: no string per row is built, and
    pyarrow.compute (whose first call costs most of a second) is never loaded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.ParquetFile(features.path).schema_arrow
    found: list[SliceChange] = []
    for field in schema:
        kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        textual = pa.types.is_string(kind) or pa.types.is_large_string(kind)
        if field.name in exclude or not textual or not _few_values(features.path, field.name):
            continue
        parquet = pq.ParquetFile(features.path, read_dictionary=[field.name])
        column = parquet.read(columns=[field.name]).column(0).unify_dictionaries()
        chunks = column.chunks
        vocabulary = [str(v) for v in chunks[0].dictionary.to_pylist()] if chunks else []
        if len(vocabulary) > MAX_SLICE_VALUES:
            continue
        codes = np.concatenate([_codes(chunk) for chunk in chunks]) if chunks else np.empty(0)
        if kept is not None:
            codes = codes[kept]
        found += by_value(field.name, codes, vocabulary, target, before, after)
    found.sort(key=lambda s: (-s.rmse_growth, s.column, s.value))
    return tuple(found)


def _codes(chunk: Any) -> np.ndarray:
    """A dictionary chunk's indices as int32, -1 where the value is null."""
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


def _few_values(path: Path, name: str, probe: int = 4096) -> bool:
    """Whether the column's first ``probe`` rows (or its dictionary) hold at most
    MAX_SLICE_VALUES values: an id or path column is told apart there, before its 500,000
    strings are read."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path, read_dictionary=[name])
    batch = next(parquet.iter_batches(batch_size=probe, columns=[name]), None)
    return batch is None or len(batch.column(0).dictionary) <= MAX_SLICE_VALUES


def _id_lookup(path: Path, column: str) -> Callable[[np.ndarray], list[str | None]]:
    def look_up(rows: np.ndarray) -> list[str | None]:
        import pyarrow.parquet as pq

        values = pq.ParquetFile(path).read(columns=[column]).column(0)
        picked = [values[int(r)].as_py() for r in rows]  # a handful: no compute kernel
        return [None if v is None else str(v) for v in picked]

    return look_up


def explain(
    before_model: Path,
    after_model: Path,
    features: FeatureTable,
    before: np.ndarray,
    after: np.ndarray,
    *,
    last_good_index: int,
    first_bad_index: int,
    row_id: str | None = None,
    rows: int = DEFAULT_ROWS,
    predictions_from: str = "search",
) -> Culprit:
    """The culprit section; ``before``/``after`` are both models' predictions on the rows of
    ``features``."""
    graph, graph_error = graph_changes(before_model, after_model)
    target = features.target
    # float64 once: every breakdown below reads these, and a cast per use costs more than them
    before = np.asarray(before, dtype=np.float64)
    after = np.asarray(after, dtype=np.float64)
    kept = _kept_rows(features)
    try:
        slices = _string_slices(features, kept, [row_id] if row_id else [], target, before, after)
    except Exception as exc:  # pyarrow: the file was readable a moment ago; never fail the run
        slices = ()
        graph_error = graph_error or f"string columns unreadable ({first_line(exc)})"
    return Culprit(
        last_good_index=last_good_index,
        first_bad_index=first_bad_index,
        graph=graph,
        agreement=agreement(before, after),
        deciles=by_decile(target, before, after),
        slices=slices,
        rows=worst_rows(
            target,
            before,
            after,
            rows,
            row_numbers=kept,
            ids=None if row_id is None else _id_lookup(features.path, row_id),
        ),
        graph_error=graph_error,
        row_id_column=row_id,
        predictions_from=predictions_from,
    )


def explain_boundary(
    paths: Sequence[Path],
    features: FeatureTable,
    last_good: int,
    first_bad: int,
    boundary: Boundary,
    predict: Callable[[int], np.ndarray | None],
    *,
    row_id: str | None = None,
) -> Culprit | None:
    """The section for a localised regression: the predictions the bisect kept, or the model
    run again when it came from the evaluation cache (None if it cannot be run now)."""
    pair = []
    rerun = False
    for index in (last_good, first_bad):
        predictions = boundary.get(index)
        if predictions is None:
            predictions = predict(index)
            rerun = True
        if predictions is None:
            return None
        pair.append(predictions)
    return explain(
        paths[last_good],
        paths[first_bad],
        features,
        pair[0],
        pair[1],
        last_good_index=last_good,
        first_bad_index=first_bad,
        row_id=row_id,
        predictions_from="rerun" if rerun else "search",
    )
