"""The terminal view, rendered from a report alone."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest
from rich.console import Console

from model_bisect.publishing.terminal import print_report
from model_bisect.report import Report, ScanSummary, VerdictKind
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
    assert header.split()[:8] == ["#", "model", "id", "status", "plcc", "srocc", "krocc", "rmse"]
    skipped = next(line for line in lines if "model_02" in line)
    assert skipped.split()[3:8] == ["skip", "-", "-", "-", "-"]
    good = next(line for line in lines if "model_01" in line)
    assert good.split()[4:8] == ["0.9190", "0.8990", "0.8190", "0.4000"]


LONG_LABELS = [
    f"models/tiny/fr_regressor_v2_ensemble_seed{i}_trained_on_the_full_codec_grid.onnx"
    for i in range(8)
]
LONG_REASON = (
    "plcc 0.550 < 0.85; cubic mapping fell back to linear; "
    "same bytes as an earlier model: evaluated once"
)


def _render(report: Report, width: int) -> str:
    out = io.StringIO()
    print_report(report, Console(file=out, width=width, color_system=None))
    return out.getvalue()


@pytest.mark.parametrize(
    "labels",
    [
        LONG_LABELS,  # one long word each: no room beside the numbers
        [f"abc123{i} retrain the codec aware regressor on more data" for i in range(8)],
        [f"m{i}.onnx" for i in range(8)],
    ],
)
def test_at_80_columns_every_word_of_labels_and_reasons_appears_whole(labels: list[str]) -> None:
    report = make_report(labels=labels, reason=LONG_REASON, visited=[0, 4, 5, 7], p_values=True)
    text = _render(report, 80)
    assert max(len(line) for line in text.splitlines()) <= 80
    words = set(text.split())
    for step in report.steps:
        for word in [*step.label.split(), *step.reason.split()]:
            assert word in words, f"{word!r} was cut"
    for metric in ("0.9200", "0.5500", "0.4000"):
        assert metric in words


def test_a_wide_console_keeps_reasons_in_the_table() -> None:
    report = make_report(labels=[f"m{i}.onnx" for i in range(8)], reason=LONG_REASON)
    header = next(line for line in _render(report, 200).splitlines() if "status" in line)
    assert "reason" in header
    narrow = _render(report, 80)
    assert "reason" not in next(line for line in narrow.splitlines() if "status" in line)
    assert "#5: plcc 0.550 < 0.85; cubic mapping fell back" in narrow


def test_scan_finding_is_printed_on_the_terminal() -> None:
    report = make_report()
    broken = replace(report, scan=ScanSummary(monotone=False, violations=(6,)))
    assert "scan: not monotone: good models follow a bad one at #6 (model_06)" in _render(
        broken, 120
    )
    fine = replace(report, scan=ScanSummary(monotone=True, violations=()))
    assert "scan: the timeline is monotone" in _render(fine, 120)
    assert "scan:" not in _render(report, 120)


def test_summary_counts_skipped_models_and_names_the_requested_mapping() -> None:
    report = make_report(candidates=(2,), kind=VerdictKind.INCONCLUSIVE)
    report = replace(report, settings={"mapping": "cubic", "target": "mos"})
    text = _render(report, 200)
    assert "gates: plcc >= 0.85 (mapping: cubic); 8 models, 8 evaluated, 8 visited, 1 skipped" in (
        text
    )


def test_a_cell_agrees_with_its_gate_and_the_reason_drops_what_the_table_says() -> None:
    from model_bisect.catalogue import GateKind
    from model_bisect.gates import judge
    from model_bisect.report import GateSpec, Step
    from tests.reportkit import metrics_of

    gates = (GateSpec("plcc", GateKind.MIN, 0.99999), GateSpec("plcc", GateKind.MAX_DROP, 0.5))
    report = make_report(gates=gates, visited=[0, 7])
    anchor = metrics_of(0.999995, 0.99, 0.9, 0.1)
    metrics = metrics_of(0.999986, 0.99, 0.9, 0.1)
    status, reason = judge(metrics, gates, anchor=anchor)
    head = replace(report.steps[-1], metrics=metrics, status=status, reason=reason)
    steps: tuple[Step, ...] = (report.steps[0], head)
    text = _render(replace(report, steps=steps), 80)
    row = next(line for line in text.splitlines() if line.lstrip().startswith("7 "))
    assert "plcc 0.999986 < 0.99999" in reason  # the clause the table makes redundant...
    assert "0.999986" in row.split()  # ...the cell says it with the gate's decimals
    assert "1.0000" not in row.split()
    assert "< 0.99999" not in text  # and the clause is not printed again
    assert "drop" in text  # what the numbers do not say stays
