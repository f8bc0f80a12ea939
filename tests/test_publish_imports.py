"""`publish` imports only what it uses: a dry run no network client at all, a real publish
ghapi's core client and not `ghapi.all` (actions, auth, pagination, events it never calls).

Pinned on real processes with ``-X importtime``, as tests/test_run_imports.py does for `run`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from model_bisect.exitcodes import ExitCode
from model_bisect.report import VerdictKind, dumps

from .fake_github import FakeGitHub
from .reportkit import make_report
from .test_run_imports import _imported

NETWORK = ("ghapi", "httpx", "httpx2", "fastcore", "fastspec", "fasttransport", "requests")
UNUSED_GHAPI = {"ghapi.all", "ghapi.actions", "ghapi.auth", "ghapi.page", "ghapi.event"}


def _publish(tmp_path: Path, env: dict[str, str], *args: str) -> set[str]:
    report = tmp_path / "result.json"
    report.write_text(
        dumps(make_report(kind=VerdictKind.NO_REGRESSION, first_bad=None)), encoding="utf-8"
    )
    command = [sys.executable, "-X", "importtime", "-m", "model_bisect", "publish"]
    done = subprocess.run(
        [*command, "--report", str(report), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == ExitCode.OK, done.stderr[-3000:]
    return _imported(done.stderr)


def _network(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in NETWORK}


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GH_"))}


def test_a_dry_run_imports_no_network_client(tmp_path: Path) -> None:
    modules = _publish(tmp_path, _clean_env(), "--dry-run")
    assert "model_bisect.publishing.comment" in modules  # the probe sees real imports
    assert _network(modules) == set()


def test_a_real_publish_imports_ghapis_core_client_and_nothing_else_of_it(
    tmp_path: Path,
) -> None:
    with FakeGitHub() as github:
        env = {
            **_clean_env(),
            "GH_TOKEN": github.token,
            "GITHUB_REPOSITORY": "acme/models",
            "GITHUB_API_URL": github.url,
        }
        modules = _publish(tmp_path, env, "--issue", "1")
        assert len(github.comments("acme/models", 1)) == 1
    assert "ghapi.core" in modules
    assert modules & UNUSED_GHAPI == set()
