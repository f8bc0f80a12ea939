"""Hostile inputs to `model-bisect publish`: a server that answers nonsense, output paths that
would clobber an input, names that would redirect the request, tokens that would leak or
wreck the body. Each ends as exit 3 with one line, or a bounded wait, never a traceback.

Real processes where the behaviour is the CLI's; the fake GitHub API on loopback throughout.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from model_bisect.errors import PublishError, UsageError
from model_bisect.exitcodes import ExitCode
from model_bisect.publishing.github import MAX_PAGES, MAX_WAIT, publish_comment
from model_bisect.publishing.history import read_history
from model_bisect.publishing.redact import MASK, redact, redact_body, redact_report
from model_bisect.report import Report, dumps
from tests.clirun import CliRun, call_main, run_module
from tests.fake_github import LOCKED_MESSAGE, FakeGitHub
from tests.reportkit import make_report

REPO, ISSUE = "acme/models", 1
MARK = "<!-- model-bisect:nightly -->"
TIMEOUT = 60  # seconds: a hang fails the test instead of stalling CI


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


@pytest.fixture
def report_file(tmp_path: Path) -> Path:
    path = tmp_path / "result.json"
    path.write_text(dumps(make_report()), encoding="utf-8")
    return path


def env_for(gh: FakeGitHub | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GH_", "GITHUB_"))}
    if gh is not None:
        env.update(GH_TOKEN=gh.token, GITHUB_REPOSITORY=REPO, GITHUB_API_URL=gh.url)
    env.update(extra)
    return env


def use_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def refused(done: CliRun, *needles: str) -> str:
    """The run ended with exit 3 and exactly one `error:` line holding every needle."""
    assert done.code == ExitCode.INPUT, (done.out, done.err)
    assert "Traceback" not in done.err + done.out
    lines = done.err.splitlines()
    assert len(lines) == 1, done.err
    assert lines[0].startswith("error: "), done.err
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def publish(gh: FakeGitHub, body: str, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"repo": REPO, "issue": ISSUE, "token": gh.token, "api_url": gh.url}
    return publish_comment(body, **{**options, **kwargs})


# -- 2. the server's answers are untrusted ---------------------------------------------------

HTML = "<!DOCTYPE html><html><body><h1>Sign in to the Wi-Fi</h1></body></html>"
# (method the fault hits, body, content type, what the one-line error must say)
WRONG_ANSWERS = [
    ("GET", HTML, "text/html; charset=utf-8", "got an HTML page"),
    ("GET", json.dumps({"message": "fine"}), "application/json", "expected a user object"),
    ("GET", "null", "application/json", "expected a user object"),
    ("GET", json.dumps({"login": 7}), "application/json", "expected a user object"),
    ("GET", '{"login": "nightly-bot"', "application/json", "unreadable answer"),
    ("GET", "\xff\xfe not utf-8", "application/json", "unreadable answer"),
]


@pytest.mark.parametrize(("method", "body", "content_type", "needle"), WRONG_ANSWERS)
def test_wrong_answer_with_status_200_to_the_user_lookup_is_one_line(
    github: FakeGitHub,
    report_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    body: str,
    content_type: str,
    needle: str,
) -> None:
    use_env(monkeypatch, env_for(github))
    github.fail_next(200, body=body, content_type=content_type, method=method)
    done = call_main("model_bisect", "publish", "--issue", "1", "--report", report_file)
    refused(done, needle, "GITHUB_API_URL")
    assert github.comments(REPO, ISSUE) == []


LISTINGS = [
    (HTML, "text/html", "expected a list of comments, got an HTML page"),
    (json.dumps({"comments": []}), "application/json", "expected a list of comments"),
    (json.dumps([1, 2]), "application/json", "expected a comment object"),
    (json.dumps([{"id": "1001", "body": MARK, "user": {"login": "nightly-bot"}}]), "", "id"),
    (json.dumps([{"id": True, "body": MARK, "user": {"login": "nightly-bot"}}]), "", "id"),
    (json.dumps([{"id": -4, "body": MARK, "user": {"login": "nightly-bot"}}]), "", "id"),
    (json.dumps([{"id": 5, "body": ["x"], "user": {"login": "nightly-bot"}}]), "", "body"),
    (json.dumps([{"id": 5, "body": MARK, "user": "nightly-bot"}]), "", "login"),
    ("[" * 100_000 + "]" * 100_000, "application/json", "unreadable answer"),
]


@pytest.mark.parametrize(("body", "content_type", "needle"), LISTINGS)
def test_wrongly_shaped_comment_listing_is_one_line_and_nothing_is_written(
    github: FakeGitHub,
    report_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    body: str,
    content_type: str,
    needle: str,
) -> None:
    use_env(monkeypatch, env_for(github))
    github.fail_next(200, body=body, content_type=content_type or "application/json")
    done = call_main(
        "model_bisect", "publish", "--issue", "1", "--author", "nightly-bot", "--report",
        report_file,
    )  # fmt: skip
    refused(done, needle)
    assert github.count("POST") == github.count("PATCH") == github.count("DELETE") == 0


@pytest.mark.parametrize(
    ("answer", "content_type", "needle"),
    [
        (HTML, "text/html", "unexpected answer"),
        (HTML, "application/json", "unreadable answer"),
        (json.dumps([]), "application/json", "unexpected answer"),
        (json.dumps({"id": "x"}), "application/json", "unexpected answer"),
        (json.dumps({"html_url": "u"}), "application/json", "unexpected answer"),
    ],
)
def test_wrongly_shaped_answer_to_creating_the_comment_is_one_line(
    github: FakeGitHub, answer: str, content_type: str, needle: str
) -> None:
    github.fail_next(201, body=answer, method="POST", content_type=content_type)
    with pytest.raises(PublishError, match=f"{needle} .*while trying to comment"):
        publish(github, f"{MARK}\nred\n", author="nightly-bot")


def test_html_page_from_a_captive_proxy_through_a_real_process(
    github: FakeGitHub, report_file: Path
) -> None:
    github.fail_next(200, body=HTML, content_type="text/html")
    done = run_module(
        "model_bisect", "publish", "--issue", "1", "--report", report_file,
        env=env_for(github), timeout=TIMEOUT,
    )  # fmt: skip
    refused(done, "read the authenticated user", "got an HTML page")


HOSTILE_RETRY_AFTER = [
    "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "-1", "-0.5", "1e400", "9" * 400,
    "99999999999", "soon", "", "0x10", "Wed, 21 Oct 2015 07:28:00 GMT",
    "Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 99 Foo 2020 99:99:99 GMT",
]  # fmt: skip


def test_hostile_retry_after_values_each_wait_a_finite_bounded_time(github: FakeGitHub) -> None:
    slept: list[float] = []
    for value in HOSTILE_RETRY_AFTER:  # one publish meets them all, one per retry
        github.fail_next(503, headers={"Retry-After": value})
        github.fail_next(429, headers={"Retry-After": value, "x-ratelimit-reset": value})
    retries = 2 * len(HOSTILE_RETRY_AFTER)
    result = publish(github, f"{MARK}\ngreen\n", sleep=slept.append, max_retries=retries)
    assert result.action == "created"
    assert len(slept) == retries
    assert all(math.isfinite(s) and 0 <= s <= MAX_WAIT for s in slept), slept


def test_retry_after_nan_through_a_real_process_retries_and_publishes(
    github: FakeGitHub, report_file: Path
) -> None:
    github.fail_next(503, headers={"Retry-After": "nan"})
    done = run_module(
        "model_bisect", "publish", "--issue", "1", "--report", report_file,
        env=env_for(github), timeout=TIMEOUT,
    )  # fmt: skip
    assert done.code == ExitCode.OK, done.err
    assert "Traceback" not in done.err
    assert len(github.comments(REPO, ISSUE)) == 1


def test_exhausted_rate_limit_with_a_nan_reset_still_waits_finitely(github: FakeGitHub) -> None:
    slept: list[float] = []
    github.fail_next(
        403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "nan"},
        body=json.dumps({"message": "API rate limit exceeded"}),
    )
    publish(github, f"{MARK}\ngreen\n", sleep=slept.append)
    assert len(slept) == 1
    assert 0 < slept[0] <= MAX_WAIT


def test_a_next_link_that_never_ends_stops_after_max_pages(github: FakeGitHub) -> None:
    github.endless_pages = True
    github.seed_comment(REPO, ISSUE, "a human's comment", "octocat")
    with pytest.raises(PublishError, match=f"past {MAX_PAGES} pages"):
        publish(github, f"{MARK}\ngreen\n", author="nightly-bot")
    assert github.count("GET") == MAX_PAGES
    assert github.count("POST") == 0


@pytest.mark.parametrize("link", ["garbage; <<>>;;rel=x", "<http://x>", '<u>; rel="next'])
def test_a_garbled_link_header_is_read_as_no_next_page(github: FakeGitHub, link: str) -> None:
    github.fail_next(200, body="[]", headers={"Link": link}, method="GET")
    result = publish(github, f"{MARK}\ngreen\n", author="nightly-bot")
    assert result.action == "created"


# -- 4. outputs never clobber ----------------------------------------------------------------


def test_body_out_onto_the_report_is_refused_before_any_request(
    github: FakeGitHub, report_file: Path, tmp_path: Path
) -> None:
    before = sha256(report_file)
    link = tmp_path / "via-link.md"
    link.symlink_to(report_file)
    hard = tmp_path / "hard.json"
    os.link(report_file, hard)
    for target in (report_file, link, hard):
        done = run_module(
            "model_bisect", "publish", "--issue", "1", "--report", report_file,
            "--body-out", target, env=env_for(github), timeout=TIMEOUT,
        )  # fmt: skip
        refused(done, "--body-out would overwrite the input", str(report_file.name))
        assert sha256(report_file) == before
    assert github.requests == []
    assert link.is_symlink()


def test_body_out_and_job_summary_onto_other_inputs_are_refused(
    github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "bisect.log"
    log.write_text("Traceback: it broke\n", encoding="utf-8")
    features, model = tmp_path / "features.parquet", tmp_path / "model_03.onnx"
    features.write_bytes(b"PAR1 not really")
    model.write_bytes(b"onnx bytes")
    base = make_report()
    timeline = tuple(replace(m, path=str(model)) for m in base.timeline)
    report = tmp_path / "result.json"
    report.write_text(
        dumps(replace(base, timeline=timeline, features=replace(base.features, path=str(features))))
    )
    sums = {p: sha256(p) for p in (log, features, model, report)}
    use_env(monkeypatch, env_for(github))
    cases = [
        (["--wiring-broke", "--error-log", log, "--body-out", log], "bisect.log"),
        (["--report", report, "--body-out", features], "features.parquet"),
        (["--report", report, "--body-out", model], "model_03.onnx"),
    ]
    for argv, needle in cases:
        refused(call_main("model_bisect", "publish", "--issue", "1", *argv), needle)
    assert {p: sha256(p) for p in sums} == sums
    assert github.requests == []


@pytest.mark.parametrize("variable", ["GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT"])
def test_an_actions_file_that_is_the_report_is_left_alone_and_publish_goes_on(
    github: FakeGitHub, report_file: Path, tmp_path: Path, variable: str
) -> None:
    before = sha256(report_file)
    other = "GITHUB_OUTPUT" if variable == "GITHUB_STEP_SUMMARY" else "GITHUB_STEP_SUMMARY"
    env = env_for(
        github, GITHUB_ACTIONS="true", **{variable: str(report_file), other: str(tmp_path / "o")}
    )
    done = run_module(
        "model_bisect", "publish", "--issue", "1", "--report", report_file, env=env, timeout=TIMEOUT
    )
    assert done.code == 0, done.err
    assert sha256(report_file) == before
    assert len(github.comments(REPO, ISSUE)) == 1
    assert f"::warning title=model-bisect::{variable} (" in done.out, done.out


def test_unwritable_body_out_is_one_line_before_anything_is_sent(
    github: FakeGitHub, report_file: Path, tmp_path: Path
) -> None:
    fifo = tmp_path / "nobody-reads"
    os.mkfifo(fifo)
    targets = {
        tmp_path: "is a directory",
        report_file / "body.md": "is a file",
        fifo: "FIFO that nothing reads",
        tmp_path / "bad\x00name.md": "cannot be looked up",
    }
    for target, needle in targets.items():
        done = call_main(
            "model_bisect", "publish", "--issue", "1", "--report", report_file,
            "--body-out", target,
        )  # fmt: skip
        refused(done, "--body-out target", needle)
    done = run_module(
        "model_bisect", "publish", "--issue", "1", "--report", report_file,
        "--body-out", tmp_path, env=env_for(github), timeout=TIMEOUT,
    )  # fmt: skip
    refused(done, "is a directory")
    assert github.requests == []


def test_body_out_through_a_symlink_keeps_the_link_and_new_files_follow_the_umask(
    github: FakeGitHub, report_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_env(monkeypatch, env_for(github))
    real = tmp_path / "real.md"
    real.write_text("old", encoding="utf-8")
    link = tmp_path / "link.md"
    link.symlink_to(real)
    fresh = tmp_path / "new" / "body.md"
    old_mask = os.umask(0o027)
    try:
        for target in (link, fresh):
            done = call_main(
                "model_bisect", "publish", "--dry-run", "--report", report_file,
                "--body-out", target,
            )  # fmt: skip
            assert done.code == ExitCode.OK, done.err
    finally:
        os.umask(old_mask)
    assert link.is_symlink()
    assert link.resolve() == real.resolve()
    assert real.read_text(encoding="utf-8").startswith(MARK)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640


def test_body_out_dash_puts_the_body_alone_on_stdout(github: FakeGitHub, report_file: Path) -> None:
    done = run_module(
        "model_bisect", "publish", "--issue", "1", "--report", report_file, "--body-out", "-",
        "--date", "2026-11-26T03:00:00Z", env=env_for(github), timeout=TIMEOUT,
    )  # fmt: skip
    assert done.code == ExitCode.OK, done.err
    assert done.out == github.comments(REPO, ISSUE)[0]["body"]
    assert done.err.startswith("created the sticky comment")
    dry = call_main(
        "model_bisect", "publish", "--dry-run", "--report", report_file, "--body-out", "-",
        "--date", "2026-11-26T03:00:00Z",
    )  # fmt: skip
    assert dry.out == done.out  # once, not twice


def test_special_error_logs_never_block_and_still_publish(
    github: FakeGitHub, tmp_path: Path
) -> None:
    fifo = tmp_path / "check.log"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.log"
    zero.symlink_to("/dev/zero")
    done = run_module(
        "model_bisect", "publish", "--issue", "1", "--wiring-broke", "--error-log", fifo,
        env=env_for(github), timeout=TIMEOUT,
    )  # fmt: skip
    assert done.code == ExitCode.OK, done.err
    assert "Traceback" not in done.err
    assert "it is a FIFO, not a regular file" in github.comments(REPO, ISSUE)[0]["body"]
    for log, kind in ((zero, "a character device"), (tmp_path, "a directory")):
        dry = run_module(
            "model_bisect", "publish", "--dry-run", "--wiring-broke", "--error-log", log,
            env=env_for(None), timeout=TIMEOUT,
        )  # fmt: skip
        assert dry.code == ExitCode.OK, dry.err
        assert f"it is {kind}, not a regular file" in dry.out


def test_huge_error_log_is_read_only_as_far_as_its_tail(
    github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "bisect.log"
    with log.open("wb") as handle:
        handle.truncate(1 << 30)  # 1 GiB of zero bytes, sparse
        handle.seek(0, os.SEEK_END)
        handle.write(b"\nFATAL: the last line\n")
    use_env(monkeypatch, env_for(github))
    done = call_main("model_bisect", "publish", "--dry-run", "--wiring-broke", "--error-log", log)
    assert done.code == ExitCode.OK
    assert "FATAL: the last line" in done.out


def test_hostile_report_files_are_one_line_and_never_block(
    github: FakeGitHub, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps({"schema_version": 1, "timeline": "x"}), encoding="utf-8")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00{")
    cases = {
        fifo: "a FIFO, not a regular file",
        Path("/dev/zero"): "a character device, not a regular file",
        tmp_path: "a directory, not a regular file",
        deep: "not a model-bisect report",
        odd: "not a model-bisect report",
        binary: "not a model-bisect report",
    }
    for path, needle in cases.items():
        done = run_module(
            "model_bisect", "publish", "--dry-run", "--report", path, env=env_for(None),
            timeout=TIMEOUT,
        )  # fmt: skip
        refused(done, needle)


def test_labels_with_lone_surrogates_still_publish_as_valid_utf8(
    github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = tmp_path / "result.json"
    labels = [f"m{i}-\udcff\ud800" for i in range(8)]
    report.write_text(json.dumps(make_report(labels=labels).to_json()), encoding="utf-8")
    use_env(monkeypatch, env_for(github))
    done = call_main(
        "model_bisect", "publish", "--issue", "1", "--report", report, "--body-out",
        tmp_path / "body.md",
    )  # fmt: skip
    assert done.code == ExitCode.OK, done.err
    body = github.comments(REPO, ISSUE)[0]["body"]
    body.encode("utf-8")  # no lone surrogate survived
    assert (tmp_path / "body.md").read_text(encoding="utf-8") == body


# -- 6. publish's own inputs -----------------------------------------------------------------

BAD_REPOS = [
    "../..", "acme/../..", "a/b/c", "acme", "/models", "acme/", "-acme/models", "acme-/models",
    "ac--me/models", "a_cme/models", "o" * 40 + "/models", "acme/" + "r" * 101, "acme/.",
    "acme/..", "acme/mo dels", "acme/modèles", "acme/models\n", "acme/models?x=1",
    "acme/models#top", "acme%2F../models", "acme/models/issues", "ａcme/models",
]  # fmt: skip


@pytest.mark.parametrize("repo", BAD_REPOS)
def test_repository_outside_githubs_name_rules_is_refused_before_any_request(
    github: FakeGitHub, report_file: Path, monkeypatch: pytest.MonkeyPatch, repo: str
) -> None:
    use_env(monkeypatch, env_for(github))
    done = call_main(
        "model_bisect", "publish", "--issue", "1", f"--repo={repo}", "--report", report_file
    )
    refused(done, "invalid repository", "in --repo", "OWNER/NAME")
    if repo.strip() == repo:  # the variable is stripped: a file's trailing newline is no name
        monkeypatch.setenv("GITHUB_REPOSITORY", repo)
        done = call_main("model_bisect", "publish", "--issue", "1", "--report", report_file)
        refused(done, "in GITHUB_REPOSITORY")
    assert github.requests == []


def test_repository_names_github_allows_are_accepted() -> None:
    good = ["A-1/x.y_z-", "o" * 39 + "/" + "r" * 100, "acme/.github", "x/..."]
    with FakeGitHub(issues=[(repo, 1) for repo in good]) as fake:
        for repo in good:
            result = publish(fake, f"{MARK}\ngreen\n", repo=repo, author="nightly-bot")
            assert result.action == "created"
            assert len(fake.comments(repo, 1)) == 1


def test_dot_dot_repository_through_a_real_process_sends_nothing(
    github: FakeGitHub, report_file: Path
) -> None:
    done = run_module(
        "model_bisect", "publish", "--issue", "1", "--repo", "../..", "--report", report_file,
        env=env_for(github), timeout=TIMEOUT,
    )  # fmt: skip
    refused(done, "invalid repository '../..'")
    assert github.requests == []


def test_credentials_in_the_api_url_never_appear_in_any_message(
    github: FakeGitHub, report_file: Path
) -> None:
    password = "hunter2-very-secret-pw"
    host = github.url.removeprefix("http://")
    urls = [
        f"http://admin:{password}@{host}",
        f"http://{password}@{host}",
        f"http://x-access-token:{github.token}@{host}/api/v3",
    ]
    for number, url in enumerate(urls):  # by variable, by flag, by variable
        env = env_for(github, GITHUB_API_URL=url) if number % 2 == 0 else env_for(github)
        argv = ["--issue", "1", "--report", str(report_file)]
        if number % 2:
            argv += ["--api-url", url]
        done = run_module("model_bisect", "publish", *argv, env=env, timeout=TIMEOUT)
        line = refused(done, "carries a user name or password", "***@")
        assert password not in done.out + done.err
        assert github.token not in line
    assert github.requests == []


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("ftp://example.com", "not an http(s) API URL"),
        ("api.github.com", "not an http(s) API URL"),
        ("http://", "not an http(s) API URL"),
        ("http://example.com:99999", "unparsable API URL"),
        ("http://[::1", "unparsable API URL"),
        ("http://exa mple.com", "spaces or control characters"),
        ("http://example.com/\x1b[31m", "spaces or control characters"),
        ("https://example.com/?token=x", "query or fragment"),
    ],
)
def test_unusable_api_url_is_one_line(
    report_file: Path, monkeypatch: pytest.MonkeyPatch, url: str, needle: str
) -> None:
    use_env(monkeypatch, {"GH_TOKEN": "ghp_" + "x" * 36, "GITHUB_REPOSITORY": REPO})
    done = call_main(
        "model_bisect", "publish", "--issue", "1", "--api-url", url, "--report", report_file
    )
    refused(done, needle, "--api-url")


@pytest.mark.parametrize("token", ["abc\ndef-ghijkl", "tøken-with-accent", "two words here"])
def test_a_token_that_cannot_be_a_header_is_refused_without_being_shown(
    github: FakeGitHub, report_file: Path, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    use_env(monkeypatch, env_for(github, GH_TOKEN=token))
    done = call_main("model_bisect", "publish", "--issue", "1", "--report", report_file)
    line = refused(done, "the token holds")
    assert token not in line
    assert token.split()[0] not in line
    assert github.requests == []


def test_a_locked_issue_says_it_is_locked(github: FakeGitHub, report_file: Path) -> None:
    github.lock(REPO, ISSUE)
    done = run_module(
        "model_bisect", "publish", "--issue", "1", "--report", report_file,
        env=env_for(github), timeout=TIMEOUT,
    )  # fmt: skip
    refused(done, f"issue {ISSUE} in {REPO} is locked", LOCKED_MESSAGE, "unlock")
    assert github.count("POST") == 1  # refused once, not retried


def test_editing_a_comment_of_a_locked_issue_says_it_is_locked(github: FakeGitHub) -> None:
    publish(github, f"{MARK}\ngreen\n")
    github.lock(REPO, ISSUE)
    with pytest.raises(PublishError, match="is locked"):
        publish(github, f"{MARK}\nred\n")


@pytest.mark.parametrize("token", ["0", "1", "true", "plcc", "#", "nightly"])
def test_a_short_token_leaves_the_body_exactly_as_without_one(
    report_file: Path, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    # One --date for both: the history line would otherwise differ across a second boundary.
    argv = ("publish", "--dry-run", "--report", report_file, "--date", "2026-11-26T03:00:00Z")
    plain = call_main("model_bisect", *argv)
    monkeypatch.setenv("GH_TOKEN", token)
    with_token = call_main("model_bisect", *argv)
    assert with_token.code == ExitCode.OK, with_token.err
    assert with_token.out == plain.out


def test_gh_token_zero_publishes_an_intact_comment(
    report_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeGitHub(token="0") as fake:
        use_env(monkeypatch, env_for(fake))
        done = call_main("model_bisect", "publish", "--issue", "1", "--report", report_file)
        assert done.code == ExitCode.OK, done.err
        body = fake.comments(REPO, ISSUE)[0]["body"]
    assert MASK not in body
    assert "0.850" in body or "0.85" in body  # the gate's threshold survived


def test_a_token_spelling_part_of_the_marker_keeps_the_comment_sticky(
    report_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "model-bisect"
    with FakeGitHub(token=token) as fake:
        use_env(monkeypatch, env_for(fake))
        for _ in range(2):
            done = call_main("model_bisect", "publish", "--issue", "1", "--report", report_file)
            assert done.code == ExitCode.OK, done.err
        comments = fake.comments(REPO, ISSUE)
    assert len(comments) == 1  # found and kept, not re-created
    body = comments[0]["body"]
    assert body.startswith(MARK + "\n")
    shown = [line for line in body.splitlines() if not line.startswith("<!-- model-bisect:")]
    assert all(token not in line for line in shown)
    assert len(read_history(body).runs) == 2  # the history line survived redaction too


@pytest.mark.parametrize(
    "secret", ['"index": 1', "schema_version", "00000000", '"verdict": {', "\\u0000ab"]
)
def test_redacting_a_report_never_breaks_it(secret: str) -> None:
    report = make_report(labels=[f"m{i} {secret}" for i in range(8)])
    clean = redact_report(report, [secret])
    assert isinstance(clean, Report)
    assert Report.from_json(json.loads(dumps(clean))) == clean
    assert clean.steps[0].metrics == report.steps[0].metrics
    assert clean.timeline[2].label == f"m2 {MASK}"


def test_short_secrets_are_not_searched_and_own_marker_lines_are_kept() -> None:
    assert redact("0 1 00 true", ["0", "true"]) == "0 1 00 true"
    body = f"{MARK}\nmodel-bisect run\n<!-- model-bisect:history:v1 abc -->\n"
    assert redact_body(body, ["model-bisect"]) == (
        f"{MARK}\n{MASK} run\n<!-- model-bisect:history:v1 abc -->\n"
    )


def test_unusable_inputs_to_the_library_are_usage_errors(github: FakeGitHub) -> None:
    with pytest.raises(UsageError, match="invalid repository"):
        publish(github, f"{MARK}\nx\n", repo="../..")
    with pytest.raises(UsageError, match="user name or password"):
        publish(github, f"{MARK}\nx\n", api_url=github.url.replace("//", "//u:p@"))
    assert github.requests == []


def test_issue_numbers_beyond_github_range_or_not_ascii_are_usage_errors() -> None:
    for issue in ("2147483648", "9" * 5000, "٣", "²", "+1", " 1"):
        done = call_main("model_bisect", "publish", "--issue", issue, "--dry-run", "--report", "x")
        refused(done, "issue must be a positive number")


def test_a_full_disk_for_body_out_or_the_job_summary_is_one_line(
    github: FakeGitHub, report_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    use_env(monkeypatch, env_for(github))
    done = call_main(
        "model_bisect", "publish", "--issue", "1", "--report", report_file,
        "--body-out", "/dev/full",
    )  # fmt: skip
    refused(done, "cannot write --body-out (No space left on device)")
    # Inside Actions a job summary that cannot be written is a warning, not a failure: the
    # comment went out (docs/usage.md, "Inside GitHub Actions").
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", "/dev/full")
    done = call_main("model_bisect", "publish", "--issue", "1", "--report", report_file)
    assert done.code == ExitCode.OK, done.err
    assert "Traceback" not in done.err + done.out
    assert (
        "::warning title=model-bisect::cannot append to GITHUB_STEP_SUMMARY ('/dev/full'): "
        "No space left on device"
    ) in done.out.splitlines()


@pytest.mark.parametrize(
    "date", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2026-13-01", "x" * 500]
)
def test_a_date_off_the_calendar_is_a_usage_error(report_file: Path, date: str) -> None:
    argv = ("--dry-run", "--report", report_file, "--date", date)
    done = call_main("model_bisect", "publish", *argv)
    line = refused(done, "date must be ISO 8601")
    assert len(line) < 300


# -- tokens are masked by value in every error, URLs included -------------------------------

ODD_TOKEN = "s3cret-Not-GitHub-shaped_42"  # no pattern would find it; only its value can


def _every_output(done: CliRun, *files: Path) -> str:
    return done.out + done.err + "".join(f.read_text("utf-8") for f in files if f.exists())


@pytest.mark.parametrize("token", [ODD_TOKEN, "ghp_" + "Q" * 36, "tok/with%2Fslash"])
def test_a_token_in_the_api_url_path_is_absent_from_every_output(
    report_file: Path, tmp_path: Path, token: str
) -> None:
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs"
    env = env_for(
        None,
        GH_TOKEN=token,
        GITHUB_REPOSITORY=REPO,
        GITHUB_API_URL=f"http://127.0.0.1:1/{token}",
        GITHUB_ACTIONS="true",
        GITHUB_STEP_SUMMARY=str(summary),
        GITHUB_OUTPUT=str(outputs),
    )
    done = run_module(
        "model_bisect", "publish", "--issue", "1", "--report", report_file, env=env, timeout=TIMEOUT
    )
    assert done.code != 0
    assert "cannot reach http://127.0.0.1:1/***" in done.err, done.err
    assert "Traceback" not in done.err
    seen = _every_output(done, summary, outputs)
    assert token not in seen
    assert token.replace("/", "%2F") not in seen


def test_repeated_500_answers_never_print_the_token_in_the_url(
    report_file: Path, tmp_path: Path
) -> None:
    with FakeGitHub(token=ODD_TOKEN) as github:
        github.fail_next(500, times=20, headers={"Retry-After": "0"})
        summary = tmp_path / "summary.md"
        env = env_for(
            github,
            GITHUB_API_URL=f"{github.url}/{ODD_TOKEN}",
            GITHUB_ACTIONS="true",
            GITHUB_STEP_SUMMARY=str(summary),
            GITHUB_OUTPUT=str(tmp_path / "outputs"),
        )
        done = run_module(
            "model_bisect", "publish", "--issue", "1", "--report", report_file, env=env,
            timeout=TIMEOUT,
        )  # fmt: skip
        assert github.requests, "the server was asked"
    assert done.code != 0
    assert "500 from" in done.err, done.err
    assert ODD_TOKEN not in _every_output(done, summary, tmp_path / "outputs")


def test_mask_error_masks_a_value_of_any_shape_and_its_url_encoding() -> None:
    from model_bisect.publishing.redact import mask_error

    text = "cannot reach http://h/a%2Fb%3Dc/x and a/b=c and abc"
    assert mask_error(text, ("a/b=c",)) == "cannot reach http://h/***/x and *** and abc"
    assert mask_error("pin 1234 in use", ("1234",)) == "pin *** in use"
