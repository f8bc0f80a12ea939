"""Publishing the sticky comment through ghapi, against the loopback fake GitHub API."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from model_bisect.errors import PublishError, UsageError
from model_bisect.exitcodes import ExitCode
from model_bisect.publishing.comment import render_markdown
from model_bisect.publishing.github import MAX_WAIT, PublishResult, publish_comment, resolve_token
from model_bisect.publishing.history import Run, encode_history, read_history
from model_bisect.report import Report, VerdictKind, dumps
from tests.clirun import CliRun, call_main, run_module
from tests.fake_github import FakeGitHub
from tests.reportkit import make_report

REPO, ISSUE = "acme/models", 1
TOKEN = "ghp_fake_token_for_tests"
MARK = "<!-- model-bisect:nightly -->"
LIST = f"/repos/{REPO}/issues/{ISSUE}/comments"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    """A fresh fake GitHub per test (the shared `fake_github` fixture, under a local name)."""
    with FakeGitHub() as fake:
        yield fake


def publish(gh: FakeGitHub, body: str, **kwargs: Any) -> PublishResult:
    options: dict[str, Any] = {"repo": REPO, "issue": ISSUE, "token": TOKEN, "api_url": gh.url}
    return publish_comment(body, **{**options, **kwargs})


def sticky(text: str) -> str:
    return f"{MARK}\n{text}\n"


def cli_env(gh: FakeGitHub | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GH_", "GITHUB_"))}
    if gh is not None:
        env.update(GH_TOKEN=gh.token, GITHUB_REPOSITORY=REPO, GITHUB_API_URL=gh.url)
    env.update(extra)
    return env


def test_first_publish_creates_exactly_one_comment(github: FakeGitHub) -> None:
    result = publish(github, sticky("green"))
    comments = github.comments(REPO, ISSUE)
    assert [c["body"] for c in comments] == [sticky("green")]
    assert result.action == "created"
    assert result.comment_id == comments[0]["id"]
    assert comments[0]["user"]["login"] == "nightly-bot"
    assert github.count("POST") == 1


def test_second_publish_edits_the_same_comment(github: FakeGitHub) -> None:
    first = publish(github, sticky("green"))
    second = publish(github, sticky("red"))
    comments = github.comments(REPO, ISSUE)
    assert [c["body"] for c in comments] == [sticky("red")]
    assert second.action == "updated"
    assert second.comment_id == first.comment_id
    assert github.count("POST") == 1
    assert github.count("PATCH") == 1


def test_unchanged_body_sends_no_edit(github: FakeGitHub) -> None:
    publish(github, sticky("green"))
    result = publish(github, sticky("green"))
    assert result.action == "unchanged"
    assert github.count("PATCH") == 0
    assert github.count("POST") == 1


def test_marker_comment_of_another_user_is_left_alone(github: FakeGitHub) -> None:
    theirs = github.seed_comment(REPO, ISSUE, sticky("pasted by a human"), "alice")
    result = publish(github, sticky("green"))
    comments = {c["id"]: c for c in github.comments(REPO, ISSUE)}
    assert comments[theirs]["body"] == sticky("pasted by a human")
    assert result.action == "created"
    assert comments[result.comment_id]["user"]["login"] == "nightly-bot"
    assert github.count("DELETE") == 0


def test_other_marker_keys_are_separate_comments(github: FakeGitHub) -> None:
    publish(github, sticky("nightly"))
    gpu = publish(github, "<!-- model-bisect:gpu -->\ngpu\n", marker_key="gpu")
    assert gpu.action == "created"
    assert len(github.comments(REPO, ISSUE)) == 2


def test_sticky_comment_on_page_three_is_found(github: FakeGitHub) -> None:
    for i in range(230):
        github.seed_comment(REPO, ISSUE, f"chatter {i}", "alice")
    ours = github.seed_comment(REPO, ISSUE, sticky("old"), "nightly-bot")
    for i in range(30):
        github.seed_comment(REPO, ISSUE, f"more chatter {i}", "bob")
    result = publish(github, sticky("new"))
    assert result.comment_id == ours
    assert result.action == "updated"
    assert github.count("GET", LIST) == 3  # 261 comments at 100 per page
    assert github.count("POST") == 0


def test_duplicates_are_reduced_to_the_newest(github: FakeGitHub) -> None:
    older = [github.seed_comment(REPO, ISSUE, sticky(f"race {i}"), "nightly-bot") for i in range(3)]
    newest = github.seed_comment(REPO, ISSUE, sticky("race 3"), "nightly-bot")
    result = publish(github, sticky("settled"))
    assert result.comment_id == newest
    assert sorted(result.deleted) == older
    ours = [c for c in github.comments(REPO, ISSUE) if c["body"].startswith(MARK)]
    assert [(c["id"], c["body"]) for c in ours] == [(newest, sticky("settled"))]


def test_actions_token_publishes_as_github_actions_bot() -> None:
    with FakeGitHub(integration=True) as gh:
        gh.seed_comment(REPO, ISSUE, sticky("someone else's bot"), "nightly-bot")
        created = publish(gh, sticky("green"))
        again = publish(gh, sticky("red"))
        ours = [c for c in gh.comments(REPO, ISSUE) if c["user"]["login"] == "github-actions[bot]"]
    assert created.action == "created"
    assert again.action == "updated"
    assert [c["body"] for c in ours] == [sticky("red")]


def test_author_overrides_the_identity_without_asking_user(github: FakeGitHub) -> None:
    mine = github.seed_comment(REPO, ISSUE, sticky("old"), "release-bot")
    result = publish(github, sticky("new"), author="release-bot")
    assert result.comment_id == mine
    assert github.count("GET", "/user") == 0


def test_transient_500_then_success_publishes_exactly_once(github: FakeGitHub) -> None:
    github.fail_next(500, method="POST")
    waits: list[float] = []
    result = publish(github, sticky("green"), sleep=waits.append)
    assert result.action == "created"
    assert len(github.comments(REPO, ISSUE)) == 1
    assert github.count("POST") == 2
    assert waits == [1.0]


def test_persistent_5xx_gives_up_after_bounded_backoff(github: FakeGitHub) -> None:
    github.fail_next(502, times=10)
    waits: list[float] = []
    with pytest.raises(PublishError, match=r"^502 from .* after 5 attempts"):
        publish(github, sticky("green"), sleep=waits.append)
    assert waits == [1.0, 2.0, 4.0, 8.0]


def test_rate_limit_retry_after_is_waited_out(github: FakeGitHub) -> None:
    github.fail_next(
        403,
        headers={"Retry-After": "7"},
        body=json.dumps({"message": "You have exceeded a secondary rate limit."}),
        method="POST",
    )
    waits: list[float] = []
    result = publish(github, sticky("green"), sleep=waits.append)
    assert waits == [7.0]
    assert result.action == "created"
    assert len(github.comments(REPO, ISSUE)) == 1


def test_exhausted_primary_rate_limit_waits_until_reset_capped(github: FakeGitHub) -> None:
    reset = str(int(time.time()) + 3600)
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
    github.fail_next(403, headers=headers, body='{"message": "API rate limit exceeded"}')
    waits: list[float] = []
    publish(github, sticky("green"), sleep=waits.append)
    assert waits == [MAX_WAIT]


def test_forbidden_names_the_missing_permission(github: FakeGitHub) -> None:
    github.fail_next(
        403, body='{"message": "Resource not accessible by integration"}', method="POST"
    )
    with pytest.raises(PublishError) as caught:
        publish(github, sticky("green"), sleep=lambda _: None)
    message = str(caught.value)
    assert message.startswith("403 Forbidden")
    assert "lacks `issues: write` on acme/models" in message


def test_unknown_issue_is_a_404_naming_issue_and_repo(github: FakeGitHub) -> None:
    with pytest.raises(PublishError, match=r"^404: issue 9 not found in acme/models"):
        publish(github, sticky("green"), issue=9)


def test_bad_token_is_a_401_and_the_token_is_not_in_the_error(github: FakeGitHub) -> None:
    wrong = "ghp_this_one_is_wrong_and_secret"
    with pytest.raises(PublishError) as caught:
        publish(github, sticky("green"), token=wrong)
    assert str(caught.value).startswith(f"401 Unauthorized from {github.url}")
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None  # the ghapi error held the Authorization header
    assert wrong not in repr(caught.value.__dict__)


def test_body_without_the_marker_is_refused_before_any_request(github: FakeGitHub) -> None:
    with pytest.raises(UsageError, match="does not start with its marker"):
        publish(github, "no marker here")
    assert github.requests == []


def test_oversized_report_is_truncated_and_accepted(github: FakeGitHub) -> None:
    labels = [f"checkpoint-{i:05d}-" + "y" * 80 for i in range(2500)]
    body = render_markdown(make_report(2500, first_bad=2000, labels=labels))
    result = publish(github, body)
    stored = github.comments(REPO, ISSUE)[0]["body"]
    assert result.action == "created"
    assert 60000 < len(stored) <= 65536
    assert stored.splitlines()[1].startswith("### 🔴 Regression at index 2000:")
    assert "rows cut to stay under 65,536 characters" in stored


def test_fake_github_refuses_a_body_over_the_limit_like_github(github: FakeGitHub) -> None:
    from ghapi.all import GhApi
    from ghapi.core import APIError

    factory: Any = GhApi
    api = factory(token=TOKEN, gh_host=github.url, sync=True)
    with pytest.raises(APIError) as caught:
        api.issues.create_comment("acme", "models", ISSUE, body="x" * 65537)
    assert caught.value.status_code == 422


def test_resolve_token_prefers_gh_token() -> None:
    assert resolve_token({"GH_TOKEN": "a", "GITHUB_TOKEN": "b"}) == "a"
    assert resolve_token({"GH_TOKEN": " ", "GITHUB_TOKEN": "b"}) == "b"
    assert resolve_token({}) is None


# -- through the CLI -----------------------------------------------------------------------


@pytest.fixture
def report_file(tmp_path: Path) -> Path:
    path = tmp_path / "result.json"
    path.write_text(dumps(make_report()), encoding="utf-8")
    return path


def test_cli_401_exits_3_with_one_useful_line(github: FakeGitHub, report_file: Path) -> None:
    wrong = "ghp_wrong_token_that_must_not_leak"
    env = cli_env(github, GH_TOKEN=wrong)
    done = run_module(
        "model_bisect", "publish", "--issue", "1", "--report", str(report_file), env=env
    )
    assert done.code == ExitCode.INPUT
    assert done.out == ""
    assert done.err.splitlines() == [
        f"error: 401 Unauthorized from {github.url} (Bad credentials): the token is invalid"
        " or expired; set GH_TOKEN to a token with `issues: write`"
    ]
    assert wrong not in done.out + done.err


def test_token_never_reaches_output_summary_body_or_comment(
    github: FakeGitHub, tmp_path: Path
) -> None:
    report = tmp_path / "result.json"
    report.write_text(dumps(make_report(labels=[f"m{i} {TOKEN}" for i in range(8)])), "utf-8")
    summary, body_out = tmp_path / "summary.md", tmp_path / "out" / "body.md"
    env = cli_env(
        github,
        GITHUB_ACTIONS="true",
        GITHUB_STEP_SUMMARY=str(summary),
        GITHUB_SERVER_URL="https://github.com",
        GITHUB_RUN_ID="77",
    )
    args = ("--issue", "1", "--report", str(report), "--body-out", str(body_out))
    done = run_module("model_bisect", "publish", *args, env=env)
    assert done.code == ExitCode.OK, done.err
    comment = github.comments(REPO, ISSUE)[0]["body"]
    url = f"https://github.com/{REPO}/issues/{ISSUE}#issuecomment-"
    assert done.out.startswith(f"created the sticky comment: {url}")
    assert "<code>m5 &#42;&#42;&#42;</code>" in comment  # the label's token was redacted
    assert comment == body_out.read_text("utf-8")
    assert comment.rstrip("\n") in summary.read_text("utf-8")  # folded under the summary
    assert "actions/runs/77" in comment
    escaped = TOKEN.replace("_", "&#95;")
    for text in (done.out, done.err, comment):
        assert TOKEN not in text
        assert escaped not in text
    bad = run_module("model_bisect", "publish", *args, env={**env, "GH_TOKEN": TOKEN + "_revoked"})
    assert bad.code == ExitCode.INPUT
    assert TOKEN not in bad.out + bad.err
    assert TOKEN not in summary.read_text("utf-8")


def test_cli_publishes_wiring_broke_from_an_error_log(
    github: FakeGitHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = tmp_path / "check.log"
    log.write_text(
        f"env GH_TOKEN={TOKEN}\nTraceback (most recent call last):\nValueError: drift\n", "utf-8"
    )
    for key, value in cli_env(github).items():
        monkeypatch.setenv(key, value)
    ran = call_main(
        "model_bisect", "publish", "--issue", "1", "--wiring-broke", "--error-log", log,
        "--stage", "check",
    )  # fmt: skip
    body = github.comments(REPO, ISSUE)[0]["body"]
    assert ran.code == ExitCode.OK
    assert body.startswith(f"{MARK}\n### 🛠️ Wiring broke in stage <code>check</code>")
    assert "ValueError: drift" in body
    assert "env GH_TOKEN=***" in body
    assert TOKEN not in body
    assert ran.out.startswith("created the sticky comment: https://github.com/")


def test_cli_wiring_broke_without_a_readable_log_still_publishes(
    github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in cli_env(github).items():
        monkeypatch.setenv(key, value)
    ran = call_main(
        "model_bisect", "publish", "--issue", "1", "--wiring-broke", "--error-log",
        tmp_path / "gone.log",
    )  # fmt: skip
    assert ran.code == ExitCode.OK
    assert "could not be read" in github.comments(REPO, ISSUE)[0]["body"]


def test_cli_dry_run_needs_no_token_and_sends_nothing(
    report_file: Path,
) -> None:
    out = call_main("model_bisect", "publish", "--dry-run", "--report", report_file)
    assert out.code == ExitCode.OK
    assert out.out.startswith(f"{MARK}\n### 🔴 Regression at index 5")
    assert out.err == ""


def test_cli_without_token_exits_3(report_file: Path) -> None:
    ran = call_main(
        "model_bisect", "publish", "--issue", "1", "--repo", REPO, "--report", report_file
    )
    err = ran.err
    assert ran.code == ExitCode.INPUT
    assert err.startswith("error: no GitHub token in the environment (GH_TOKEN, GITHUB_TOKEN)")
    assert len(err.splitlines()) == 1


def test_cli_without_repository_exits_3(report_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    ran = call_main("model_bisect", "publish", "--issue", "1", "--report", report_file)
    assert ran.code == ExitCode.INPUT
    assert "pass --repo OWNER/NAME or set GITHUB_REPOSITORY" in ran.err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--issue", "1", "--wiring-broke"], "--wiring-broke needs --error-log"),
        (["--issue", "0", "--wiring-broke"], "issue must be a positive number"),
        (["--issue", "1"], "one of the arguments --report --wiring-broke is required"),
        (["--dry-run", "--marker", "a b", "--wiring-broke", "--error-log", "x"], "invalid marker"),
    ],
)
def test_cli_usage_errors_exit_3(argv: list[str], needle: str) -> None:
    ran = call_main("model_bisect", "publish", *argv)
    assert ran.code == ExitCode.INPUT
    assert needle in ran.err


# -- the comment's history -----------------------------------------------------------------


def _report_file(tmp_path: Path, name: str, report: Report) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(dumps(report), encoding="utf-8")
    return path


def _publish_cli(path: Path, date: str, *extra: str | Path) -> CliRun:
    return call_main(
        "model_bisect", "publish", "--issue", "1", "--report", path, "--date", date, *extra
    )


@pytest.fixture
def github_env(github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> FakeGitHub:
    for key in [k for k in os.environ if k.startswith(("GH_", "GITHUB_"))]:
        monkeypatch.delenv(key)
    for key, value in cli_env(github).items():
        monkeypatch.setenv(key, value)
    return github


def test_three_publishes_leave_one_comment_whose_history_holds_the_three_runs(
    github_env: FakeGitHub, tmp_path: Path
) -> None:
    green = make_report(8, kind=VerdictKind.NO_REGRESSION, first_bad=None)
    red = make_report(9, first_bad=7)
    head_bad = make_report(10, kind=VerdictKind.HEAD_BAD, first_bad=0)
    nights = [
        (green, "2026-11-24T03:00:00Z"),
        (red, "2026-11-25T03:00+00:00"),
        (head_bad, "2026-11-26T05:00:00+02:00"),
    ]
    for i, (report, date) in enumerate(nights):
        ran = _publish_cli(_report_file(tmp_path, f"night{i}", report), date)
        assert ran.code == ExitCode.OK, ran.err
    comments = github_env.comments(REPO, ISSUE)
    assert len(comments) == 1
    runs = read_history(comments[0]["body"]).runs
    assert [
        (r.date, r.verdict, r.first_bad_index, r.first_bad_label, r.head_label) for r in runs
    ] == [
        ("2026-11-24T03:00:00Z", "no_regression", None, None, "model_07"),
        ("2026-11-25T03:00:00Z", "regression", 7, "model_07", "model_08"),
        ("2026-11-26T03:00:00Z", "head_bad", 0, "model_00", "model_09"),
    ]
    assert [r.metrics["plcc"] for r in runs] == pytest.approx([0.913, 0.52, 0.51])
    assert "✅🔴⛔" in comments[0]["body"]
    assert github_env.count("POST") == 1
    assert github_env.count("PATCH") == 2


def test_a_foreign_marker_comments_history_is_ignored(
    github_env: FakeGitHub, tmp_path: Path
) -> None:
    planted = encode_history(tuple(Run(f"2026-10-0{d}T03:00:00Z", "no_regression") for d in (1, 2)))
    theirs_body = sticky(f"looks like ours\n\n{planted}")
    mine = encode_history((Run("2026-11-01T03:00:00Z", "regression", first_bad_index=3),))
    ours = github_env.seed_comment(REPO, ISSUE, sticky(f"yesterday\n\n{mine}"), "nightly-bot")
    theirs = github_env.seed_comment(REPO, ISSUE, theirs_body, "alice")  # newer than ours
    report = _report_file(tmp_path, "tonight", make_report())
    assert _publish_cli(report, "2026-11-02T03:00:00Z").code == ExitCode.OK
    comments = {c["id"]: c["body"] for c in github_env.comments(REPO, ISSUE)}
    assert comments[theirs] == theirs_body
    assert [r.date[:10] for r in read_history(comments[ours]).runs] == ["2026-11-01", "2026-11-02"]


def test_a_foreign_comment_alone_gives_us_a_new_comment_with_a_new_history(
    github_env: FakeGitHub, tmp_path: Path
) -> None:
    planted = encode_history((Run("2026-10-01T03:00:00Z", "no_regression"),))
    theirs = github_env.seed_comment(REPO, ISSUE, sticky(f"x\n\n{planted}"), "alice")
    report = _report_file(tmp_path, "tonight", make_report())
    assert _publish_cli(report, "2026-11-02T03:00:00Z").code == ExitCode.OK
    ours = [c for c in github_env.comments(REPO, ISSUE) if c["id"] != theirs]
    assert len(ours) == 1
    assert [r.date for r in read_history(ours[0]["body"]).runs] == ["2026-11-02T03:00:00Z"]


def test_a_corrupt_history_in_our_comment_starts_afresh_with_a_warning(
    github_env: FakeGitHub, tmp_path: Path
) -> None:
    broken = "<!-- model-bisect:history:v1 bm90IGpzb24 -->"
    github_env.seed_comment(REPO, ISSUE, sticky(f"old\n\n{broken}"), "nightly-bot")
    report = _report_file(tmp_path, "tonight", make_report())
    ran = _publish_cli(report, "2026-11-02T03:00:00Z")
    assert ran.code == ExitCode.OK
    assert (
        ran.err == "warning: the sticky comment's history line is corrupt; starting a new history\n"
    )
    body = github_env.comments(REPO, ISSUE)[0]["body"]
    assert [r.date for r in read_history(body).runs] == ["2026-11-02T03:00:00Z"]


def test_a_wiring_broke_night_joins_the_history(github_env: FakeGitHub, tmp_path: Path) -> None:
    report = _report_file(
        tmp_path, "green", make_report(kind=VerdictKind.NO_REGRESSION, first_bad=None)
    )
    log = tmp_path / "check.log"
    log.write_text("ValueError: drift\n", "utf-8")
    assert _publish_cli(report, "2026-11-01T03:00:00Z").code == ExitCode.OK
    broke = call_main(
        "model_bisect", "publish", "--issue", "1", "--wiring-broke", "--error-log", log,
        "--date", "2026-11-02T03:00:00Z",
    )  # fmt: skip
    assert broke.code == ExitCode.OK
    body = github_env.comments(REPO, ISSUE)[0]["body"]
    assert [r.verdict for r in read_history(body).runs] == ["no_regression", "wiring_broke"]
    assert "✅🛠️" in body


def test_body_out_of_a_real_publish_carries_the_history_it_sent(
    github_env: FakeGitHub, tmp_path: Path
) -> None:
    report = _report_file(tmp_path, "tonight", make_report())
    out = tmp_path / "body.md"
    for date in ("2026-11-01T03:00:00Z", "2026-11-02T03:00:00Z"):
        assert _publish_cli(report, date, "--body-out", out).code == ExitCode.OK
    sent = out.read_text("utf-8")
    assert sent == github_env.comments(REPO, ISSUE)[0]["body"]
    assert len(read_history(sent).runs) == 2


def test_dry_run_history_holds_tonight_alone(report_file: Path) -> None:
    ran = call_main(
        "model_bisect", "publish", "--dry-run", "--report", report_file,
        "--date", "2026-11-26",
    )  # fmt: skip
    assert ran.code == ExitCode.OK
    runs = read_history(ran.out).runs
    assert [(r.date, r.verdict) for r in runs] == [("2026-11-26T00:00:00Z", "regression")]
    assert "#### Recent runs" in ran.out


def test_bad_date_is_a_usage_error(report_file: Path) -> None:
    ran = call_main(
        "model_bisect", "publish", "--dry-run", "--report", report_file, "--date", "yesterday"
    )
    assert ran.code == ExitCode.INPUT
    assert "date must be ISO 8601" in ran.err


def test_compose_sees_only_our_own_comment(github: FakeGitHub) -> None:
    github.seed_comment(REPO, ISSUE, sticky("alice's"), "alice")
    seen: list[str | None] = []

    def compose(current: str | None) -> str:
        seen.append(current)
        return sticky(f"night {len(seen)}")

    publish(github, compose)
    publish(github, compose)
    assert seen == [None, sticky("night 1")]
    with pytest.raises(UsageError, match="does not start with its marker"):
        publish(github, lambda current: "no marker")


def test_a_400_digit_number_in_our_history_starts_afresh_and_the_comment_is_updated(
    github_env: FakeGitHub, tmp_path: Path
) -> None:
    runs = [{"date": "2026-11-01T03:00:00Z", "verdict": "no_regression", "metrics": {}}]
    payload = json.dumps({"runs": runs}).replace("{}", '{"plcc": ' + "9" * 400 + "}")
    line = base64.urlsafe_b64encode(payload.encode()).decode()
    github_env.seed_comment(
        REPO, ISSUE, sticky(f"old\n\n<!-- model-bisect:history:v1 {line} -->"), "nightly-bot"
    )
    ran = _publish_cli(_report_file(tmp_path, "tonight", make_report()), "2026-11-02T03:00:00Z")
    assert ran.code == ExitCode.OK, ran.err
    assert "history line is corrupt" in ran.err
    body = github_env.comments(REPO, ISSUE)[0]["body"]
    assert [r.date for r in read_history(body).runs] == ["2026-11-02T03:00:00Z"]
