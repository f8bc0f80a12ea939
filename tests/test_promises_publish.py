"""The sticky comment's duplicate rule, pinned a second time: the newest of ours is kept.

"Newest" is by creation time (ties by id), not by the id alone nor by list order; the other
comments of ours with the marker are deleted, and nobody else's comment is touched. Through
the `model-bisect publish` command line against the loopback fake GitHub API.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from model_bisect.exitcodes import ExitCode
from model_bisect.publishing.github import publish_comment
from tests.clirun import call_main
from tests.fake_github import FakeGitHub

REPO, ISSUE = "acme/models", 3
MARK = "<!-- model-bisect:nightly -->"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


def _sticky(text: str) -> str:
    return f"{MARK}\n{text}\n"


def _backdate(github: FakeGitHub, comment_id: int, stamp: str) -> None:
    """What a comment restored or imported later looks like: a low id, a late creation time."""
    github._state.comments[comment_id]["created_at"] = stamp


def test_the_newest_by_creation_time_is_kept_even_with_a_lower_id(github: FakeGitHub) -> None:
    late = github.seed_comment(REPO, ISSUE, _sticky("created last"), "nightly-bot")
    early = github.seed_comment(REPO, ISSUE, _sticky("created first"), "nightly-bot")
    _backdate(github, late, "2026-06-01T00:00:00Z")
    _backdate(github, early, "2026-01-01T00:00:00Z")
    assert late < early
    result = publish_comment(
        _sticky("tonight"), repo=REPO, issue=ISSUE, token=github.token, api_url=github.url
    )
    assert result.comment_id == late
    assert result.action == "updated"
    assert result.deleted == (early,)
    assert [(c["id"], c["body"]) for c in github.comments(REPO, ISSUE)] == [
        (late, _sticky("tonight"))
    ]


def test_cli_publish_keeps_the_newest_of_two_and_spares_other_authors(
    github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no [tool.model-bisect] decides the marker or the issue
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GH_", "GITHUB_"))}
    env.update(GH_TOKEN=github.token, GITHUB_REPOSITORY=REPO, GITHUB_API_URL=github.url)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    human = github.seed_comment(REPO, ISSUE, _sticky("quoted by a person"), "alice")
    older = github.seed_comment(REPO, ISSUE, _sticky("race a"), "nightly-bot")
    github.seed_comment(REPO, ISSUE, "chatter", "bob")
    newer = github.seed_comment(REPO, ISSUE, _sticky("race b"), "nightly-bot")
    log = tmp_path / "nightly.log"
    log.write_text("RuntimeError: settled\n", encoding="utf-8")
    ran = call_main(
        "model_bisect", "publish", "--issue", str(ISSUE), "--wiring-broke", "--error-log", log
    )
    assert ran.code == ExitCode.OK, ran.err
    comments = {c["id"]: c["body"] for c in github.comments(REPO, ISSUE)}
    assert older not in comments
    assert comments[newer].startswith(MARK)
    assert "RuntimeError: settled" in comments[newer]
    assert comments[human] == _sticky("quoted by a person")
    assert len(comments) == 3
