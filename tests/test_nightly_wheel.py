"""`model-bisect nightly` from the built wheel, installed with `uv tool install` outside the
repository, on a copy of the fixture (green) and on a drifted copy (wiring broke), posting to
the fake GitHub API. Slow: it builds the wheel and installs it with its dependencies."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model_bisect.exitcodes import ExitCode

from .conftest import REPO_ROOT
from .fake_github import FakeGitHub
from .test_nightly_chain import BOX, _copy, _drifted_copy

pytestmark = pytest.mark.slow

REPO, ISSUE = "acme/other-repo", 7
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model-bisect script of the wheel, installed as a uv tool under tmp."""
    if UV is None:
        pytest.skip("uv is not installed")
    scratch = tmp_path_factory.mktemp("wheel")
    dist = scratch / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(REPO_ROOT)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    (wheel,) = dist.glob("*.whl")
    env = dict(os.environ, UV_TOOL_DIR=str(scratch / "tools"), UV_TOOL_BIN_DIR=str(scratch / "bin"))
    subprocess.run(
        [UV, "tool", "install", "--python", sys.executable,
         "-c", str(REPO_ROOT / "constraints" / "toolchain.txt"), str(wheel)],
        check=True, capture_output=True, env=env, timeout=900,
    )  # fmt: skip
    return scratch / "bin" / "model-bisect"


def _nightly(
    script: Path, work: Path, github: FakeGitHub, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "BISECT_", "GH_"))}
    env.pop("PYTHONPATH", None)
    env.update(
        GH_TOKEN=github.token, GITHUB_REPOSITORY=REPO, GITHUB_API_URL=github.url,
        MODEL_BISECT_CACHE_DIR=str(work / "eval-cache"),
    )  # fmt: skip
    (work / "pyproject.toml").write_text(
        f"[tool.model-bisect]\nmin-plcc = 0.85\ntracker-issue = {ISSUE}\n", encoding="utf-8"
    )
    return subprocess.run(
        [str(script), "nightly", "--publish", "--out", str(work / "out"), *args],
        cwd=work, env=env, capture_output=True, text=True, encoding="utf-8", timeout=600,
        check=False,
    )  # fmt: skip


def test_the_installed_wheels_nightly_is_green_on_a_copy_of_the_fixture(
    installed: Path, tmp_path: Path
) -> None:
    with FakeGitHub(issues=[(REPO, ISSUE)]) as github:
        done = _nightly(installed, tmp_path, github, "--fixture", str(_copy(tmp_path)))
        assert done.returncode == ExitCode.OK, done.stdout[-2000:] + done.stderr[-2000:]
        (comment,) = github.comments(REPO, ISSUE)
    assert "No regression" in comment["body"]
    # each step ran on the tool's own interpreter, where only the wheel is installed
    log = (tmp_path / "out" / "bisect.log").read_text(encoding="utf-8")
    assert log.startswith(f"$ {installed.parent.parent / 'tools'}")


def test_the_installed_wheels_nightly_on_a_drifted_fixture_posts_wiring_broke_intact(
    installed: Path, tmp_path: Path
) -> None:
    with FakeGitHub(issues=[(REPO, ISSUE)]) as github:
        done = _nightly(installed, tmp_path, github, "--fixture", str(_drifted_copy(tmp_path)))
        assert done.returncode == ExitCode.DRIFT, done.stdout[-2000:] + done.stderr[-2000:]
        (comment,) = github.comments(REPO, ISSUE)
    body = comment["body"]
    assert "Wiring broke in stage <code>check</code>" in body
    assert "vif_scale1" in body
    assert set(BOX) <= set(body)
    assert "\ufffd" not in body
    assert github.token not in done.stdout + done.stderr + body
