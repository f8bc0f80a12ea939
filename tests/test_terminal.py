"""The terminal view, rendered from a report alone."""

from __future__ import annotations

import io
import re

from rich.console import Console

from model_bisect.report import VerdictKind
from model_bisect.terminal import print_report
from tests.reportkit import make_report


def test_print_report_shows_verdict_gates_and_labels_literally() -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    print_report(make_report(labels=[f"[red]m{i}[/red]" for i in range(8)]), console)
    text = out.getvalue()
    assert text.startswith("regression: verdict regression")
    assert "gates: plcc >= 0.85; 8 models, 8 evaluated" in text
    assert "[red]m5[/red]" in text
    assert "0.5500" in text


def test_terminal_table_shows_a_dash_for_a_skipped_model_and_every_metric() -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    print_report(make_report(candidates=(2,), kind=VerdictKind.INCONCLUSIVE), console)
    lines = [re.sub(r"[│┃━─╇┡┩╷╵┼╋]", " ", line) for line in out.getvalue().splitlines()]
    header = next(line for line in lines if "model" in line and "status" in line)
    assert header.split()[:7] == ["#", "model", "status", "plcc", "srocc", "krocc", "rmse"]
    skipped = next(line for line in lines if "model_02" in line)
    assert skipped.split()[2:7] == ["skip", "-", "-", "-", "-"]
    good = next(line for line in lines if "model_01" in line)
    assert good.split()[3:7] == ["0.9190", "0.8990", "0.8190", "0.4000"]
