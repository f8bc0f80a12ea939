"""What the sticky comment remembers: the last nights' verdicts, kept in the comment itself.

The history travels as one hidden line, ``<!-- model-bisect:history:v1 BASE64 -->``, the
body's last, where BASE64 is URL-safe base64 of ``{"runs": [...]}`` (oldest first). Keeping
it in the comment needs no branch, artifact or service, and whoever can read the issue can
read the history, so it holds only what the comment already shows: dates, verdicts, model
labels and the newest evaluated model's metrics.

Everything here is pure. Reading never fails: a missing, corrupt or oversized line starts a
new history, because a lost memory must never stop tonight's verdict from being published.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..catalogue import CATALOGUE
from ..report import Report

__all__ = [
    "MAX_RUNS",
    "WIRING_BROKE",
    "History",
    "Run",
    "append_run",
    "encode_history",
    "iso_date",
    "read_history",
    "run_from_report",
    "wiring_broke_run",
]

MAX_RUNS = 30  # a month of nightlies: enough to see when a slide began
WIRING_BROKE = "wiring_broke"  # the verdict of a night whose chain failed before a verdict
MAX_LINE_CHARS = 65_536  # no comment holds more, so a longer line was not written by us
LABEL_CHARS = 120  # labels are cut so one odd model name cannot crowd out the other nights
_PREFIX = "<!-- model-bisect:history:v1 "
_LINE = re.compile(r"<!-- model-bisect:history:v1 ([A-Za-z0-9_-]*={0,2}) -->")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_VERDICT = re.compile(r"[a-z_]{1,40}")
_MAX_INDEX = 10**9  # no timeline has more models; JSON integers have no bound at all


@dataclass(frozen=True)
class Run:
    """One night as the history keeps it; ``metrics`` are those of the newest evaluated model."""

    date: str  # UTC, ISO 8601 to the second: 2026-11-26T03:00:00Z
    verdict: str  # a VerdictKind value, or WIRING_BROKE
    first_bad_index: int | None = None
    first_bad_label: str | None = None
    head_label: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "date": self.date,
            "verdict": self.verdict,
            "first_bad_index": self.first_bad_index,
            "first_bad_label": self.first_bad_label,
            "head_label": self.head_label,
            "metrics": dict(self.metrics),
        }

    @classmethod
    def from_json(cls, data: object) -> Run:
        """The record ``to_json`` wrote; ValueError for anything else."""
        if not isinstance(data, dict):
            raise ValueError("a run is a JSON object")
        date, verdict = data.get("date"), data.get("verdict")
        if not isinstance(date, str) or not _DATE.fullmatch(date):
            raise ValueError(f"bad date {date!r}")
        if not isinstance(verdict, str) or not _VERDICT.fullmatch(verdict):
            raise ValueError(f"bad verdict {verdict!r}")
        index = data.get("first_bad_index")
        if index is not None and (type(index) is not int or not 0 <= index <= _MAX_INDEX):
            raise ValueError(f"bad first_bad_index {index!r}")
        metrics = data.get("metrics") or {}
        if not isinstance(metrics, dict) or not all(
            isinstance(k, str) and type(v) in (int, float) and math.isfinite(v)
            for k, v in metrics.items()
        ):
            raise ValueError("metrics map names to finite numbers")
        return cls(
            date=date,
            verdict=verdict,
            first_bad_index=index,
            first_bad_label=_label(data.get("first_bad_label")),
            head_label=_label(data.get("head_label")),
            metrics={k: float(v) for k, v in metrics.items() if k in CATALOGUE},
        )


@dataclass(frozen=True)
class History:
    """The nights remembered, oldest first; ``restarted`` says why an earlier one was lost."""

    runs: tuple[Run, ...] = ()
    restarted: str | None = None  # None, "missing", "corrupt" or "too large"


def _label(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"a label is a string, not {type(value).__name__}")
    return value[:LABEL_CHARS]


def iso_date(moment: datetime) -> str:
    """A moment as the history writes it: UTC, to the second, with a Z."""
    if moment.tzinfo is None:
        raise ValueError("the run's date needs a time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_from_report(report: Report, date: str) -> Run:
    """Tonight's entry. Pass a report already redacted: its labels are stored as they are."""
    v = report.verdict
    labels = {ref.index: ref.label for ref in report.timeline}
    labels.update({s.index: s.label for s in report.steps if s.index not in labels})
    newest = next((s for s in reversed(report.steps) if s.metrics is not None), None)
    metrics: dict[str, float] = {}
    if newest is not None and newest.metrics is not None:
        for name in CATALOGUE.names:
            value = newest.metrics.value(name)
            if math.isfinite(value):
                metrics[name] = float(f"{value:.6g}")  # six digits: the comment shows four
    head = report.timeline[-1].label if report.timeline else None
    first_bad = v.first_bad_index
    return Run(
        date=_checked_date(date),
        verdict=v.kind.value,
        first_bad_index=first_bad,
        first_bad_label=_label(labels.get(first_bad)) if first_bad is not None else None,
        head_label=_label(head),
        metrics=metrics,
    )


def wiring_broke_run(date: str) -> Run:
    """A night that produced no verdict still counts: it is a gap the maintainer must see."""
    return Run(date=_checked_date(date), verdict=WIRING_BROKE)


def _checked_date(date: str) -> str:
    if not _DATE.fullmatch(date):
        raise ValueError(f"the run's date {date!r} is not like 2026-11-26T03:00:00Z")
    return date


def read_history(body: str | None) -> History:
    """The history on the body's last non-blank line; any fault there starts a new one."""
    if not body:
        return History(restarted="missing")
    lines = [line for line in body.splitlines() if line.strip()]
    last = lines[-1].strip() if lines else ""
    if not last.startswith(_PREFIX):
        return History(restarted="missing")
    if len(last) > MAX_LINE_CHARS:
        return History(restarted="too large")  # checked before decoding anything
    match = _LINE.fullmatch(last)
    if match is None:
        return History(restarted="corrupt")
    try:
        raw = base64.b64decode(match[1], altchars=b"-_", validate=True)
        data = json.loads(raw.decode("utf-8"))
        entries = data["runs"] if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise ValueError("no runs list")
        runs = tuple(Run.from_json(entry) for entry in entries)
    except (binascii.Error, UnicodeDecodeError, ValueError, KeyError, RecursionError):
        return History(restarted="corrupt")
    except OverflowError:  # a JSON integer beyond float range where a metric belongs
        return History(restarted="corrupt")
    return History(runs=runs[-MAX_RUNS:])


def append_run(history: History, run: Run, keep: int = MAX_RUNS) -> History:
    """Tonight's run after the others, keeping the newest ``keep``."""
    runs = (*history.runs, run)
    return History(runs=runs[-keep:] if keep > 0 else (), restarted=history.restarted)


def encode_history(runs: Sequence[Run]) -> str:
    """The hidden line; its alphabet (letters, digits, ``-_=``) cannot close the comment."""
    payload = json.dumps(
        {"runs": [r.to_json() for r in runs]},
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    text = base64.urlsafe_b64encode(payload.encode("utf-8")).decode("ascii")
    return f"{_PREFIX}{text} -->"
