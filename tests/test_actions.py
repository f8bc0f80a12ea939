"""Inside GitHub Actions the tools write a job summary, step outputs and annotations; outside
they write none of it. Real processes with a fake runner environment (GITHUB_ACTIONS=true and
the runner's files in tmp_path), real ONNX Runtime on the committed fixture, real HTTP to the
fake GitHub API."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import onnx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model_bisect.exitcodes import ExitCode
from model_bisect.publishing.actions import (
    Annotation,
    Level,
    StepResult,
    deliver,
    escape_data,
    escape_property,
    output_text,
)
from tests.cachekit import edit_model
from tests.clirun import CliRun, run_module
from tests.conftest import FIXTURE_DIR
from tests.fake_github import FakeGitHub
from tests.modelkit import bad_weights, invalid_model, linear_model

MODELS, FEATURES = FIXTURE_DIR / "models", FIXTURE_DIR / "features.parquet"
REPO, ISSUE = "acme/models", 1


def parse_outputs(text: str) -> dict[str, str]:
    """$GITHUB_OUTPUT read the way the runner reads it (heredoc form only, which we write)."""
    found, lines = {}, iter(text.splitlines())
    for line in lines:
        name, _, delimiter = line.partition("<<")
        value = []
        for item in lines:
            if item == delimiter:
                break
            value.append(item)
        else:
            raise AssertionError(f"output {name} is never closed by {delimiter}")
        found[name] = "\n".join(value)
    return found


def unescape(text: str) -> str:
    for code, char in (("%0A", "\n"), ("%0D", "\r"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(code, char)
    return text


@pytest.fixture
def runner(tmp_path: Path) -> dict[str, str]:
    """A runner's environment: the variables GitHub sets, its files in tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GH_", "GITHUB_"))}
    (tmp_path / "runner-temp").mkdir()
    return {
        **env,
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "RUNNER_TEMP": str(tmp_path / "runner-temp"),
    }


def outputs_of(env: dict[str, str]) -> dict[str, str]:
    return parse_outputs(Path(env["GITHUB_OUTPUT"]).read_text(encoding="utf-8"))


def summary_of(env: dict[str, str]) -> str:
    return Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")


def bisect(env: dict[str, str], *args: str | Path, models: Path = MODELS) -> CliRun:
    return run_module(
        "model_bisect", "run", models, "--features", FEATURES, "--quiet", *args, env=env
    )


def annotations(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("::")]


# --- escaping and the output file format ------------------------------------------------------


def test_data_escaping_follows_githubs_rules() -> None:
    assert escape_data("50% done\r\nnext: a,b") == "50%25 done%0D%0Anext: a,b"
    assert escape_property("a:b,c%d\ne") == "a%3Ab%2Cc%25d%0Ae"
    command = Annotation(Level.ERROR, "bad\nmodel 100%", title="t: x, y").command()
    assert command == "::error title=t%3A x%2C y::bad%0Amodel 100%25"


@given(st.text())
def test_escaped_text_is_one_line_and_unescapes_to_itself(text: str) -> None:
    data, prop = escape_data(text), escape_property(text)
    for escaped in (data, prop):
        assert "\n" not in escaped
        assert "\r" not in escaped
        assert unescape(escaped) == text
    assert ":" not in prop
    assert "," not in prop


def test_an_output_value_that_holds_the_delimiter_gets_another() -> None:
    tokens: Iterator[str] = iter(["ghadelimiter_1", "ghadelimiter_2"])
    text = output_text({"label": "one\nghadelimiter_1\nthree"}, token=lambda: next(tokens))
    assert text.splitlines()[0] == "label<<ghadelimiter_2"
    assert parse_outputs(text) == {"label": "one\nghadelimiter_1\nthree"}


def test_an_invalid_output_name_is_refused() -> None:
    with pytest.raises(ValueError, match="output name"):
        output_text({"a b": "x"})


def test_outside_actions_deliver_writes_nothing(tmp_path: Path) -> None:
    env = {"GITHUB_OUTPUT": str(tmp_path / "o"), "GITHUB_STEP_SUMMARY": str(tmp_path / "s")}
    result = StepResult("# hi", {"verdict": "x"}, (Annotation(Level.ERROR, "boom"),))
    assert deliver(result, env) == []
    assert deliver(result, {**env, "GITHUB_ACTIONS": "false"}) == []
    assert list(tmp_path.iterdir()) == []


def test_a_missing_or_unwritable_output_file_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    result = StepResult("# hi", {"verdict": "x"})
    summary = tmp_path / "summary.md"
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(tmp_path),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    (warning,) = deliver(result, env)  # a folder cannot be appended to
    assert warning.startswith("::warning title=model-bisect::cannot append to GITHUB_OUTPUT")
    assert summary.read_text(encoding="utf-8") == "# hi\n"
    lines = deliver(result, {"GITHUB_ACTIONS": "true"})
    assert [line.split("::")[2].split(" is ")[0] for line in lines] == [
        "GITHUB_STEP_SUMMARY",
        "GITHUB_OUTPUT",
    ]


# --- model-bisect run ----------------------------------------------------------------------


def test_run_in_actions_writes_summary_and_outputs_and_no_annotation_when_green(
    runner: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "r.json"
    ran = bisect(runner, "--min-plcc", "0.85", "--json", report)
    assert ran.code == ExitCode.OK, ran.err
    assert outputs_of(runner) == {
        "verdict": "no_regression",
        "first_bad_index": "",
        "first_bad_label": "",
        "last_good_index": "7",
        "evaluations": str(json.loads(report.read_text())["evaluations"]),
        "report": str(report),
        "culprit_summary": "",  # no regression, no culprit
    }
    summary = summary_of(runner)
    assert summary.startswith("### ✅ No regression")
    assert "**Gates:** plcc &gt;= 0.85" in summary
    assert annotations(ran.out) == []


def test_run_outside_actions_writes_no_summary_outputs_or_annotations(
    runner: dict[str, str],
) -> None:
    env = {k: v for k, v in runner.items() if k != "GITHUB_ACTIONS"}
    ran = bisect(env, "--min-plcc", "0.999")  # head bad: would be an ::error inside Actions
    assert ran.code == ExitCode.REGRESSION
    assert not Path(runner["GITHUB_OUTPUT"]).exists()
    assert not Path(runner["GITHUB_STEP_SUMMARY"]).exists()
    assert list(Path(runner["RUNNER_TEMP"]).iterdir()) == []
    assert annotations(ran.out) == []


def test_run_without_json_in_actions_leaves_the_report_under_runner_temp(
    runner: dict[str, str],
) -> None:
    ran = bisect(runner, "--min-plcc", "0.999")
    assert ran.code == ExitCode.REGRESSION
    report = Path(outputs_of(runner)["report"])
    assert report.parent == Path(runner["RUNNER_TEMP"])
    assert json.loads(report.read_text())["verdict"]["kind"] == "head_bad"
    assert outputs_of(runner)["verdict"] == "head_bad"
    (line,) = annotations(ran.out)
    assert line.startswith("::error title=model-bisect::the head model already fails: ")


def test_a_regression_is_an_error_annotation_naming_the_first_bad_model(
    runner: dict[str, str], tmp_path: Path
) -> None:
    models = tmp_path / "models"
    shutil.copytree(MODELS, models)
    for i in range(5, 8):
        linear_model(models / f"model_{i:02d}.onnx", bad_weights(6, seed=100 + i))
    ran = bisect(runner, "--min-plcc", "0.85", "--fail-on-first-bad", models=models)
    assert ran.code == ExitCode.REGRESSION, ran.err
    outputs = outputs_of(runner)
    assert (outputs["verdict"], outputs["first_bad_index"], outputs["last_good_index"]) == (
        "regression",
        "5",
        "4",
    )
    assert outputs["first_bad_label"] == "model_05.onnx"
    (line,) = annotations(ran.out)
    assert line.startswith("::error title=model-bisect::regression at #5 model_05.onnx: ")
    assert "Regression at index 5" in summary_of(runner)


def test_inconclusive_is_a_warning_annotation(runner: dict[str, str], tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(MODELS, models)
    invalid_model(models / "model_05.onnx")
    for i in range(6, 8):
        linear_model(models / f"model_{i:02d}.onnx", bad_weights(6, seed=100 + i))
    ran = bisect(runner, "--min-plcc", "0.85", models=models)
    assert ran.code == ExitCode.INCONCLUSIVE, ran.err
    assert outputs_of(runner)["verdict"] == "inconclusive"
    (line,) = annotations(ran.out)
    assert line.startswith("::warning title=model-bisect::inconclusive: ")


def test_an_unwritable_output_file_keeps_the_verdicts_exit_code(
    runner: dict[str, str], tmp_path: Path
) -> None:
    env = {**runner, "GITHUB_OUTPUT": str(tmp_path)}  # a folder cannot be appended to
    ran = bisect(env, "--min-plcc", "0.999")
    assert ran.code == ExitCode.REGRESSION
    assert "Traceback" not in ran.err
    assert [line.split("::")[1] for line in annotations(ran.out)] == [
        "error title=model-bisect",
        "warning title=model-bisect",
    ]
    assert "cannot append to GITHUB_OUTPUT" in annotations(ran.out)[1]
    assert "Head bad" in summary_of(runner)


# --- model-bisect publish ------------------------------------------------------------------


def _report(tmp_path: Path) -> Path:
    report = tmp_path / "r.json"
    ran = bisect({**os.environ, "GITHUB_ACTIONS": "false"}, "--min-plcc", "0.85", "--json", report)
    assert ran.code == ExitCode.OK, ran.err
    return report


def test_publish_in_actions_writes_comment_url_and_a_summary_linking_it(
    runner: dict[str, str], tmp_path: Path, fake_github: FakeGitHub
) -> None:
    env = {
        **runner,
        "GH_TOKEN": fake_github.token,
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": fake_github.url,
    }
    args = ("publish", "--issue", str(ISSUE), "--report", _report(tmp_path))
    ran = run_module("model_bisect", *args, env=env)
    assert ran.code == ExitCode.OK, ran.err
    (comment,) = fake_github.comments(REPO, ISSUE)
    assert outputs_of(runner) == {"comment_url": comment["html_url"]}
    summary = summary_of(runner)
    assert summary.splitlines()[0] == (
        f"### model-bisect publish: created the sticky comment on [{REPO}#{ISSUE}]"
        f"({comment['html_url']})"
    )
    assert comment["body"].rstrip("\n") in summary
    assert annotations(ran.out) == []
    assert fake_github.token not in summary + ran.out + ran.err


def test_a_refused_publish_still_leaves_the_body_in_the_summary_and_no_url(
    runner: dict[str, str], tmp_path: Path, fake_github: FakeGitHub
) -> None:
    env = {
        **runner,
        "GH_TOKEN": "ghp_revoked_token_for_this_test_only",
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": fake_github.url,
    }
    args = ("publish", "--issue", str(ISSUE), "--report", _report(tmp_path))
    ran = run_module("model_bisect", *args, env=env)
    assert ran.code == ExitCode.INPUT
    assert ran.err.startswith("error: 401 Unauthorized")
    assert outputs_of(runner) == {"comment_url": ""}
    summary = summary_of(runner)
    assert summary.startswith("### model-bisect publish: the comment was not sent")
    assert "No regression" in summary
    assert fake_github.comments(REPO, ISSUE) == []


def test_publish_of_broken_wiring_is_an_error_annotation(
    runner: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "bisect.log"
    log.write_text("error: features file not found\n", encoding="utf-8")
    args = ("publish", "--wiring-broke", "--error-log", log, "--stage", "bisect", "--dry-run")
    ran = run_module("model_bisect", *args, env=runner)
    assert ran.code == ExitCode.OK, ran.err
    assert outputs_of(runner) == {"comment_url": ""}
    assert summary_of(runner).startswith("### model-bisect publish: dry run, nothing sent")
    (line,) = annotations(ran.out)
    assert line.startswith("::error title=model-bisect::the nightly's wiring broke")


# --- cache_builder check -------------------------------------------------------------------


@pytest.fixture
def fixture_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "bisect"
    shutil.copytree(FIXTURE_DIR, copy)
    return copy


def test_check_summary_shows_metadata_only_drift_as_a_warning(
    runner: dict[str, str], fixture_copy: Path
) -> None:
    edit_model(fixture_copy / "models" / "model_05.onnx", producer_version="9.9.9")
    ran = run_module(
        "cache_builder", "check", "--out", fixture_copy, "--require", "content", env=runner
    )
    assert ran.code == ExitCode.OK, ran.err
    summary = summary_of(runner)
    assert "| `models/model_05.onnx` | 🟡 metadata-only |" in summary
    assert "| `features.parquet` | ✅ identical |" in summary
    (line,) = annotations(ran.out)
    assert line.startswith("::warning title=cache_builder check::metadata-only drift in ")
    assert line.endswith("models/model_05.onnx")


def test_check_summary_shows_content_drift_as_an_error(
    runner: dict[str, str], fixture_copy: Path
) -> None:
    path = fixture_copy / "models" / "model_01.onnx"
    model = onnx.load_model(path)
    model.opset_import[0].version = 18
    onnx.save_model(model, path)
    ran = run_module(
        "cache_builder", "check", "--out", fixture_copy, "--require", "content", env=runner
    )
    assert ran.code == ExitCode.DRIFT
    assert "| `models/model_01.onnx` | ❌ content |" in summary_of(runner)
    (line,) = annotations(ran.out)
    assert line.startswith("::error title=cache_builder check::content drift in ")


def test_check_outside_actions_writes_no_summary(
    runner: dict[str, str], fixture_copy: Path
) -> None:
    env = {k: v for k, v in runner.items() if k != "GITHUB_ACTIONS"}
    ran = run_module("cache_builder", "check", "--out", fixture_copy, env=env)
    assert ran.code == ExitCode.OK, ran.err
    assert not Path(runner["GITHUB_STEP_SUMMARY"]).exists()
    assert annotations(ran.out) == []


# --- a git timeline's job summary links its commits ------------------------------------------


def test_run_on_a_git_timeline_links_each_visited_model_to_its_commit_in_the_summary(
    runner: dict[str, str], tmp_path: Path
) -> None:
    from tests.modelkit import features_parquet
    from tests.repokit import git

    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    features, good = features_parquet(tmp_path / "f.parquet")
    git(repo, "init", "-q")
    shas = []
    for i in range(6):  # commits 0..2 good, 3..5 bad: the search visits several of them
        weights = [w * (1 + i / 10) for w in good] if i < 3 else bad_weights(len(good), seed=i)
        linear_model(repo / "models" / "m.onnx", weights)
        git(repo, "add", "models")
        git(repo, "commit", "-q", "-m", f"step {i}")
        shas.append(git(repo, "rev-parse", "HEAD").strip())
    env = {**runner, "GITHUB_SERVER_URL": "https://github.example", "GITHUB_REPOSITORY": REPO}
    comment = tmp_path / "comment.md"
    ran = run_module(
        "model_bisect", "run", "--git-path", repo / "models" / "m.onnx", "--features", features,
        "--min-plcc", "0.9", "--quiet", "--no-cache", "--markdown", comment, "--json",
        tmp_path / "r.json", env=env,
    )  # fmt: skip
    assert ran.code == ExitCode.OK, ran.err
    visited = [s["index"] for s in json.loads((tmp_path / "r.json").read_text())["steps"]]
    assert len(visited) >= 2
    summary = summary_of(env)
    links = [f"](https://github.example/{REPO}/commit/{shas[i]})" for i in visited]
    for link in links:
        assert link in summary
    assert summary.count("/commit/") == len(visited)
    # the same rows, links and all, as the comment's table
    body = comment.read_text(encoding="utf-8")
    rows = [line for line in summary.splitlines() if "/commit/" in line]
    assert all(row in body for row in rows)


def test_run_outside_a_repository_context_writes_the_steps_without_links(
    runner: dict[str, str],
) -> None:
    ran = bisect(runner, "--min-plcc", "0.85")
    assert ran.code == ExitCode.OK, ran.err
    summary = summary_of(runner)
    assert "#### Steps" in summary
    assert "| 7 | <code>model&#95;07.onnx</code> |" in summary
    assert "/commit/" not in summary


def test_the_summarys_steps_table_keeps_the_rows_nearest_the_boundary() -> None:
    from model_bisect.publishing.comment import steps_lines
    from tests.reportkit import make_report

    report = make_report(8, first_bad=5, visited=list(range(8)))
    lines = steps_lines(report, max_rows=2)
    rows = [line for line in lines if line.startswith("| ") and line[2].isdigit()]
    assert [row.split(" | ")[0] for row in rows] == ["| 4", "| 5"]
    assert lines[-1] == "_6 of 8 rows cut; the report JSON has them all._"
