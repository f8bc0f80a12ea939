"""Nox sessions and Invoke tasks as policies, without running the chain itself."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import nox
import pytest
from invoke.tasks import Task

from .conftest import REPO_ROOT

CONSTRAINTS = REPO_ROOT / "constraints"
MATRIX_PINS = CONSTRAINTS / "drift-matrix"


def _pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a requirements file, following `-r`/`-c` includes."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith(("-r ", "-c ")):
            pins.update(_pins(path.parent / line[3:].strip()))
        elif "==" in line:
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


@pytest.fixture(scope="module")
def noxfile() -> ModuleType:
    spec = importlib.util.spec_from_file_location("noxfile_under_test", REPO_ROOT / "noxfile.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():  # another test module may have registered the sessions
        warnings.simplefilter("ignore", FutureWarning)
        spec.loader.exec_module(module)
    return module


def _load_tasks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tasks_under_test", REPO_ROOT / "tasks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_nox_prefers_uv_and_runs_tests_lint_drift_by_default(noxfile: ModuleType) -> None:
    assert nox.options.default_venv_backend == "uv|virtualenv"
    assert nox.options.sessions == ["tests", "lint", "drift"]
    assert nox.options.error_on_missing_interpreters is False


def test_chores_are_not_default_and_every_session_has_a_one_line_docstring(
    noxfile: ModuleType,
) -> None:
    sessions: dict[str, Any] = nox.registry.get()
    defaults = {name for name, func in sessions.items() if func.default}
    assert defaults == {"tests", "lint", "drift"}
    assert {"regenerate", "drift_matrix", "bench"} <= set(sessions)
    for name, func in sessions.items():
        doc = (func.__doc__ or "").strip()
        assert doc, name
        assert "\n" not in doc, name


def test_every_matrix_combination_has_a_pins_file(noxfile: ModuleType) -> None:
    assert "latest" in noxfile.DRIFT_MATRIX
    for combo in noxfile.DRIFT_MATRIX:
        assert (MATRIX_PINS / f"{combo}.txt").is_file(), combo
    assert noxfile.MATRIX_PYTHONS == ["3.11", "3.12", "3.13"]


def test_matrix_covers_four_pyarrow_majors_both_pandas_lines_and_three_onnx_minors(
    noxfile: ModuleType,
) -> None:
    pinned = [_pins(MATRIX_PINS / f"{c}.txt") for c in noxfile.DRIFT_MATRIX if c != "latest"]
    arrow_majors = {pins["pyarrow"].split(".")[0] for pins in pinned}
    pandas_lines = {pins["pandas"].split(".")[0] for pins in pinned}
    onnx_minors = {tuple(map(int, pins["onnx"].split(".")[:2])) for pins in pinned}
    assert len(arrow_majors) >= 4
    assert pandas_lines >= {"2", "3"}
    assert len(onnx_minors) >= 3
    assert min(onnx_minors) >= (1, 21)
    latest = (MATRIX_PINS / "latest.txt").read_text(encoding="utf-8")
    assert "==" not in latest  # the newest releases, nothing held


def test_matrix_holds_the_other_libraries_at_the_toolchain_pins(noxfile: ModuleType) -> None:
    toolchain = _pins(CONSTRAINTS / "toolchain.txt")
    held = _pins(MATRIX_PINS / "held.txt")
    assert held
    assert {name: toolchain[name] for name in held} == held
    assert _pins(MATRIX_PINS / "pinned.txt") == toolchain
    for combo in noxfile.DRIFT_MATRIX:
        if combo not in {"latest", "pinned"}:
            assert held.items() <= _pins(MATRIX_PINS / f"{combo}.txt").items(), combo


def test_no_version_is_pinned_in_the_noxfile_or_tasks() -> None:
    for name in ("noxfile.py", "tasks.py"):
        text = (REPO_ROOT / name).read_text(encoding="utf-8")
        assert not re.search(r"[\w-]+==\d", text), name


def _invoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_invoke_lists_the_six_tasks_each_with_a_one_line_docstring() -> None:
    result = _invoke("--list")
    assert result.returncode == 0, result.stderr
    for name in ("regenerate", "check", "bisect", "publish", "nightly", "test"):
        assert re.search(rf"^  {name}\s", result.stdout, re.MULTILINE), name
    found = {name: obj for name, obj in vars(_load_tasks()).items() if isinstance(obj, Task)}
    assert set(found) == {"regenerate", "check", "bisect", "publish", "nightly", "test"}
    for name, found_task in found.items():
        doc = (found_task.body.__doc__ or "").strip()
        assert doc, name
        assert "\n" not in doc, name


def test_nightly_publish_without_a_tracker_issue_exits_3_before_running_anything(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "BISECT_TRACKER_ISSUE"}
    result = _invoke("nightly", "--publish", "--out", str(out), env=env)
    assert result.returncode == 3
    assert "BISECT_TRACKER_ISSUE" in result.stderr
    assert not out.exists()
