"""The terminal view of a report: verdict line, gates, and a table of the visited models.

CI logs are often 80 columns wide, and a cell squeezed below its longest word is cut
mid-word. So the whole table is used only when it fits as it is; otherwise the reasons move
to their own lines under the table, and so do the labels when even their longest word does
not fit beside the numbers. rich is imported inside the function, so building the CLI parser
never loads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..catalogue import CATALOGUE
from ..report import Report, Status, Step, VerdictKind, negated_phrase, short_identity
from ..safetext import printable

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


def _p_text(step: Step) -> str:
    return ", ".join(f"{k} {v:.3g}" for k, v in sorted(step.p_values.items()))


def _metric_cells(step: Step) -> list[str]:
    m = step.metrics
    return ["-" if m is None else spec.show(m.value(spec.name)) for spec in CATALOGUE]


def _longest_word(texts: Sequence[str]) -> int:
    from rich.cells import cell_len

    return max((cell_len(word) for text in texts for word in text.split()), default=1)


def _width(header: str, cells: Sequence[str]) -> int:
    """A column's natural width: its longest line, header included."""
    from rich.cells import cell_len

    return max(cell_len(text) for text in [header, *cells])


def _summary(report: Report) -> str:
    gates = ", ".join(g.describe() for g in report.gates) or "none"
    mapping = report.settings.get("mapping")
    if mapping not in (None, "none"):
        gates += f" (mapping: {mapping})"
    skipped = sum(1 for s in report.steps if s.status is Status.SKIP)
    counts = f"{len(report.timeline)} models, {report.evaluations} evaluated"
    counts += f", {len(report.steps)} visited" + (f", {skipped} skipped" if skipped else "")
    return f"gates: {gates}; {counts}" + _negated_note(report)


def _negated_note(report: Report) -> str:
    phrase = negated_phrase(report, "...")
    return f"; {phrase}" if phrase else ""


def _scan_line(report: Report) -> str | None:
    if report.scan is None:
        return None
    if report.scan.monotone:
        return "scan: the timeline is monotone (good, then bad)"
    labels = {ref.index: ref.label for ref in report.timeline}
    shown = ", ".join(f"#{i} ({labels.get(i, '?')})" for i in report.scan.violations[:20])
    more = len(report.scan.violations) - 20
    shown += f" and {more} more" if more > 0 else ""
    return f"scan: not monotone: good models follow a bad one at {shown}"


def print_report(report: Report, console: Console) -> None:
    """Print the report to ``console``; labels, commit subjects and reasons are shown as plain
    text with escape sequences and control characters removed (``safetext.printable``): a
    model's name must not be able to rewrite the user's terminal."""
    from rich.table import Table
    from rich.text import Text

    style = _VERDICT_STYLE[report.verdict.kind]
    title = report.verdict.kind.value.replace("_", " ")
    console.print(Text.assemble((f"{title}: ", style), printable(report.verdict.message)))
    console.print(Text(printable(_summary(report))))
    scan = _scan_line(report)
    if scan is not None:
        shown = printable(scan)
        console.print(Text(shown, style="" if report.scan and report.scan.monotone else "yellow"))

    steps = report.steps
    with_p = any(s.p_values for s in steps)
    fixed = [
        ("#", [str(s.index) for s in steps]),
        ("id", [short_identity(report, s.index) for s in steps]),
        ("status", [s.status.value for s in steps]),
        *((spec.name, [_metric_cells(s)[k] for s in steps]) for k, spec in enumerate(CATALOGUE)),
        *([("p-values", [_p_text(s) for s in steps])] if with_p else []),
    ]
    labels = [printable(s.label) for s in steps]
    reasons = [printable(s.reason) for s in steps]
    # Each column costs its width plus one space either side; columns are one rule apart.
    numbers = sum(_width(head, cells) + 2 for head, cells in fixed) + len(fixed)
    whole = numbers + _width("model", labels) + 2 + 1 + _width("reason", reasons) + 2
    label_room = console.width - numbers - 2
    in_table = _longest_word(labels) <= label_room
    reasons_in_table = whole <= console.width

    table = Table(show_edge=False)
    table.add_column("#", justify="right")
    if in_table:
        table.add_column("model", min_width=min(_longest_word(labels), label_room))
    table.add_column("id")
    table.add_column("status")
    for spec in CATALOGUE:
        table.add_column(spec.name, justify="right")
    if with_p:
        table.add_column("p-values")
    if reasons_in_table:
        table.add_column("reason")
    for step, label, reason in zip(steps, labels, reasons, strict=True):
        cells = [Text(str(step.index))]
        if in_table:
            cells.append(Text(label))
        cells.append(Text(short_identity(report, step.index)))
        cells.append(Text(step.status.value, style=_STATUS_COLOUR[step.status]))
        cells += [Text(v) for v in _metric_cells(step)]
        if with_p:
            cells.append(Text(_p_text(step)))
        if reasons_in_table:
            cells.append(Text(reason))
        table.add_row(*cells)
    console.print(table)
    if reasons_in_table:
        _print_culprit(report, console)
        return
    # What did not fit beside the numbers, one model per paragraph.
    for step, label, reason in zip(steps, labels, reasons, strict=True):
        if in_table:
            if reason:
                console.print(Text(f"#{step.index}: {reason}"))
            continue
        console.print(Text(f"#{step.index} {label}"))
        console.print(Text(reason or step.status.value))
    _print_culprit(report, console)


def _print_culprit(report: Report, console: Console) -> None:
    """The culprit summary under the table (only for a localised regression)."""
    if report.culprit is None:
        return
    from rich.text import Text

    from ..culprit.render import terminal_lines

    labels = {ref.index: ref.label for ref in report.timeline}
    for line in terminal_lines(report.culprit, labels):
        console.print(Text(printable(line)), soft_wrap=True)  # one greppable line each
