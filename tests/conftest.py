"""Guards every test: no test may touch the user's evaluation cache or a real GitHub token."""

from __future__ import annotations

from pathlib import Path

import pytest

# The fake GitHub API is a fixture every publishing test (and the nightly tests) share.
pytest_plugins = ("tests.fake_github",)

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE_DIR = REPO_ROOT / "testdata" / "bisect"

_LEAKY_VARIABLES = (
    "GH_TOKEN",
    "GITHUB_TOKEN",
    "GITHUB_STEP_SUMMARY",
    # Inside CI's own runner the tools would write outputs and annotations for every test run.
    "GITHUB_ACTIONS",
    "GITHUB_OUTPUT",
    "RUNNER_TEMP",
    "GITHUB_REPOSITORY",
    "GITHUB_API_URL",
    "GITHUB_RUN_ID",
    "GITHUB_SERVER_URL",
    "BISECT_TRACKER_ISSUE",
    "BISECT_FIXTURE_DIR",
    "BISECT_OUT",
)


@pytest.fixture(autouse=True)
def _isolated_environment(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_BISECT_CACHE_DIR", str(tmp_path_factory.mktemp("eval-cache")))
    for name in _LEAKY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
