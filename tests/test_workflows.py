"""The GitHub workflows: actionlint-clean, and the nightly's contract pinned field by field."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
NIGHTLY = WORKFLOWS / "nightly-bisect.yml"
ACTIONLINT = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which(
    "actionlint"
)
# owner/repo[/path]@<40 hex> # vX[.Y[.Z]]
PINNED_USE = re.compile(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+){0,2}$")

needs_actionlint = pytest.mark.skipif(ACTIONLINT is None, reason="actionlint is not installed")


def _load(path: Path) -> dict[Any, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    triggers = workflow.get("on", workflow.get(True))
    assert isinstance(triggers, dict)
    return triggers


def _steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def _actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    assert ACTIONLINT is not None
    return subprocess.run(
        [ACTIONLINT, "-no-color", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_three_workflows_exist() -> None:
    names = {path.name for path in WORKFLOWS.glob("*.yml")}
    assert {"nightly-bisect.yml", "ci.yml", "drift-matrix.yml"} <= names


@needs_actionlint
@pytest.mark.parametrize("name", ["nightly-bisect.yml", "ci.yml", "drift-matrix.yml"])
def test_actionlint_passes_on_workflow(name: str) -> None:
    result = _actionlint(WORKFLOWS / name)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_actionlint
def test_actionlint_flags_a_broken_copy_of_the_nightly(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "nightly-bisect.yml"
    broken.parent.mkdir(parents=True)
    text = NIGHTLY.read_text(encoding="utf-8")
    text = text.replace("${{ secrets.GITHUB_TOKEN }}", "${{ secrets.GITHUB_TOKEN }")
    text = text.replace('cron: "37 4 * * *"', 'cron: "37 25 * * *"')
    broken.write_text(text, encoding="utf-8")
    result = _actionlint(broken)
    assert result.returncode != 0
    assert "cron" in result.stdout
    assert "nightly-bisect.yml" in result.stdout


def test_nightly_runs_at_0437_utc_and_on_demand() -> None:
    triggers = _triggers(_load(NIGHTLY))
    assert triggers["schedule"] == [{"cron": "37 4 * * *"}]
    assert "workflow_dispatch" in triggers
    assert set(triggers) == {"schedule", "workflow_dispatch"}


def test_nightly_token_can_only_read_code_and_write_issues() -> None:
    workflow = _load(NIGHTLY)
    assert workflow["permissions"] == {"contents": "read", "issues": "write"}
    for job in workflow["jobs"].values():
        assert "permissions" not in job  # no job widens them


def test_nightlies_never_overlap_and_each_has_a_timeout() -> None:
    workflow = _load(NIGHTLY)
    concurrency = workflow["concurrency"]
    assert "${{" not in concurrency["group"]  # one group for every ref: one sticky comment
    assert concurrency["cancel-in-progress"] is False
    for job in workflow["jobs"].values():
        assert 0 < job["timeout-minutes"] <= 90


@pytest.mark.parametrize("name", ["nightly-bisect.yml", "ci.yml", "drift-matrix.yml"])
def test_every_action_is_pinned_to_a_commit_sha_with_its_version(name: str) -> None:
    text = (WORKFLOWS / name).read_text(encoding="utf-8")
    uses = [line.strip().removeprefix("- ") for line in text.splitlines() if "uses:" in line]
    assert uses
    for line in uses:
        assert PINNED_USE.search(line), line
    for step in _steps(_load(WORKFLOWS / name)):
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", step["uses"]), step["uses"]


@pytest.mark.parametrize("name", ["nightly-bisect.yml", "ci.yml", "drift-matrix.yml"])
def test_checkout_does_not_persist_credentials(name: str) -> None:
    checkouts = [
        step
        for step in _steps(_load(WORKFLOWS / name))
        if step.get("uses", "").startswith("actions/checkout@")
    ]
    assert checkouts
    for step in checkouts:
        assert step["with"]["persist-credentials"] is False


def test_nightly_sets_up_python_311_and_installs_with_the_pinned_toolchain() -> None:
    steps = _steps(_load(NIGHTLY))
    setup = [step for step in steps if step.get("uses", "").startswith("actions/setup-python@")]
    assert [step["with"]["python-version"] for step in setup] == ["3.11"]
    installs = [step["run"] for step in steps if "pip install" in step.get("run", "")]
    assert installs == ["python -m pip install -c constraints/toolchain.txt -e '.[dev]'"]


def test_the_single_entry_point_is_invoke_nightly_publish() -> None:
    steps = _steps(_load(NIGHTLY))
    runs = [step for step in steps if "run" in step]
    chain = [step for step in runs if "invoke" in step["run"]]
    assert len(chain) == 1
    assert chain[0]["run"].strip() == "invoke nightly --publish"
    assert chain[0]["env"] == {
        "GH_TOKEN": "${{ secrets.GITHUB_TOKEN }}",
        "BISECT_TRACKER_ISSUE": "${{ vars.BISECT_TRACKER_ISSUE }}",
    }
    for step in runs:  # nothing else calls the parts behind invoke's back
        assert not re.search(r"model-bisect|cache_builder|\bnox\b", step["run"]), step["run"]
    for step in steps:  # and the token reaches only that step
        if step is not chain[0]:
            assert "secrets." not in str(step), step


def test_bisect_out_is_uploaded_as_bisect_report_even_when_the_chain_fails() -> None:
    steps = _steps(_load(NIGHTLY))
    uploads = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert len(uploads) == 1
    upload = uploads[0]
    assert upload["if"] == "always()"
    assert upload["with"]["name"] == "bisect-report"
    assert upload["with"]["path"].rstrip("/") == "bisect-out"
    assert steps.index(upload) > max(i for i, s in enumerate(steps) if "invoke" in s.get("run", ""))


def test_ci_runs_lint_tests_and_drift_on_push_and_pull_request() -> None:
    workflow = _load(WORKFLOWS / "ci.yml")
    assert {"push", "pull_request"} <= set(_triggers(workflow))
    runs = [step["run"] for step in _steps(workflow) if "run" in step]
    assert "nox -s lint tests drift" in runs


def test_drift_matrix_runs_weekly_on_demand_across_python_311_to_313() -> None:
    workflow = _load(WORKFLOWS / "drift-matrix.yml")
    triggers = _triggers(workflow)
    assert "workflow_dispatch" in triggers
    (cron,) = (entry["cron"] for entry in triggers["schedule"])
    assert re.fullmatch(r"\d+ \d+ \* \* \d", cron)  # one weekday: weekly
    (job,) = workflow["jobs"].values()
    assert job["strategy"]["matrix"]["python"] == ["3.11", "3.12", "3.13"]
    assert job["strategy"]["fail-fast"] is False
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert any(run.startswith("nox -s drift_matrix") for run in runs)
    uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert uploads[0]["if"] == "always()"
    assert "drift-matrix.json" in uploads[0]["with"]["path"]
