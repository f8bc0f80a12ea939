"""The worst slice where people look: one sentence for the terminal, the comment and the job
summary, about the model a reader cares about (the first bad one, else the newest visited)."""

from __future__ import annotations

from ..catalogue import CATALOGUE
from ..report import Report, SliceMetrics, Status, Step
from ..slices import failed_gates

__all__ = ["shown_slice", "slice_sentence"]


def shown_slice(report: Report) -> tuple[Step, SliceMetrics] | None:
    """The worst slice of the verdict's first bad model, else of the newest visited model that
    has slices (None without --slice-by)."""
    sliced = [s for s in report.steps if s.worst() is not None and s.status is not Status.SKIP]
    if not sliced:
        return None
    first_bad = report.verdict.first_bad_index
    step = next((s for s in sliced if s.index == first_bad), sliced[-1])
    worst = step.worst()
    assert worst is not None
    return step, worst


def slice_sentence(report: Report, step: Step, piece: SliceMetrics) -> str:
    """``worst slice of #3 (m3.onnx): encoder = libx265, 300 rows: PLCC 0.5485, ...; fails
    plcc >= 0.9``, untrusted names as they are (each renderer makes them safe)."""
    unit = "items" if report.features.pool_by is not None else "rows"
    values = ", ".join(
        f"{spec.label} {spec.show(piece.metrics.value(spec.name))}" for spec in CATALOGUE
    )
    text = (
        f"worst slice of #{step.index} ({step.label}): {piece.ref.describe()},"
        f" {piece.rows} {unit}: {values}"
    )
    failed = failed_gates(piece, report.gates)
    if failed:
        text += "; fails " + ", ".join(g.describe() for g in failed)
        text += "" if piece.gated else " (not gated)"
    return text
