"""The sticky comment's memory: its history line, and "Recent runs" in the rendered body."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from model_bisect.catalogue import GateKind
from model_bisect.publishing.comment import (
    GITHUB_COMMENT_LIMIT,
    render_markdown,
    render_wiring_broke,
)
from model_bisect.publishing.history import (
    MAX_RUNS,
    WIRING_BROKE,
    History,
    Run,
    append_run,
    encode_history,
    iso_date,
    read_history,
    run_from_report,
    wiring_broke_run,
)
from model_bisect.report import GateSpec, VerdictKind
from tests.reportkit import HOSTILE, make_report

PLCC = {"plcc": 0.913, "srocc": 0.9, "krocc": 0.8, "rmse": 0.41}


def night(day: int, verdict: str = "no_regression", **fields: object) -> Run:
    values: dict[str, object] = {"head_label": "model_07", "metrics": PLCC, **fields}
    return Run(date=f"2026-11-{day:02d}T03:00:00Z", verdict=verdict, **values)  # type: ignore[arg-type]


def line_of(payload: bytes) -> str:
    return f"<!-- model-bisect:history:v1 {base64.urlsafe_b64encode(payload).decode()} -->"


def body_with(line: str) -> str:
    return f"<!-- model-bisect:nightly -->\n### ✅ No regression\n\n{line}\n"


def test_history_round_trips_through_its_line() -> None:
    runs = (
        night(1),
        night(2, "regression", first_bad_index=5, first_bad_label="ckpt-5 ünïcødé 🚀"),
        Run(date="2026-11-03T03:00:00Z", verdict=WIRING_BROKE),
    )
    history = read_history(body_with(encode_history(runs)))
    assert history == History(runs=runs)


def test_line_is_urlsafe_base64_of_the_documented_json_oldest_first() -> None:
    line = encode_history((night(1), night(2, "head_bad", first_bad_index=0)))
    match = re.fullmatch(r"<!-- model-bisect:history:v1 ([A-Za-z0-9_=-]+) -->", line)
    assert match is not None
    data = json.loads(base64.urlsafe_b64decode(match[1]))
    assert list(data) == ["runs"]
    assert [r["date"] for r in data["runs"]] == ["2026-11-01T03:00:00Z", "2026-11-02T03:00:00Z"]
    assert set(data["runs"][1]) == {
        "date",
        "verdict",
        "first_bad_index",
        "first_bad_label",
        "head_label",
        "metrics",
    }
    assert data["runs"][1]["verdict"] == "head_bad"
    assert data["runs"][1]["first_bad_index"] == 0


@pytest.mark.parametrize(
    "body",
    [None, "", "<!-- model-bisect:nightly -->\nno history here\n"],
    ids=["no-comment", "empty", "no-line"],
)
def test_missing_line_starts_a_new_history(body: str | None) -> None:
    assert read_history(body) == History(runs=(), restarted="missing")


@pytest.mark.parametrize(
    "line",
    [
        "<!-- model-bisect:history:v1 not*base64! -->",
        "<!-- model-bisect:history:v1 AAA -->",  # bad padding
        line_of(b"\xff\xfe not utf-8"),
        line_of(b"{not json"),
        line_of(b'["runs"]'),
        line_of(b'{"runs": {"date": "x"}}'),
        line_of(b'{"runs": [{"date": "yesterday", "verdict": "regression"}]}'),
        line_of(b'{"runs": [{"date": "2026-11-01T03:00:00Z", "verdict": "<b>"}]}'),
        line_of(
            b'{"runs": [{"date": "2026-11-01T03:00:00Z", "verdict": "regression",'
            b' "first_bad_index": "5"}]}'
        ),
        line_of(
            b'{"runs": [{"date": "2026-11-01T03:00:00Z", "verdict": "regression",'
            b' "metrics": {"plcc": "high"}}]}'
        ),
        line_of(b"[" * 20_000 + b"]" * 20_000),
        line_of(
            b'{"runs": [{"date": "2026-11-01T03:00:00Z", "verdict": "regression",'
            b' "metrics": {"plcc": ' + b"9" * 400 + b"}}]}"
        ),
        line_of(
            b'{"runs": [{"date": "2026-11-01T03:00:00Z", "verdict": "regression",'
            b' "first_bad_index": ' + b"9" * 400 + b"}]}"
        ),
    ],
    ids=[
        "alphabet",
        "padding",
        "utf8",
        "json",
        "not-object",
        "runs-not-list",
        "date",
        "verdict",
        "index-type",
        "metric-type",
        "deep-nesting",
        "metric-of-400-digits",
        "index-of-400-digits",
    ],
)
def test_corrupt_line_starts_a_new_history(line: str) -> None:
    assert read_history(body_with(line)) == History(runs=(), restarted="corrupt")


def test_oversized_line_is_refused_before_decoding() -> None:
    runs = [night(1, first_bad_label="x" * 100)] * 2000
    payload = json.dumps({"runs": [r.to_json() for r in runs]}).encode()
    line = line_of(payload)
    assert len(line) > GITHUB_COMMENT_LIMIT
    assert read_history(body_with(line)) == History(runs=(), restarted="too large")


def test_only_the_last_line_is_the_history() -> None:
    """Text later in the body (a human's edit, a log echoing a line) hides an earlier one."""
    line = encode_history((night(1),))
    assert read_history(body_with(line) + "edited by hand\n").restarted == "missing"


def test_a_history_line_inside_a_broken_nightlys_log_is_never_read() -> None:
    forged = encode_history(tuple(night(d, "no_regression") for d in range(1, 6)))
    log = f"step 1\n{forged}\n"
    bare = render_wiring_broke(log)
    assert forged in bare
    assert read_history(bare).restarted == "missing"
    mine = (night(20, "regression", first_bad_index=3),)
    with_history = render_wiring_broke(
        log, history=(*mine, wiring_broke_run("2026-11-21T03:00:00Z"))
    )
    assert [r.date[:10] for r in read_history(with_history).runs] == ["2026-11-20", "2026-11-21"]


def test_append_keeps_the_newest_thirty() -> None:
    history = History()
    for day in range(1, 36):
        history = append_run(history, night(day % 28 + 1, first_bad_index=day))
    assert len(history.runs) == MAX_RUNS
    assert [r.first_bad_index for r in history.runs] == list(range(6, 36))


def test_reading_more_than_thirty_runs_keeps_the_newest_thirty() -> None:
    runs = tuple(night(1, first_bad_index=i) for i in range(45))
    kept = read_history(body_with(encode_history(runs))).runs
    assert [r.first_bad_index for r in kept] == list(range(15, 45))


def test_run_from_report_keeps_the_newest_evaluated_models_metrics() -> None:
    # Visited 0, 3, 6 and 7, with 7 skipped: the newest model with metrics is 6 (bad).
    report = make_report(8, first_bad=5, visited=[0, 3, 6, 7], candidates=(7,))
    run = run_from_report(report, "2026-11-26T03:00:00Z")
    assert run.verdict == "regression"
    assert (run.first_bad_index, run.first_bad_label, run.head_label) == (5, "model_05", "model_07")
    assert run.metrics["plcc"] == pytest.approx(0.6 - 0.06)
    assert set(run.metrics) == {"plcc", "srocc", "krocc", "rmse"}


def test_run_from_a_green_report_has_no_first_bad() -> None:
    report = make_report(4, kind=VerdictKind.NO_REGRESSION, first_bad=None)
    run = run_from_report(report, "2026-11-26T03:00:00Z")
    assert (run.verdict, run.first_bad_index, run.first_bad_label) == ("no_regression", None, None)
    assert run.metrics["plcc"] == pytest.approx(0.92 - 0.003)


def test_wiring_broke_run_records_only_date_and_verdict() -> None:
    run = wiring_broke_run("2026-11-26T03:00:00Z")
    assert run.to_json() == {
        "date": "2026-11-26T03:00:00Z",
        "verdict": "wiring_broke",
        "first_bad_index": None,
        "first_bad_label": None,
        "head_label": None,
        "metrics": {},
    }


def test_dates_are_utc_to_the_second() -> None:
    moment = datetime(2026, 11, 26, 5, 30, 12, 999, tzinfo=timezone(timedelta(hours=2)))
    assert iso_date(moment) == "2026-11-26T03:30:12Z"
    with pytest.raises(ValueError, match="time zone"):
        iso_date(datetime(2026, 11, 26))
    with pytest.raises(ValueError, match="not like"):
        wiring_broke_run("26/11/2026")
    assert iso_date(datetime.now(UTC)).endswith("Z")


# -- "Recent runs" in the body ------------------------------------------------------------


def _section(body: str) -> str:
    start = body.index("#### Recent runs")
    return body[start : body.index("#### Steps", start)]


def test_a_red_night_after_green_nights_shows_both_in_strip_and_chart() -> None:
    greens = tuple(night(d, metrics={**PLCC, "plcc": 0.91 + d / 1000}) for d in (22, 23, 24))
    red_metrics = {**PLCC, "plcc": 0.54}
    red = night(
        25, "regression", first_bad_index=5, first_bad_label="model_05", metrics=red_metrics
    )
    body = render_markdown(make_report(), history=(*greens, red))
    section = _section(body)
    assert "✅✅✅🔴  " in section.splitlines()
    assert (
        "4 nights, oldest first, 2026-11-22 to 2026-11-25. ✅ no regression · 🔴 regression."
        in section
    )
    assert (
        "Red for 1 night, since 2026-11-25 (first bad then: #5 <code>model&#95;05</code>);"
        " the night before, 2026-11-24, was no regression." in section
    )
    assert "PLCC night by night (the first gate's metric, plcc &gt;= 0.85;" in section
    assert '    x-axis "night" ["11-22", "11-23", "11-24", "11-25"]' in section
    assert "    line [0.9320, 0.9330, 0.9340, 0.5400]" in section
    assert "    line [0.8500, 0.8500, 0.8500, 0.8500]" in section  # the gate's threshold
    assert body.rstrip("\n").splitlines()[-1] == encode_history((*greens, red))


def test_a_green_night_after_red_ones_says_no_streak_and_a_long_red_run_counts_nights() -> None:
    reds = tuple(night(d, "head_bad", first_bad_index=0, first_bad_label="m0") for d in (2, 3))
    recovered = render_markdown(make_report(), history=(night(1), *reds, night(4)))
    assert "✅⛔⛔✅" in recovered
    assert "Red for" not in recovered
    still_red = render_markdown(make_report(), history=reds)
    assert "Red for 2 nights, since 2026-11-02" in still_red
    assert "no earlier night is remembered" in still_red


def test_chart_follows_the_first_gate_and_skips_nights_without_its_metric() -> None:
    gates = (GateSpec("rmse", GateKind.MAX_DROP, 0.1), GateSpec("plcc", GateKind.MIN, 0.8))
    runs = (night(1), wiring_broke_run("2026-11-02T03:00:00Z"), night(3))
    section = _section(render_markdown(make_report(gates=gates), history=runs))
    assert "✅🛠️✅" in section
    assert "RMSE night by night (the first gate's metric, rmse drop &lt;= 0.1" in section
    assert '["11-01", "11-03"]' in section
    assert section.count("    line [") == 1  # a relative gate has no threshold to draw


def test_two_runs_on_one_day_are_told_apart_by_the_time() -> None:
    runs = (night(1), Run("2026-11-01T15:45:00Z", "no_regression", metrics=PLCC))
    assert '["11-01 03:00", "11-01 15:45"]' in render_markdown(make_report(), history=runs)


def test_labels_from_the_history_are_escaped() -> None:
    red = night(2, "regression", first_bad_index=1, first_bad_label=HOSTILE)
    body = render_markdown(make_report(), history=(night(1), red))
    section = _section(body)
    assert "<script>" not in section
    assert "<!-- x -->" not in section
    assert body.count("<!-- model-bisect:") == 2  # the marker and the history line
    assert read_history(body).runs[-1].first_bad_label == HOSTILE


def test_no_history_renders_no_section_and_no_line() -> None:
    body = render_markdown(make_report())
    assert "Recent runs" not in body
    assert read_history(body).restarted == "missing"


def test_history_is_trimmed_oldest_first_before_any_table_row() -> None:
    report = make_report(40)
    runs = tuple(night(d % 28 + 1, first_bad_index=d, first_bad_label="l" * 100) for d in range(30))
    fits_ten = len(render_markdown(report, history=runs[-10:]))
    body = render_markdown(report, history=runs, limit=fits_ten)
    assert read_history(body).runs == runs[-10:]
    assert "rows cut" not in body
    assert "| 39 |" in body
    assert "| 0 |" in body


def test_huge_report_and_history_stay_under_the_limit_with_the_verdict() -> None:
    labels = [f"checkpoint-{i:05d}-" + "y" * 80 for i in range(2500)]
    report = make_report(2500, first_bad=2000, labels=labels)
    runs = tuple(
        night(d % 28 + 1, "regression", first_bad_index=d, first_bad_label="z" * 120)
        for d in range(MAX_RUNS)
    )
    body = render_markdown(report, history=runs)
    assert len(body) <= GITHUB_COMMENT_LIMIT
    assert body.splitlines()[1].startswith("### 🔴 Regression at index 2000:")
    assert "rows cut to stay under 65,536 characters" in body
    assert read_history(body).restarted == "missing"  # the history went before the rows did


def test_wiring_broke_body_shows_the_strip_without_a_chart_and_keeps_the_log() -> None:
    runs = (
        night(1),
        night(2, "regression", first_bad_index=4),
        wiring_broke_run("2026-11-03T03:00:00Z"),
    )
    body = render_wiring_broke("Traceback\nValueError: drift\n", history=runs)
    assert "✅🔴🛠️" in body
    assert "🛠️ wiring broke" in body
    assert "mermaid" not in body
    assert "ValueError: drift" in body
    assert read_history(body).runs == runs


def test_wiring_broke_trims_history_before_the_log() -> None:
    runs = tuple(night(d % 28 + 1, first_bad_label="q" * 120) for d in range(MAX_RUNS))
    log = "\n".join(f"line {i} " + "v" * 90 for i in range(200))
    full = render_wiring_broke(log, history=runs)
    tight = render_wiring_broke(log, history=runs, limit=len(full) - 1)
    assert len(tight) <= len(full) - 1
    assert "line 199" in tight
    assert "last 200 of 200 lines" in tight
    assert read_history(tight).runs == runs[1:]


def test_a_verdict_from_a_newer_version_gets_its_own_symbol_not_an_error() -> None:
    runs = (night(1), Run("2026-11-02T03:00:00Z", "flaky_gate"))
    body = render_markdown(make_report(), history=runs)
    assert "✅❔" in body
    assert "❔ verdict unknown to this version" in body
    assert read_history(body).runs == runs
