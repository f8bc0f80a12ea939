"""The terminal view of a report: verdict line, gates, and a table of the visited models.

rich is imported inside the function, so building the CLI parser never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .catalogue import CATALOGUE
from .report import Report, Status, VerdictKind
from .safetext import printable

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["print_report"]

_VERDICT_STYLE = {
    VerdictKind.NO_REGRESSION: "bold green",
    VerdictKind.REGRESSION: "bold red",
    VerdictKind.HEAD_BAD: "bold red",
    VerdictKind.INCONCLUSIVE: "bold yellow",
}
_STATUS_COLOUR = {Status.GOOD: "green", Status.BAD: "red", Status.SKIP: "yellow"}


def print_report(report: Report, console: Console) -> None:
    """Print the report to ``console``; labels, commit subjects and reasons are shown as plain
    text with escape sequences and control characters removed (``safetext.printable``): a
    model's name must not be able to rewrite the user's terminal."""
    from rich.table import Table
    from rich.text import Text

    style = _VERDICT_STYLE[report.verdict.kind]
    title = report.verdict.kind.value.replace("_", " ")
    console.print(Text.assemble((f"{title}: ", style), printable(report.verdict.message)))
    gates = ", ".join(g.describe() for g in report.gates) or "none"
    console.print(
        Text(
            printable(
                f"gates: {gates}; {len(report.timeline)} models, {report.evaluations} evaluated"
            )
        )
    )
    with_p = any(s.p_values for s in report.steps)
    table = Table(show_edge=False)
    for name in ("#", "model", "status", *(spec.name for spec in CATALOGUE)):
        table.add_column(name, justify="right" if name not in ("model", "status") else "left")
    if with_p:
        table.add_column("p-values")
    table.add_column("reason")
    for step in report.steps:
        m = step.metrics
        values = ["-" if m is None else spec.show(m.value(spec.name)) for spec in CATALOGUE]
        cells = [
            Text(str(step.index)),
            Text(printable(step.label)),
            Text(step.status.value, style=_STATUS_COLOUR[step.status]),
            *(Text(v) for v in values),
        ]
        if with_p:
            cells.append(Text(", ".join(f"{k} {v:.3g}" for k, v in sorted(step.p_values.items()))))
        cells.append(Text(printable(step.reason)))
        table.add_row(*cells)
    console.print(table)
