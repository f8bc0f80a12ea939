"""`model-bisect nightly` end to end, fast enough for the default selection.

Every run is a real `python -m model_bisect nightly` process; its steps are real processes
too: `python -m cache_builder check --require bytes` on a copy of the committed fixture (in
this venv, which is installed under the pinned toolchain), `model-bisect run` with ONNX
Runtime, and `model-bisect publish` (printing, or sending through ghapi to the fake GitHub).
tests/test_nightly.py (slow) runs the same chain through `invoke nightly` as the workflow does.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model_bisect.exitcodes import ExitCode

from .clirun import CliRun, run_module
from .conftest import FIXTURE_DIR
from .fake_github import FakeGitHub

MARKER = "<!-- model-bisect:nightly -->"
REPO, ISSUE = "acme/models", 7
BOX = "┏━│┃└┴"  # rich's table borders, as the drift check draws them


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(issues=[(REPO, ISSUE)]) as fake:
        yield fake


def _copy(tmp_path: Path) -> Path:
    fixture = tmp_path / "fixture"
    shutil.copytree(FIXTURE_DIR, fixture)
    return fixture


def _drifted_copy(tmp_path: Path) -> Path:
    """The committed fixture with one value changed (written with another codec too)."""
    fixture = _copy(tmp_path)
    features = fixture / "features.parquet"
    table = pq.read_table(features)
    values = table.column("vif_scale1").to_pylist()
    values[11] += 0.5
    index = table.schema.get_field_index("vif_scale1")
    table = table.set_column(index, "vif_scale1", pa.array(values, pa.float32()))
    pq.write_table(table, features, compression="zstd")
    return fixture


def _nightly(tmp_path: Path, *args: str | Path, github: FakeGitHub | None = None) -> CliRun:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "BISECT_", "GH_"))}
    env["MODEL_BISECT_CACHE_DIR"] = str(tmp_path / "eval-cache")
    if github is not None:
        env.update(GH_TOKEN=github.token, GITHUB_REPOSITORY=REPO, GITHUB_API_URL=github.url)
    return run_module("model_bisect", "nightly", *args, env=env, timeout=600)


def test_nightly_on_a_copy_of_the_fixture_is_green_and_writes_every_output(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bisect-out"
    run = _nightly(tmp_path, "--fixture", _copy(tmp_path), "--out", out)

    assert run.code == ExitCode.OK, run.err[-3000:]
    for name in ("check.json", "check.log", "bisect.log", "result.json", "result.md"):
        assert (out / name).is_file(), name
    assert json.loads((out / "check.json").read_text(encoding="utf-8"))["result"] == "match"
    report = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert report["verdict"]["kind"] == "no_regression"
    # the fixture asked for is the one bisected, not the config's timeline
    assert report["features"]["path"] == str(tmp_path / "fixture" / "features.parquet")
    body = (out / "comment.md").read_text(encoding="utf-8")
    assert body.startswith(MARKER)
    assert "No regression" in body
    assert body in run.out  # without --publish the body is printed, not sent
    # the report names the chain, never --publish (a reproduction must not post)
    assert report["invocation"]["reproduce"].startswith("model-bisect nightly --fixture ")
    assert "--out" not in report["invocation"]["reproduce"]


def test_a_drifted_fixture_exits_1_and_posts_wiring_broke_quoting_the_log_intact(
    tmp_path: Path, github: FakeGitHub
) -> None:
    out = tmp_path / "bisect-out"
    out.mkdir()
    (out / "result.json").write_text("{}", encoding="utf-8")  # yesterday's: must not survive
    fixture = _drifted_copy(tmp_path)

    run = _nightly(
        tmp_path, "--publish", "--issue", str(ISSUE), "--fixture", fixture, "--out", out,
        github=github,
    )  # fmt: skip

    assert run.code == ExitCode.DRIFT, run.out[-3000:] + run.err[-3000:]
    assert "nightly: wiring broke (check)" in run.err
    # the bisect never ran, and last night's report is gone
    assert (out / "bisect.log").read_text(encoding="utf-8").startswith("not run: the drift check")
    assert not (out / "result.json").exists()
    log = (out / "check.log").read_text(encoding="utf-8")
    assert log.startswith("$ ")
    assert " -m cache_builder check --require bytes " in log
    assert "\ufffd" not in log
    assert "sticky comment" in run.out, run.out[-2000:] + run.err[-2000:]
    (comment,) = github.comments(REPO, ISSUE)
    body = comment["body"]
    assert body.startswith(f"{MARKER}\n### 🛠️ Wiring broke in stage <code>check</code>")
    assert "vif_scale1" in body  # the log's tail names the drifted column
    assert "\ufffd" not in body
    table_lines = [line for line in log.splitlines() if line.startswith(("┏", "│ features"))]
    assert len(table_lines) == 2
    for line in table_lines:  # the box-drawing characters reach the comment whole
        assert line in body
    assert set(BOX) <= set(body)
    assert "reproduce locally: `model-bisect nightly`" in body
    assert (out / "comment.md").read_text(encoding="utf-8") == body
    assert github.token not in run.out + run.err + log


def test_a_clean_check_then_a_failing_bisect_is_wiring_broke_in_stage_bisect(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bisect-out"
    run = _nightly(
        tmp_path, "--fixture", _copy(tmp_path), "--models", tmp_path / "no-models-here",
        "--out", out,
    )  # fmt: skip

    assert run.code == ExitCode.INPUT, run.err[-3000:]
    assert "nightly: wiring broke (bisect)" in run.err
    assert " -m model_bisect run " in (out / "bisect.log").read_text(encoding="utf-8")
    body = (out / "comment.md").read_text(encoding="utf-8")
    assert body.startswith(f"{MARKER}\n### 🛠️ Wiring broke in stage <code>bisect</code>")
    assert "no-models-here" in body


def test_nightly_publish_without_any_tracker_issue_exits_3_before_running_anything(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bisect-out"
    run = _nightly(tmp_path, "--publish", "--out", out)

    assert run.code == ExitCode.INPUT
    assert run.err.startswith("error: no tracker issue")
    assert "BISECT_TRACKER_ISSUE" in run.err
    assert "Traceback" not in run.err
    assert not out.exists()


def test_run_settings_given_to_nightly_reach_the_bisect_and_the_comment(tmp_path: Path) -> None:
    from .modelkit import bad_weights, linear_model

    models = _copy(tmp_path) / "models"
    for index in (5, 6, 7):
        linear_model(models / f"model_{index:02d}.onnx", bad_weights(6, seed=100 + index))
    out = tmp_path / "bisect-out"
    run = _nightly(
        tmp_path, "--out", out, "--min-srocc", "0.8", "--marker", "selftest",
        "--no-fail-on-first-bad", "--",
        f"{models}/model_0[0-4].onnx", f"{models}/model_0[5-7].onnx",
    )  # fmt: skip

    assert run.code == ExitCode.OK, run.err[-3000:]  # a regression, and not asked to fail on it
    report = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert [(g["metric"], g["threshold"]) for g in report["gates"]] == [("srocc", 0.8)]
    assert (report["verdict"]["kind"], report["verdict"]["first_bad_index"]) == ("regression", 5)
    assert len(report["timeline"]) == 8  # both globs, in order, not the config's timeline
    body = (out / "comment.md").read_text(encoding="utf-8")
    assert body.startswith("<!-- model-bisect:selftest -->")
    reproduce = report["invocation"]["reproduce"]
    assert reproduce.startswith("model-bisect nightly --min-srocc 0.8 --marker selftest ")
    assert "--no-fail-on-first-bad -- " in reproduce


def test_nightly_refuses_models_together_with_another_timeline_before_running(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bisect-out"
    run = _nightly(
        tmp_path, "--models", FIXTURE_DIR / "models", "--timeline", "t.toml", "--out", out
    )

    assert run.code == ExitCode.INPUT
    assert run.err.startswith("error: give the timeline exactly one way")
    assert "Traceback" not in run.err
    assert not out.exists()


def test_nightly_refuses_a_run_flag_with_a_bad_value_before_running(tmp_path: Path) -> None:
    out = tmp_path / "bisect-out"
    run = _nightly(tmp_path, "--mapping", "quadratic", "--out", out)

    assert run.code == ExitCode.INPUT
    assert "quadratic" in run.err
    assert not out.exists()
