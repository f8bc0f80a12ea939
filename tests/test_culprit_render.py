"""The culprit summary where people look: terminal, comment, job summary, step outputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from model_bisect.errors import UsageError
from model_bisect.exitcodes import ExitCode
from model_bisect.publishing.comment import render_markdown
from model_bisect.report import read_report
from tests.clirun import call_main, run_module
from tests.culpritkit import features, timeline
from tests.test_actions import outputs_of, summary_of


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    features(tmp_path / "f.parquet")
    timeline(tmp_path / "models", first_bad=3)
    return tmp_path


def _args(folder: Path) -> list[str | Path]:
    return ["run", folder / "models", "--features", folder / "f.parquet", "--min-plcc", "0.97"]


def test_the_terminal_prints_the_culprit_under_the_table(folder: Path) -> None:
    ran = call_main("model_bisect", *_args(folder), "--no-cache")
    assert ran.code == ExitCode.OK, ran.err
    lines = ran.out.splitlines()
    start = lines.index("culprit: #2 (model_02.onnx) -> #3 (model_03.onnx)")
    assert any("model_03.onnx" in line and "bad" in line for line in lines[:start])
    below = lines[start + 1 :]
    assert below[0].startswith("  initializer W: 1 of 6 values changed")
    assert below[1].startswith("  worst decile: d")
    assert below[2].startswith("  worst slice: encoder = ")
    assert below[3].startswith("  agreement: plcc ")


def test_the_comment_folds_the_culprit_within_the_length_budget(folder: Path) -> None:
    out = folder / "r.json"
    ran = call_main("model_bisect", *_args(folder), "--no-cache", "--quiet", "--json", out)
    assert ran.code == ExitCode.OK, ran.err
    report = read_report(out)
    body = render_markdown(report)
    block = body[body.index("<details><summary>Culprit") :]
    assert "initializer W: 1 of 6 values changed" in block
    assert "| row | target | before | after | error growth |" in block
    assert block.index("</details>") > block.index("| row |")
    seen_without = False
    for limit in range(len(body) - 1, 400, -97):
        try:
            cut = render_markdown(report, limit=limit)
        except UsageError:  # below what the verdict alone needs
            break
        assert len(cut) <= limit
        assert "Regression at index 3" in cut
        if "<details><summary>Culprit" not in cut:
            seen_without = True
            assert "#### Steps" in cut  # the culprit goes before any table row
    assert seen_without


def test_actions_get_a_one_line_culprit_summary_and_the_block(folder: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GH_", "GITHUB_"))}
    env |= {
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(folder / "output"),
        "GITHUB_STEP_SUMMARY": str(folder / "summary.md"),
        "RUNNER_TEMP": str(folder),
    }
    ran = run_module("model_bisect", *_args(folder), "--no-cache", "--quiet", env=env)
    assert ran.code == ExitCode.OK, ran.err
    line = outputs_of(env)["culprit_summary"]
    assert "\n" not in line
    assert line.startswith("initializer_values W; worst decile d")
    assert "worst slice encoder=" in line
    assert "<details><summary>Culprit" in summary_of(env)
