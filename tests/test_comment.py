"""The sticky comment body, rendered from a report (or a failed nightly's log) alone."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_bisect.errors import UsageError
from model_bisect.publishing.comment import (
    marker,
    render_markdown,
    render_wiring_broke,
    run_url_from_env,
)
from model_bisect.report import GateSpec, Invocation, Status, VerdictKind
from tests.reportkit import HOSTILE, make_report


def table_rows(body: str) -> list[str]:
    return [line for line in body.splitlines() if re.match(r"\| \d+ \|", line)]


def test_marker_is_an_html_comment_with_the_key() -> None:
    assert marker("nightly") == "<!-- model-bisect:nightly -->"
    assert marker("gpu.v2_x-1") == "<!-- model-bisect:gpu.v2_x-1 -->"


@pytest.mark.parametrize("key", ["", "a b", "x-->", "<!--", "näme", "a\nb"])
def test_marker_rejects_keys_that_could_break_the_comment(key: str) -> None:
    with pytest.raises(UsageError, match="--marker"):
        marker(key)


def test_body_starts_with_the_marker_then_the_verdict() -> None:
    body = render_markdown(make_report(), marker_key="gpu")
    lines = body.splitlines()
    assert lines[0] == "<!-- model-bisect:gpu -->"
    assert lines[1] == "### 🔴 Regression at index 5: <code>model&#95;05</code>"
    assert "Last good model: #4 <code>model&#95;04</code>." in body


@pytest.mark.parametrize(
    ("kind", "first_bad", "candidates", "headline"),
    [
        (VerdictKind.NO_REGRESSION, None, (), "### ✅ No regression"),
        (VerdictKind.REGRESSION, 3, (), "### 🔴 Regression at index 3"),
        (VerdictKind.HEAD_BAD, 0, (), "### 🔴 Head bad: the first model #0"),
        (VerdictKind.INCONCLUSIVE, 5, (3, 4), "### 🟡 Inconclusive"),
    ],
)
def test_headline_names_each_verdict_kind(
    kind: VerdictKind, first_bad: int | None, candidates: tuple[int, ...], headline: str
) -> None:
    body = render_markdown(make_report(kind=kind, first_bad=first_bad, candidates=candidates))
    assert body.splitlines()[1].startswith(headline)
    if candidates:
        assert "Candidates for the first bad model: #3 <code>" in body


def test_body_carries_gates_counts_table_toolchain_link_and_reproduction() -> None:
    invoked = Invocation(("run", "models"), "0.1.0", ".", True, "invoke nightly")
    report = replace(make_report(visited=[0, 4, 5, 7]), invocation=invoked)
    body = render_markdown(report, run_url="https://github.com/acme/models/actions/runs/42")
    assert "**Gates:** plcc &gt;= 0.85" in body
    assert "8 in the timeline · 4 evaluated · 4 visited" in body
    assert [row.split("|")[1].strip() for row in table_rows(body)] == ["0", "4", "5", "7"]
    assert (
        "| 5 | <code>model&#95;05</code> | <code>00000000</code> | ❌ bad"
        " | 0.5500 | 0.5300 | 0.4500 | 0.4000 |" in body
    )
    assert "python 3.11.9" in body
    assert "[workflow run](https://github.com/acme/models/actions/runs/42)" in body
    assert "reproduce locally: <code>invoke nightly</code> (from the repository root)" in body


def test_p_values_column_appears_only_when_a_step_has_one() -> None:
    with_p = render_markdown(make_report(p_values=True))
    assert "| p-values |" in with_p
    assert "plcc 0.0123" in with_p
    assert "p-values" not in render_markdown(make_report())


def test_chart_plots_the_gated_metric_with_the_threshold_line() -> None:
    body = render_markdown(make_report(visited=[0, 4, 5, 7]))
    chart = body[body.index("```mermaid") : body.index("```", body.index("```mermaid") + 3)]
    assert "xychart-beta" in chart
    assert 'x-axis "model index" ["0", "4", "5", "7"]' in chart
    assert "line [0.9200, 0.9160, 0.5500, 0.5300]" in chart
    assert "line [0.8500, 0.8500, 0.8500, 0.8500]" in chart


def test_chart_has_no_threshold_line_for_a_relative_gate() -> None:
    body = render_markdown(make_report(gates=(GateSpec("srocc", "max_drop", 0.05),)))
    chart = body[body.index("```mermaid") :]
    assert 'y-axis "srocc"' in chart
    assert chart.count("    line [") == 1


def test_hostile_labels_cannot_break_table_chart_or_marker() -> None:
    labels = [f"{HOSTILE} {i}" for i in range(8)]
    report = make_report(labels=labels, reason=HOSTILE, message=HOSTILE)
    body = render_markdown(report)
    assert body.splitlines()[0] == "<!-- model-bisect:nightly -->"
    assert body.count("<!--") == 1
    outside_chart = body[: body.index("```mermaid")] + body[body.rindex("```") :]
    assert outside_chart.count("-->") == 1  # the chart's own `lo --> hi` range aside
    assert "<script>" not in body
    assert "&lt;script&gt;" in body
    assert "@octocat" not in body  # nobody gets pinged by a model name
    rows = table_rows(body)
    assert len(rows) == 8
    assert all(row.count("|") == 10 for row in rows)  # 9 cells: no extra column from a label
    assert all("`" not in row for row in rows)
    assert "a&#124;b &#96;tick&#96; &lt;!-- x --&gt; line break" in body


@settings(max_examples=60, deadline=None)
@given(label=st.text(max_size=60))
def test_any_label_keeps_one_marker_and_a_nine_cell_row(label: str) -> None:
    body = render_markdown(make_report(n=2, first_bad=1, labels=[label, label]))
    assert body.startswith("<!-- model-bisect:nightly -->\n")
    assert body.count("<!--") == 1
    rows = table_rows(body)
    assert len(rows) == 2
    assert all(row.count("|") == 10 for row in rows)


def test_oversized_report_is_cut_to_the_limit_keeping_the_verdict() -> None:
    n = 3000
    labels = [f"checkpoint-{i:05d}-" + "x" * 60 for i in range(n)]
    report = make_report(n, first_bad=1500, labels=labels)
    body = render_markdown(report)
    assert len(body) <= 65536
    assert body.splitlines()[1].startswith(
        "### 🔴 Regression at index 1500: <code>checkpoint-01500"
    )
    match = re.search(r"_(\d+) of 3000 rows cut to stay under 65,536 characters", body)
    assert match is not None
    kept = [int(row.split("|")[1]) for row in table_rows(body)]
    assert len(kept) == 3000 - int(match[1])
    assert {1499, 1500} <= set(kept)  # the rows around the boundary survive the cut
    assert kept == sorted(kept)


def test_small_limit_cuts_rows_but_still_fits() -> None:
    body = render_markdown(make_report(), limit=1500)
    assert len(body) <= 1500
    assert "rows cut" in body
    assert "### 🔴 Regression at index 5" in body


def test_wiring_broke_shows_the_log_tail_in_an_unclosable_fence() -> None:
    log = "\n".join(f"line {i}" for i in range(500)) + "\n````\nnot code\n\x1b[31mred\x1b[0m\n"
    body = render_wiring_broke(log, stage="check", run_url="https://github.com/a/b/actions/runs/1")
    lines = body.splitlines()
    assert lines[0] == "<!-- model-bisect:nightly -->"
    assert (
        lines[1]
        == "### 🛠️ Wiring broke in stage <code>check</code>: the nightly produced no verdict"
    )
    assert "(last 200 of 503 lines)" in body
    assert "line 303" in body
    assert "line 302\n" not in body
    assert "`````text" in body  # longer than the log's own ```` so the log cannot close it
    assert "\x1b" not in body
    assert "red" in body
    assert "[workflow run](https://github.com/a/b/actions/runs/1)" in body


def test_wiring_broke_redacts_github_token_shapes_and_caps_size() -> None:
    token = "ghp_" + "A1b2" * 9
    log = ("x" * 300 + "\n") * 1000 + f"Authorization: token {token}\n"
    body = render_wiring_broke(log, limit=5000)
    assert len(body) <= 5000
    assert token not in body
    assert "Authorization: token ***" in body


def test_secrets_are_redacted_before_escaping_could_disguise_them() -> None:
    secret = "ghp_fake_token_for_tests"
    shaped = "github_pat_" + "Z9" * 20
    report = make_report(labels=[f"m{i} {secret}" for i in range(8)], reason=shaped, message=secret)
    body = render_markdown(report, secrets=[secret])
    assert secret not in body
    assert "ghp&#95;fake" not in body  # the escaped form would still render as the token
    assert "github&#95;pat" not in body
    assert "<code>m5 &#42;&#42;&#42;</code>" in body
    log = render_wiring_broke(f"token={secret}\n", stage=secret, secrets=[secret])
    assert secret not in log
    assert "token=***" in log


def test_wiring_broke_with_an_empty_log_still_says_so() -> None:
    body = render_wiring_broke("")
    assert "Wiring broke" in body
    assert "error log is empty" in body


def test_run_url_needs_all_three_variables() -> None:
    env = {
        "GITHUB_SERVER_URL": "https://github.com/",
        "GITHUB_REPOSITORY": "acme/models",
        "GITHUB_RUN_ID": "99",
    }
    assert run_url_from_env(env) == "https://github.com/acme/models/actions/runs/99"
    assert run_url_from_env({k: v for k, v in env.items() if k != "GITHUB_RUN_ID"}) is None


def test_reproduce_line_is_the_command_that_produced_the_report() -> None:
    argv = ("run", "--git-path", "models/m.onnx", "--features", "/data/f 1.parquet")
    invoked = Invocation(argv, "0.1.0", "sub/dir", True)
    body = render_markdown(replace(make_report(), invocation=invoked))
    expected = "model-bisect run --git-path models/m.onnx --features &#x27;/data/f 1.parquet&#x27;"
    assert f"reproduce locally: <code>{expected}</code>" in body
    assert "(from <code>sub/dir</code> in the repository)" in body
    assert "invoke nightly" not in body


def test_report_without_a_recorded_command_names_none() -> None:
    body = render_markdown(make_report())
    assert "reproduce locally" not in body
    assert "invoke nightly" not in body


def test_no_regression_after_a_skipped_head_names_the_newest_good_model() -> None:
    report = make_report(4, kind=VerdictKind.NO_REGRESSION, first_bad=None, candidates=(0,))
    report = replace(report, verdict=replace(report.verdict, candidates=(), last_good_index=3))
    head = render_markdown(report).splitlines()[1]
    assert head == (
        "### ✅ No regression: #3 <code>model&#95;03</code> passes every gate;"
        " 1 skipped model could not be tested"
    )
    assert "every gate holds up to" not in head


def test_all_skipped_lists_no_candidates_and_counts_nothing_as_evaluated() -> None:
    report = make_report(2, kind=VerdictKind.INCONCLUSIVE, first_bad=None, candidates=(0, 1))
    report = replace(
        report,
        evaluations=0,
        verdict=replace(report.verdict, candidates=(), last_good_index=None),
    )
    assert all(step.status is Status.SKIP for step in report.steps)
    body = render_markdown(report)
    assert body.splitlines()[1] == "### 🟡 Inconclusive: no model could be evaluated"
    assert "Candidates" not in body
    assert "2 in the timeline · 0 evaluated · 2 visited · 2 skipped" in body


def test_inconclusive_without_a_failing_model_does_not_speak_of_a_bad_one() -> None:
    report = make_report(3, kind=VerdictKind.INCONCLUSIVE, first_bad=None, candidates=(2,))
    report = replace(report, verdict=replace(report.verdict, last_good_index=1))
    body = render_markdown(report)
    head = body.splitlines()[1]
    assert head == "### 🟡 Inconclusive: no tested model failed, but skipped models were not tested"
    assert "Not tested: #2 <code>model&#95;02</code>." in body
    assert "first bad" not in body.split("#### Steps")[0]
