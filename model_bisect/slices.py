"""Per-slice metrics (``--slice-by``), the slice gates (``--gate-slices``) and the worst slice.

A model can be fine overall and fail on one encoder; a slice is the rated items sharing one
value of a string column. Pure functions over arrays: the metrics of a slice are the
catalogue's, computed by metrics.py on the slice's items, so a metric added to the catalogue
is sliced at once. The grouping and each slice's target ranks are computed once per run
(``slicing``), then read for every model.

The mapping (``--mapping``) is fitted once, on every item, and each slice is judged on those
mapped predictions: a slice's own fit would hide exactly what slices are for, an offset on one
encoder's items. Items are grouped by one counting sort of the codes (``np.bincount`` for the
sizes, a stable sort of 8- or 16-bit codes, which numpy does as a radix sort), then each slice
is a run of item indices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .catalogue import CATALOGUE, GateKind, MappingName, metric_spec
from .gates import threshold_clause
from .report import GateSpec, SliceMetrics, SliceRef

if TYPE_CHECKING:
    import numpy as np

    from .metrics import Fitted
    from .ranks import TargetRanks

__all__ = [
    "Slicing",
    "failed_gates",
    "ranking_metric",
    "slice_failures",
    "slice_metrics",
    "slicing",
    "worst_slice",
]


def _absolute(gates: Sequence[GateSpec]) -> list[GateSpec]:
    return [g for g in gates if g.kind in (GateKind.MIN, GateKind.MAX)]


@dataclass(frozen=True, eq=False)
class Slicing:
    """One column's slices of a run's items, built once per run and read for every model:
    each slice's item indices, its target and the target's ranks (every model is ranked
    against the same target, so the slice's target is sorted once, not once per model)."""

    column: str
    values: tuple[str | None, ...]  # None: the items where the column is null
    items: tuple[np.ndarray, ...]  # int64 indices into the run's items, per slice
    targets: tuple[np.ndarray, ...]
    ranks: tuple[TargetRanks, ...]


def slicing(
    column: str, codes: np.ndarray, vocabulary: Sequence[str], target: np.ndarray
) -> Slicing:
    """The slices of a dictionary-coded column (code -1, a null, is the slice of value None),
    in vocabulary order; values no item has are left out."""
    import numpy as np  # here, not at import: the renderers read this module too

    from .metrics import target_ranks

    y = np.asarray(target, dtype=np.float64).reshape(-1)
    k = len(vocabulary)
    groups = np.where(np.asarray(codes) < 0, k, codes)
    # 8- or 16-bit codes: numpy's stable sort of them is a radix sort, O(items)
    groups = groups.astype(np.uint8 if k < 255 else np.uint16 if k < 65535 else np.int64)
    sizes = np.bincount(groups, minlength=k + 1)
    order = np.argsort(groups, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)])
    names: list[str | None] = [*vocabulary, None]
    kept = [code for code in range(k + 1) if sizes[code]]
    items = tuple(order[starts[code] : starts[code + 1]] for code in kept)
    targets = tuple(y[i] for i in items)
    return Slicing(
        column,
        tuple(names[code] for code in kept),
        items,
        targets,
        tuple(target_ranks(t) for t in targets),
    )


def slice_metrics(
    slices: Slicing,
    predictions: np.ndarray,
    *,
    fitted: Fitted | None = None,
) -> tuple[SliceMetrics, ...]:
    """Every catalogue metric on each slice (whose targets ``slices`` holds). ``predictions``
    are one per rated item, as the overall metrics saw them; ``fitted`` is the mapping fitted
    once on all of them (``metrics.fit_once``), None when no mapping was asked for."""
    import numpy as np

    from .metrics import compute_metrics, with_rank_metrics

    raw = np.asarray(predictions).reshape(-1)
    used = MappingName.NONE.value if fitted is None else fitted.used
    mapped = raw if fitted is None else fitted.values
    found = []
    for value, items, t, ranks in zip(
        slices.values, slices.items, slices.targets, slices.ranks, strict=True
    ):
        metrics = compute_metrics(mapped[items], t, ranked=False)
        metrics = with_rank_metrics(metrics, raw[items], t, ranks=ranks)
        metrics = replace(metrics, mapping=used, mapping_direction=None)
        found.append(SliceMetrics(slices.column, value, int(items.size), metrics))
    return tuple(found)


def ranking_metric(gates: Sequence[GateSpec]) -> str:
    """The metric slices are ranked by: the first --min-/--max- gate's, else the first gate's
    (a --max-drop), else the catalogue's first."""
    chosen = _absolute(gates) or list(gates)
    return chosen[0].metric if chosen else CATALOGUE.names[0]


def failed_gates(piece: SliceMetrics, gates: Sequence[GateSpec]) -> list[GateSpec]:
    """The absolute gates the slice's metrics fail, gated or not."""
    return [
        gate
        for gate in _absolute(gates)
        if not threshold_clause(gate, piece.metrics.value(gate.metric))[0]
    ]


def _fails(piece: SliceMetrics, gates: Sequence[GateSpec]) -> list[str]:
    return [
        threshold_clause(gate, piece.metrics.value(gate.metric))[1]
        for gate in failed_gates(piece, gates)
    ]


def slice_failures(
    slices: Sequence[SliceMetrics], gates: Sequence[GateSpec], unit: str = "rows"
) -> list[str]:
    """Each absolute gate a gated slice fails, as a reason clause naming the slice:
    ``plcc 0.4100 < 0.8 on encoder = libx265 (412 rows)``. --max-drop gates compare with the
    first model overall and are not applied per slice."""
    return [
        f"{text} on {piece.ref.describe()} ({piece.rows} {unit})"
        for piece in slices
        if piece.gated
        for text in _fails(piece, gates)
    ]


def worst_slice(
    slices: Sequence[SliceMetrics], gates: Sequence[GateSpec], min_rows: int
) -> SliceRef | None:
    """The slice a reader should look at first.

    Among the slices of at least ``min_rows`` items (all of them when none is that large): one
    that fails an absolute gate before one that holds them all, then the worst value of
    ``ranking_metric`` (an undefined value counts as worst, as it fails a gate), then the
    larger slice, then column and value order.
    """
    if not slices:
        return None
    large = [s for s in slices if s.rows >= min_rows] or list(slices)
    spec = metric_spec(ranking_metric(gates))
    position = {id(s): i for i, s in enumerate(slices)}

    def key(piece: SliceMetrics) -> tuple[bool, float, int, int]:
        value = piece.metrics.value(spec.name)
        worse = spec.worse_by(value) if math.isfinite(value) else math.inf
        return (not _fails(piece, gates), -worse, -piece.rows, position[id(piece)])

    return min(large, key=key).ref
