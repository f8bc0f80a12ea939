"""The terminal view of a report: verdict line, gates, and a table of the visited models.

CI logs and tmux panes are often 80 columns wide. The table says what a reason would repeat:
each metric cell has as many decimals as its gate needs to stand on the right side of it, and
the reason column keeps only what the numbers do not say (a drop, a skip, a note), so for a
plain threshold run it is gone. A cell squeezed below its longest word would be cut mid-word,
so the reasons (and then the labels) move to their own lines only when even their longest
word does not fit beside the numbers. rich is imported inside the function, so building the
CLI parser never loads it.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..catalogue import CATALOGUE, GateKind
from ..gates import shown_for_gates, threshold_clause
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


def _thresholds(report: Report) -> dict[str, list[float]]:
    """Each metric's ``min``/``max`` thresholds (a drop gate prints its own numbers)."""
    found: dict[str, list[float]] = {}
    for gate in report.gates:
        if gate.kind in (GateKind.MIN, GateKind.MAX):
            found.setdefault(gate.metric, []).append(gate.threshold)
    return found


def _metric_cells(step: Step, thresholds: Mapping[str, Sequence[float]]) -> list[str]:
    """The metrics as the table shows them: with enough decimals to agree with the gates."""
    m = step.metrics
    if m is None:
        return ["-" for _ in CATALOGUE]
    cells = []
    for spec in CATALOGUE:
        value = m.value(spec.name)
        if not math.isfinite(value):
            cells.append(spec.show(value))
            continue
        cells.append(shown_for_gates(value, thresholds.get(spec.name, ()), spec.digits))
    return cells


def _failing_metrics(report: Report, step: Step) -> set[str]:
    """The metrics whose ``min``/``max`` gate this step fails: their cells are shown red."""
    if step.metrics is None:
        return set()
    m = step.metrics
    return {
        g.metric
        for g in report.gates
        if g.kind in (GateKind.MIN, GateKind.MAX) and not threshold_clause(g, m.value(g.metric))[0]
    }


def _table_reason(report: Report, step: Step) -> str:
    """The reason without the clauses the table already says (``plcc 0.9960 >= 0.85``: the
    status, the cell and the gates line say it), so what is left is news."""
    if step.metrics is None or step.status is Status.SKIP:
        return step.reason
    said = {
        threshold_clause(gate, step.metrics.value(gate.metric))[1]
        for gate in report.gates
        if gate.kind in (GateKind.MIN, GateKind.MAX)
    }
    return "; ".join(part for part in step.reason.split("; ") if part not in said)


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
        return f"scan: the timeline is monotone ({report.scan.shape(report.steps)})"
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
    thresholds = _thresholds(report)
    metric_cells = [_metric_cells(s, thresholds) for s in steps]
    with_p = any(s.p_values for s in steps)
    fixed = [
        ("#", [str(s.index) for s in steps]),
        ("id", [short_identity(report, s.index) for s in steps]),
        ("status", [s.status.value for s in steps]),
        *((spec.name, [cells[k] for cells in metric_cells]) for k, spec in enumerate(CATALOGUE)),
        *([("p-values", [_p_text(s) for s in steps])] if with_p else []),
    ]
    labels = [printable(s.label) for s in steps]
    reasons = [printable(_table_reason(report, s)) for s in steps]
    with_reasons = any(reasons)
    # Each column costs its width plus one space either side; columns are one rule apart.
    numbers = sum(_width(head, cells) + 2 for head, cells in fixed) + len(fixed)
    label_room = console.width - numbers - 2
    in_table = _longest_word(labels) <= label_room
    label_width = min(_width("model", labels), label_room) if in_table else 0
    reason_room = console.width - numbers - (label_width + 3 if in_table else 0) - 2
    # Labels below the table take their reasons with them: one paragraph per model.
    reasons_in_table = in_table and with_reasons and _longest_word(reasons) <= reason_room

    table = Table(show_edge=False)
    table.add_column("#", justify="right", no_wrap=True)
    if in_table:
        table.add_column("model", min_width=min(_longest_word(labels), label_room))
    table.add_column("id", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for spec in CATALOGUE:
        table.add_column(spec.name, justify="right", no_wrap=True)
    if with_p:
        table.add_column("p-values", no_wrap=True)
    if reasons_in_table:
        table.add_column("reason", min_width=_longest_word(reasons), ratio=1)
    for step, label, reason, values in zip(steps, labels, reasons, metric_cells, strict=True):
        cells = [Text(str(step.index))]
        if in_table:
            cells.append(Text(label))
        cells.append(Text(short_identity(report, step.index)))
        cells.append(Text(step.status.value, style=_STATUS_COLOUR[step.status]))
        failing = _failing_metrics(report, step)
        cells += [
            Text(v, style="red" if spec.name in failing else "")
            for spec, v in zip(CATALOGUE, values, strict=True)
        ]
        if with_p:
            cells.append(Text(_p_text(step)))
        if reasons_in_table:
            cells.append(Text(reason))
        table.add_row(*cells)
    console.print(table)
    # What did not fit beside the numbers, one model per paragraph.
    for step, label, reason in zip(steps, labels, reasons, strict=True):
        if in_table:
            if reason and not reasons_in_table:
                console.print(Text(f"#{step.index}: {reason}"))
            continue
        console.print(Text(f"#{step.index} {label}"))
        console.print(Text(reason or step.status.value))
    _print_slice(report, console)
    _print_culprit(report, console)


def _print_slice(report: Report, console: Console) -> None:
    """The worst slice of the first bad model (else the newest visited) under the table."""
    from .slices import shown_slice, slice_sentence

    shown = shown_slice(report)
    if shown is None:
        return
    from rich.text import Text

    # one greppable line in a log or a pipe; wrapped at words on a terminal
    console.print(
        Text(printable(slice_sentence(report, *shown))), soft_wrap=not console.is_terminal
    )


def _print_culprit(report: Report, console: Console) -> None:
    """The culprit summary under the table (only for a localised regression)."""
    if report.culprit is None:
        return
    from rich.text import Text

    from ..culprit.render import terminal_lines

    labels = {ref.index: ref.label for ref in report.timeline}
    for line in terminal_lines(report.culprit, labels):
        # In a log or a pipe, one greppable line each; on a terminal, wrapped at words (a
        # terminal would cut a long line wherever column 80 falls), continued under the text.
        shown = printable(line)
        if not console.is_terminal:
            console.print(Text(shown), soft_wrap=True)
            continue
        indent = " " * (len(shown) - len(shown.lstrip(" ")) + 2)
        wrapped = textwrap.wrap(
            shown,
            width=console.width,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
        for part in wrapped:
            console.print(Text(part), soft_wrap=True)
