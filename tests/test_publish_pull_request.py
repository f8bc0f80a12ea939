"""Inside Actions, `publish` comments on the pull request a run belongs to.

Real `python -m model_bisect publish` processes, through ghapi, against the fake GitHub; the
event is `tests/events/pull_request.json`, a pull_request payload as GitHub writes it (trimmed
of fields nobody reads), pointed to by GITHUB_EVENT_PATH as the runner does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from model_bisect.exitcodes import ExitCode
from model_bisect.publishing.comment import render_markdown
from model_bisect.report import VerdictKind, dumps

from .clirun import CliRun, run_module
from .fake_github import FakeGitHub
from .reportkit import make_report

EVENT = Path(__file__).parent / "events" / "pull_request.json"
REPO, TRACKER = "acme/models", 1
PR = json.loads(EVENT.read_text(encoding="utf-8"))["pull_request"]["number"]
MARKER = "<!-- model-bisect:nightly -->"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(issues=[(REPO, TRACKER), (REPO, PR), (REPO, 77)]) as fake:
        yield fake


@pytest.fixture
def report(tmp_path: Path) -> Path:
    path = tmp_path / "result.json"
    path.write_text(dumps(make_report()), encoding="utf-8")
    return path


def _publish(
    github: FakeGitHub, report: Path, *args: str, event: str = "pull_request", path: Path = EVENT
) -> CliRun:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GH_"))}
    env.update(
        GH_TOKEN=github.token,
        GITHUB_REPOSITORY=REPO,
        GITHUB_API_URL=github.url,
        GITHUB_ACTIONS="true",
        GITHUB_EVENT_NAME=event,
        GITHUB_EVENT_PATH=str(path),
    )
    return run_module(
        "model_bisect", "publish", "--report", report, "--issue", str(TRACKER), *args, env=env
    )


def test_a_pull_request_run_comments_on_the_pull_request_and_a_second_run_edits_it(
    github: FakeGitHub, report: Path
) -> None:
    first = _publish(github, report)
    assert first.code == ExitCode.OK, first.err
    (comment,) = github.comments(REPO, PR)
    assert comment["body"].startswith(MARKER)
    assert github.comments(REPO, TRACKER) == []  # the tracking issue is left alone

    second = _publish(github, report, "--date", "2030-01-02")
    assert second.code == ExitCode.OK, second.err
    (edited,) = github.comments(REPO, PR)
    assert edited["id"] == comment["id"]
    assert edited["body"] != comment["body"]  # two nights in its history now
    assert second.out.startswith("updated the sticky comment: ")
    assert github.comments(REPO, TRACKER) == []


def test_pull_request_target_events_comment_on_the_pull_request_too(
    github: FakeGitHub, report: Path
) -> None:
    done = _publish(github, report, event="pull_request_target")
    assert done.code == ExitCode.OK, done.err
    assert len(github.comments(REPO, PR)) == 1


def test_any_other_event_comments_on_the_tracking_issue(github: FakeGitHub, report: Path) -> None:
    done = _publish(github, report, event="push")
    assert done.code == ExitCode.OK, done.err
    assert len(github.comments(REPO, TRACKER)) == 1
    assert github.comments(REPO, PR) == []


def test_pr_flag_overrides_the_event(github: FakeGitHub, report: Path) -> None:
    done = _publish(github, report, "--pr", "77")
    assert done.code == ExitCode.OK, done.err
    assert len(github.comments(REPO, 77)) == 1
    assert github.comments(REPO, PR) == []


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ("{not json", "the event is not JSON"),
        ('{"pull_request": {"number": "42"}}', "no valid pull_request.number"),
        ('{"pull_request": {"number": true}}', "no valid pull_request.number"),
        ('{"pull_request": {"number": 99999999999}}', "no valid pull_request.number"),
        ('[{"pull_request": 1}]', "no valid pull_request.number"),
        ("[" * 100_000, "the event is not JSON"),
    ],
    ids=["not-json", "string", "bool", "too-large", "a-list", "deep"],
)
def test_an_unusable_event_payload_is_one_line_and_exit_3(
    github: FakeGitHub, report: Path, tmp_path: Path, payload: str, problem: str
) -> None:
    event = tmp_path / "event.json"
    event.write_text(payload, encoding="utf-8")
    done = _publish(github, report, path=event)
    assert done.code == ExitCode.INPUT, done.err
    assert "Traceback" not in done.err
    (line,) = [line for line in done.err.splitlines() if line.startswith("error:")]
    assert problem in line
    assert str(event) in line
    assert github.comments(REPO, PR) == github.comments(REPO, TRACKER) == []


def test_an_event_path_that_is_not_a_regular_file_is_refused(
    github: FakeGitHub, report: Path, tmp_path: Path
) -> None:
    done = _publish(github, report, path=tmp_path)
    assert done.code == ExitCode.INPUT, done.err
    assert "cannot read the event (not a regular file)" in done.err


def test_git_timeline_models_link_to_their_commits_and_only_real_shas_do() -> None:
    sha = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
    base = make_report(3, kind=VerdictKind.NO_REGRESSION, first_bad=None)
    timeline = (
        replace(base.timeline[0], commit=sha),
        replace(base.timeline[1], commit="javascript:alert(1)"),
        base.timeline[2],
    )
    report = replace(base, timeline=timeline)
    body = render_markdown(report, commit_base="https://github.com/acme/models/commit/")
    link = f"[<code>model&#95;00</code>](https://github.com/acme/models/commit/{sha})"
    assert f"| 0 | {link} |" in body
    assert body.count("/commit/") == 1
    assert "alert" not in body
    # without the Actions variables there is nothing to link to
    assert "/commit/" not in render_markdown(report)
