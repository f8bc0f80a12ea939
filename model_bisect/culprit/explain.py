"""The culprit section for two models: graph changes, prediction agreement, the groups of
rows where the error grew, and the worst rows. Reads the two ONNX files and, through the
``Dataset``, the string columns of the cache (feature or tensor, pooled or
not); everything else is the pure functions beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError, first_line
from .graph import diff_models, load_with_weights
from .predictions import agreement, by_decile, by_value, plcc_loaded
from .record import Culprit, GraphChange, SliceChange
from .rows import DEFAULT_ROWS, worst_rows

if TYPE_CHECKING:
    from ..evaluation.dataset import Dataset
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


def _string_slices(
    data: Dataset,
    exclude: Sequence[str],
    target: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
) -> tuple[SliceChange, ...]:
    """Every string column of the file with at most MAX_SLICE_VALUES values, broken down
    per rated item (the data reads them as codes, never a tensor column)."""
    found: list[SliceChange] = []
    for name, column in data.string_columns(MAX_SLICE_VALUES).items():
        if name not in exclude:
            found += by_value(name, column.codes, list(column.vocabulary), target, before, after)
    found.sort(key=lambda s: (-s.rmse_growth, s.column, s.value))
    return tuple(found)


def _id_lookup(path: Path, column: str) -> Callable[[np.ndarray], list[str | None]]:
    def look_up(rows: np.ndarray) -> list[str | None]:
        import pyarrow.parquet as pq

        values = pq.ParquetFile(path).read(columns=[column]).column(0)
        picked = [values[int(r)].as_py() for r in rows]  # a handful: no compute kernel
        return [None if v is None else str(v) for v in picked]

    return look_up


def _group_lookup(names: Sequence[str]) -> Callable[[np.ndarray], list[str | None]]:
    def look_up(groups: np.ndarray) -> list[str | None]:
        return [names[int(g)] for g in groups]

    return look_up


def explain(
    before_model: Path,
    after_model: Path,
    data: Dataset,
    before: np.ndarray,
    after: np.ndarray,
    *,
    last_good_index: int,
    first_bad_index: int,
    row_id: str | None = None,
    rows: int = DEFAULT_ROWS,
    predictions_from: str = "search",
    known_plcc: float | None = None,
) -> Culprit:
    """The culprit section; ``before``/``after`` are both models' predictions on the rated
    items of ``data``: its rows, or with ``--pool-by`` its groups, which the worst rows then
    number by position and name by their value of the pooling column (not ``row_id``)."""
    graph, graph_error = graph_changes(before_model, after_model)
    target = data.target
    # As the models gave them (float32 for the usual model): every breakdown sums a block
    # of rows at a time in float64, so no whole float64 copy adds to the search's peak.
    before = np.asarray(before).reshape(-1)
    after = np.asarray(after).reshape(-1)
    items = data.items()
    ids = None if row_id is None else _id_lookup(data.path, row_id)
    if items.group_by is not None:
        row_id, ids = items.group_by, _group_lookup(items.names)
    try:
        slices = _string_slices(data, [row_id] if row_id else [], target, before, after)
    except Exception as exc:  # pyarrow: the file was readable a moment ago; never fail the run
        slices = ()
        graph_error = graph_error or f"string columns unreadable ({first_line(exc)})"
    return Culprit(
        last_good_index=last_good_index,
        first_bad_index=first_bad_index,
        graph=graph,
        agreement=agreement(before, after, known_plcc=known_plcc),
        deciles=by_decile(target, before, after),
        slices=slices,
        rows=worst_rows(
            target,
            before,
            after,
            rows,
            row_numbers=items.rows,
            ids=ids,
        ),
        graph_error=graph_error,
        row_id_column=row_id,
        predictions_from=predictions_from,
    )


def explain_boundary(
    paths: Sequence[Path],
    data: Dataset,
    last_good: int,
    first_bad: int,
    boundary: Boundary,
    predict: Callable[[int], np.ndarray | None],
    *,
    row_id: str | None = None,
) -> Culprit | None:
    """The section for a localised regression: the predictions the bisect kept, or the model
    run again when it came from the evaluation cache (None if it cannot be run now)."""
    known_plcc = None
    if boundary.spilled(last_good) and boundary.spilled(first_bad):
        # Before both are read back: the PLCC's centred copies are the section's peak.
        known_plcc = plcc_loaded(_loader(boundary, last_good), _loader(boundary, first_bad))
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
        data,
        pair[0],
        pair[1],
        last_good_index=last_good,
        first_bad_index=first_bad,
        row_id=row_id,
        predictions_from="rerun" if rerun else "search",
        known_plcc=known_plcc,
    )


def _loader(boundary: Boundary, index: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        found = boundary.get(index)
        if found is None:  # spilled() said it was kept, and nothing drops it meanwhile
            raise RuntimeError(f"model #{index}'s kept predictions vanished")
        return found

    return load
