"""`invoke nightly` end to end, as the workflow runs it, against the fake GitHub API.

Each run is a real `python -m invoke nightly ...` subprocess in the repository, which runs
`model-bisect nightly`: the drift check through `python -m cache_builder check`, the bisect
through `model-bisect run`, and the sticky comment through `model-bisect publish` to the
loopback server. Outputs go
to a `bisect-out` under tmp (BISECT_OUT) and evaluations to a fresh cache (MODEL_BISECT_CACHE_DIR).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model_bisect.exitcodes import ExitCode

from .clirun import run_module
from .conftest import FIXTURE_DIR
from .fake_github import FakeGitHub
from .modelkit import bad_weights, linear_model

pytestmark = pytest.mark.slow

REPO, ISSUE = "acme/models", 1
MARKER = "<!-- model-bisect:nightly -->"


@dataclass(frozen=True)
class Nightly:
    exit_code: int
    stdout: str
    stderr: str
    out: Path


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


def _nightly(tmp_path: Path, github: FakeGitHub | None, *args: str) -> Nightly:
    out = tmp_path / "bisect-out"
    env = dict(os.environ)
    env.update(
        BISECT_OUT=str(out),
        MODEL_BISECT_CACHE_DIR=str(tmp_path / "eval-cache"),
        PYTHONIOENCODING="utf-8",
    )
    if github is not None:
        env.update(
            GH_TOKEN=github.token,
            GITHUB_REPOSITORY=REPO,
            GITHUB_API_URL=github.url,
            BISECT_TRACKER_ISSUE=str(ISSUE),
        )
    result = run_module("invoke", "nightly", *args, env=env, timeout=900)
    return Nightly(result.code, result.out, result.err, out)


def _assert_token_never_leaks(run: Nightly, github: FakeGitHub) -> None:
    assert github.token not in run.stdout
    assert github.token not in run.stderr
    for path in run.out.rglob("*"):
        if path.is_file():
            assert github.token not in path.read_text(encoding="utf-8", errors="replace"), path
    for comment in github.comments(REPO, ISSUE):
        assert github.token not in comment["body"]


def _sticky(github: FakeGitHub) -> str:
    comments = github.comments(REPO, ISSUE)
    assert len(comments) == 1
    body = comments[0]["body"]
    assert body.startswith(MARKER)
    return str(body)


def _copy_fixture(tmp_path: Path) -> Path:
    copy = tmp_path / "fixture"
    shutil.copytree(FIXTURE_DIR, copy)
    return copy


def test_nightly_on_the_committed_fixture_posts_one_green_comment_and_exits_0(
    tmp_path: Path, github: FakeGitHub
) -> None:
    run = _nightly(tmp_path, github, "--publish")

    assert run.exit_code == ExitCode.OK, run.stderr[-3000:]
    body = _sticky(github)
    assert "No regression" in body
    assert "Wiring broke" not in body
    # The report names the chain that produced it, not the inner `model-bisect run`.
    assert "reproduce locally: <code>model-bisect nightly --config pyproject.toml</code>" in body
    for name in ("check.json", "check.log", "bisect.log", "result.json", "result.md"):
        assert (run.out / name).is_file(), name
    assert (run.out / "comment.md").read_text(encoding="utf-8") == body
    _assert_token_never_leaks(run, github)


def test_nightly_on_a_regression_timeline_posts_the_first_bad_index_and_exits_2(
    tmp_path: Path, github: FakeGitHub
) -> None:
    # The drift check guards the committed cache; the timeline bisected is a copy whose
    # models 5..7 were replaced by random-weight ones (a checked fixture cannot hold them).
    models = _copy_fixture(tmp_path) / "models"
    for index in (5, 6, 7):
        linear_model(models / f"model_{index:02d}.onnx", bad_weights(6, seed=index))

    run = _nightly(tmp_path, github, "--publish", "--models", str(models))

    assert run.exit_code == ExitCode.REGRESSION, run.stderr[-3000:]
    body = _sticky(github)
    assert "Regression at index 5" in body
    assert "reproduce locally: <code>model-bisect nightly --models " in body
    assert "--publish" not in body.split("reproduce locally:", 1)[1]
    verdict = json.loads((run.out / "result.json").read_text(encoding="utf-8"))["verdict"]
    assert (verdict["kind"], verdict["first_bad_index"]) == ("regression", 5)
    assert "regression" in run.stderr
    _assert_token_never_leaks(run, github)


def test_nightly_on_a_drifted_fixture_posts_wiring_broke_and_keeps_the_logs(
    tmp_path: Path, github: FakeGitHub
) -> None:
    fixture = _copy_fixture(tmp_path)
    features = fixture / "features.parquet"
    table = pq.read_table(features)
    adm2 = table.column("adm2").to_pylist()
    adm2[3] += 0.25
    table = table.set_column(
        table.schema.get_field_index("adm2"), "adm2", pa.array(adm2, pa.float32())
    )
    pq.write_table(table, features, compression="zstd")

    run = _nightly(tmp_path, github, "--publish", "--fixture", str(fixture))

    assert run.exit_code == ExitCode.DRIFT, run.stderr[-3000:]
    body = _sticky(github)
    assert "Wiring broke" in body
    assert "check" in body
    assert "adm2" in body  # the log's tail names the drifted column
    for name in ("check.json", "check.log", "bisect.log", "comment.md"):
        assert (run.out / name).is_file(), name
    assert not (run.out / "result.json").exists()
    assert "content" in (run.out / "check.json").read_text(encoding="utf-8")
    _assert_token_never_leaks(run, github)


def test_nightly_without_publish_prints_the_green_body_and_saves_it(tmp_path: Path) -> None:
    run = _nightly(tmp_path, None)

    assert run.exit_code == ExitCode.OK, run.stderr[-3000:]
    assert MARKER in run.stdout
    assert "No regression" in run.stdout
    saved = (run.out / "comment.md").read_text(encoding="utf-8")
    assert saved.startswith(MARKER)
    assert saved in run.stdout


def test_nightly_on_a_fixture_that_is_not_there_exits_3_with_the_wiring_broke_body(
    tmp_path: Path,
) -> None:
    run = _nightly(tmp_path, None, "--fixture", str(tmp_path / "no-such-fixture"))

    assert run.exit_code == ExitCode.INPUT, run.stderr[-3000:]
    assert "Wiring broke" in run.stdout
    assert "wiring broke (check)" in run.stderr
    assert (run.out / "check.log").is_file()


def test_invoke_publish_republishes_an_existing_report_into_the_same_comment(
    tmp_path: Path, github: FakeGitHub
) -> None:
    out = tmp_path / "bisect-out"
    bisected = run_module(
        "model_bisect", "run", FIXTURE_DIR / "models",
        "--features", FIXTURE_DIR / "features.parquet", "--min-plcc", "0.85",
        "--quiet", "--json", out / "result.json", "--cache-dir", tmp_path / "cache",
    )  # fmt: skip
    assert bisected.code == ExitCode.OK, bisected.err
    env = dict(
        os.environ,
        BISECT_OUT=str(out),
        GH_TOKEN=github.token,
        GITHUB_REPOSITORY=REPO,
        GITHUB_API_URL=github.url,
    )
    for _ in range(2):
        result = run_module("invoke", "publish", "--issue", str(ISSUE), env=env)
        assert result.code == ExitCode.OK, result.err
        assert github.token not in result.out + result.err
    assert "No regression" in _sticky(github)
