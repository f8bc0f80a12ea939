"""The culprit section where people look: a few terminal lines, a collapsed Markdown block
for the comment and the job summary, one line for ``$GITHUB_OUTPUT``.

Only the headline facts: the three largest graph changes, the worst decile and slice, the
agreement, and (Markdown only) the worst rows. The report JSON holds the rest. Text from the
models (names, labels) reaches Markdown only through the caller's ``escape``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from .record import Culprit, SliceChange

__all__ = ["details_lines", "one_line", "terminal_lines"]

GRAPH_SHOWN = 3
ROWS_SHOWN = 5


def _n(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"


def _slice(s: SliceChange) -> str:
    name = s.value if s.column == "target decile" else f"{s.column} = {s.value}"
    return (
        f"{name}: rmse {_n(s.rmse_before)} -> {_n(s.rmse_after)}, "
        f"plcc {_n(s.plcc_before)} -> {_n(s.plcc_after)} ({s.rows} rows)"
    )


def _graph(culprit: Culprit) -> list[str]:
    if culprit.graph_error and not culprit.graph:
        return [f"graph not compared: {culprit.graph_error}"]
    if not culprit.graph:
        return ["graph: no computing difference (same graph and weights)"]
    lines = [c.detail for c in culprit.graph[:GRAPH_SHOWN]]
    more = len(culprit.graph) - GRAPH_SHOWN
    if more > 0:
        lines.append(f"... and {more} more change{'s' if more > 1 else ''} in the report")
    return lines


def _agreement(culprit: Culprit) -> str:
    a = culprit.agreement
    return (
        f"agreement: plcc {_n(a.plcc)} between the two, mean |diff| {_n(a.mean_abs)}, "
        f"max |diff| {_n(a.max_abs)}"
    )


def _facts(culprit: Culprit) -> list[str]:
    lines = []
    if culprit.deciles:
        lines.append(f"worst decile: {_slice(culprit.deciles[0])}")
    if culprit.slices:
        lines.append(f"worst slice: {_slice(culprit.slices[0])}")
    return [*lines, _agreement(culprit)]


def _pair(culprit: Culprit, labels: Mapping[int, str]) -> str:
    good, bad = culprit.last_good_index, culprit.first_bad_index
    return f"#{good} ({labels.get(good, '?')}) -> #{bad} ({labels.get(bad, '?')})"


def terminal_lines(culprit: Culprit, labels: Mapping[int, str]) -> list[str]:
    """Plain lines for under the table (the caller makes them printable)."""
    lines = [f"culprit: {_pair(culprit, labels)}"]
    lines += [f"  {line}" for line in _graph(culprit)]
    return [*lines, *(f"  {line}" for line in _facts(culprit))]


def details_lines(
    culprit: Culprit, labels: Mapping[int, str], escape: Callable[[str], str]
) -> list[str]:
    """A collapsed ``<details>`` block; ``escape`` makes one untrusted line safe Markdown."""
    lines = [
        "<details><summary>Culprit: what changed from the last good to the first bad model"
        "</summary>",
        "",
        f"{escape(_pair(culprit, labels))}",
        "",
        *(f"- {escape(line)}" for line in [*_graph(culprit), *_facts(culprit)]),
    ]
    if culprit.rows:
        head = "id | " if culprit.row_id_column else ""
        lines += [
            "",
            f"| row | {head}target | before | after | error growth |",
            f"|---:|{'---|' if head else ''}---:|---:|---:|---:|",
        ]
        for r in culprit.rows[:ROWS_SHOWN]:
            ident = f"{escape(r.row_id or '')} | " if head else ""
            lines.append(
                f"| {r.row} | {ident}{_n(r.target)} | {_n(r.before)} | {_n(r.after)} "
                f"| {_n(r.growth)} |"
            )
    return [*lines, "", "</details>"]


def one_line(culprit: Culprit) -> str:
    """``culprit_summary`` for ``$GITHUB_OUTPUT``: the largest change, the worst groups and
    the agreement, on one line."""
    parts = []
    if culprit.graph:
        first = culprit.graph[0]
        more = f" (+{len(culprit.graph) - 1} more)" if len(culprit.graph) > 1 else ""
        parts.append(f"{first.kind} {first.name}{more}")
    elif culprit.graph_error:
        parts.append("graph not compared")
    else:
        parts.append("graph unchanged")
    for label, found in (("worst decile", culprit.deciles), ("worst slice", culprit.slices)):
        if found:
            s = found[0]
            name = s.value if s.column == "target decile" else f"{s.column}={s.value}"
            parts.append(f"{label} {name} rmse {_n(s.rmse_before)}->{_n(s.rmse_after)}")
    parts.append(f"agreement plcc {_n(culprit.agreement.plcc)}")
    return "; ".join(" ".join(p.split()) for p in parts)
