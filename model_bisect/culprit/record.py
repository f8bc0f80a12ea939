"""The culprit section of a report: plain records and their JSON.

Kept in the contracts layer (standard library only) so ``report.py`` can hold a section
without importing numpy or onnx; the functions that fill it live beside this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "Agreement",
    "ChangeKind",
    "Culprit",
    "GraphChange",
    "RowChange",
    "SliceChange",
]


class ChangeKind(StrEnum):
    NODE_ADDED = "node_added"
    NODE_REMOVED = "node_removed"
    NODE_RETYPED = "node_retyped"
    NODE_WIRING = "node_wiring"
    ATTRIBUTE = "attribute_changed"
    OPSET = "opset"
    SIGNATURE = "signature"
    INITIALIZER_ADDED = "initializer_added"
    INITIALIZER_REMOVED = "initializer_removed"
    INITIALIZER_SHAPE = "initializer_shape"
    INITIALIZER_VALUES = "initializer_values"
    IR_VERSION = "ir_version"


def _num(value: float | None) -> float | None:
    """Strict JSON: NaN and infinities are written as null."""
    return None if value is None or not math.isfinite(value) else float(value)


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class GraphChange:
    """One difference between the two graphs; ``detail`` is the line a person reads.

    ``max_abs`` and ``rel_l2`` are set for an initializer whose values changed (relative L2:
    ||new - old|| / ||old||), so changes can be ranked by size.
    """

    kind: ChangeKind
    name: str
    detail: str
    max_abs: float | None = None
    rel_l2: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "name": self.name,
            "detail": self.detail,
            "max_abs": _num(self.max_abs),
            "rel_l2": _num(self.rel_l2),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GraphChange:
        max_abs, rel_l2 = data.get("max_abs"), data.get("rel_l2")
        return cls(
            ChangeKind(data["kind"]),
            str(data["name"]),
            str(data["detail"]),
            None if max_abs is None else float(max_abs),
            None if rel_l2 is None else float(rel_l2),
        )


@dataclass(frozen=True)
class Agreement:
    """How closely the two models' predictions agree with each other, row by row."""

    plcc: float
    mean_abs: float
    max_abs: float
    rows: int

    def to_json(self) -> dict[str, Any]:
        return {
            "plcc": _num(self.plcc),
            "mean_abs_diff": _num(self.mean_abs),
            "max_abs_diff": _num(self.max_abs),
            "rows": self.rows,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Agreement:
        return cls(
            _float(data.get("plcc")),
            _float(data.get("mean_abs_diff")),
            _float(data.get("max_abs_diff")),
            int(data["rows"]),
        )


@dataclass(frozen=True)
class SliceChange:
    """Both models measured on one group of rows: a decile of the target, or one value of a
    string column. ``plcc`` is NaN on fewer than three rows or a constant slice."""

    column: str
    value: str
    rows: int
    rmse_before: float
    rmse_after: float
    plcc_before: float
    plcc_after: float

    @property
    def rmse_growth(self) -> float:
        return self.rmse_after - self.rmse_before

    def to_json(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "value": self.value,
            "rows": self.rows,
            "rmse_before": _num(self.rmse_before),
            "rmse_after": _num(self.rmse_after),
            "plcc_before": _num(self.plcc_before),
            "plcc_after": _num(self.plcc_after),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SliceChange:
        return cls(
            str(data["column"]),
            str(data["value"]),
            int(data["rows"]),
            _float(data.get("rmse_before")),
            _float(data.get("rmse_after")),
            _float(data.get("plcc_before")),
            _float(data.get("plcc_after")),
        )


@dataclass(frozen=True)
class RowChange:
    """One row whose absolute error grew: ``row`` is its position in the features file."""

    row: int
    target: float
    before: float
    after: float
    row_id: str | None = None

    @property
    def growth(self) -> float:
        return abs(self.after - self.target) - abs(self.before - self.target)

    def to_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "id": self.row_id,
            "target": _num(self.target),
            "before": _num(self.before),
            "after": _num(self.after),
            "error_growth": _num(self.growth),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RowChange:
        row_id = data.get("id")
        return cls(
            int(data["row"]),
            _float(data.get("target")),
            _float(data.get("before")),
            _float(data.get("after")),
            None if row_id is None else str(row_id),
        )


@dataclass(frozen=True)
class Culprit:
    """What separates the last good model from the first bad one.

    ``graph_error`` says why the graphs could not be compared ("" when they were);
    ``predictions_from`` is ``search`` when the predictions were kept from the bisect, or
    ``rerun`` when a boundary model came from the evaluation cache and was run again.
    """

    last_good_index: int
    first_bad_index: int
    graph: tuple[GraphChange, ...]
    agreement: Agreement
    deciles: tuple[SliceChange, ...]
    slices: tuple[SliceChange, ...]
    rows: tuple[RowChange, ...]
    graph_error: str = ""
    row_id_column: str | None = None
    predictions_from: str = "search"

    def to_json(self) -> dict[str, Any]:
        return {
            "last_good_index": self.last_good_index,
            "first_bad_index": self.first_bad_index,
            "graph": [c.to_json() for c in self.graph],
            "graph_error": self.graph_error,
            "agreement": self.agreement.to_json(),
            "deciles": [s.to_json() for s in self.deciles],
            "slices": [s.to_json() for s in self.slices],
            "rows": [r.to_json() for r in self.rows],
            "row_id_column": self.row_id_column,
            "predictions_from": self.predictions_from,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Culprit:
        row_id = data.get("row_id_column")
        return cls(
            last_good_index=int(data["last_good_index"]),
            first_bad_index=int(data["first_bad_index"]),
            graph=tuple(GraphChange.from_json(c) for c in data.get("graph", ())),
            agreement=Agreement.from_json(data["agreement"]),
            deciles=tuple(SliceChange.from_json(s) for s in data.get("deciles", ())),
            slices=tuple(SliceChange.from_json(s) for s in data.get("slices", ())),
            rows=tuple(RowChange.from_json(r) for r in data.get("rows", ())),
            graph_error=str(data.get("graph_error", "")),
            row_id_column=None if row_id is None else str(row_id),
            predictions_from=str(data.get("predictions_from", "search")),
        )
