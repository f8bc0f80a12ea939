"""Nox sessions and Invoke tasks as policies, without running the chain itself."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import nox
import pytest
from invoke.tasks import Task
from packaging.specifiers import SpecifierSet

from model_bisect.exitcodes import ExitCode
from tests.clirun import run_module
from tests.repokit import load_root_module

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
    return load_root_module("noxfile.py", "noxfile_under_test")


def _load_tasks() -> ModuleType:
    return load_root_module("tasks.py", "tasks_under_test")


def test_nox_falls_back_to_a_backend_it_always_has(noxfile: ModuleType) -> None:
    # uv is faster, but a machine without it must still run every session.
    assert nox.options.default_venv_backend.split("|")[-1] in {"virtualenv", "venv"}


def test_the_default_sessions_are_the_checks_and_no_chore(noxfile: ModuleType) -> None:
    sessions: dict[str, Any] = nox.registry.get()
    defaults = {name for name, func in sessions.items() if func.default}
    # `nox` alone runs exactly what nox.options lists, and each of those is a default session.
    assert set(nox.options.sessions or ()) == defaults
    # Chores write files, take long or need many interpreters: never part of a plain `nox`.
    chores = {"regenerate", "drift_matrix", "drift_matrix_summary", "bench"}
    assert chores <= set(sessions)
    assert not chores & defaults
    for name, func in sessions.items():
        doc = (func.__doc__ or "").strip()
        assert doc, name
        assert "\n" not in doc, name


def test_every_matrix_combination_has_a_pins_file_and_every_python_is_supported(
    noxfile: ModuleType,
) -> None:
    assert "latest" in noxfile.DRIFT_MATRIX
    for combo in noxfile.DRIFT_MATRIX:
        assert (MATRIX_PINS / f"{combo}.txt").is_file(), combo
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    supported = SpecifierSet(project["project"]["requires-python"])
    assert noxfile.MATRIX_PYTHONS
    for python in noxfile.MATRIX_PYTHONS:
        assert f"{python}.0" in supported, python
    # the oldest supported minor is in the matrix: the one below it is not supported
    major, minor = min(tuple(map(int, python.split("."))) for python in noxfile.MATRIX_PYTHONS)
    assert f"{major}.{minor - 1}.0" not in supported


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


def version_pins(text: str) -> list[str]:
    """`name==version` pins in a Python file: versions belong in constraints/, nowhere else."""
    return re.findall(r"[\w.-]+==\d[\w.]*", text)


def test_no_version_is_pinned_in_the_noxfile_or_tasks() -> None:
    for name in ("noxfile.py", "tasks.py"):
        assert version_pins((REPO_ROOT / name).read_text(encoding="utf-8")) == [], name


def test_a_pinned_install_in_a_session_is_found() -> None:
    text = 'session.install("numpy==2.4.6", "-c", TOOLCHAIN)\nx = a == 2\n'
    assert version_pins(text) == ["numpy==2.4.6"]


def test_invoke_lists_the_six_tasks_each_with_a_one_line_docstring() -> None:
    result = run_module("invoke", "--list", timeout=120)
    assert result.code == ExitCode.OK, result.err
    for name in ("regenerate", "check", "bisect", "publish", "nightly", "test"):
        assert re.search(rf"^  {name}\s", result.out, re.MULTILINE), name
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
    result = run_module("invoke", "nightly", "--publish", "--out", out, env=env, timeout=120)
    assert result.code == ExitCode.INPUT
    assert "BISECT_TRACKER_ISSUE" in result.err
    assert not out.exists()


# --- an output folder that cannot take the chain's files --------------------------------------


def _broken_out(tmp_path: Path, kind: str) -> Path:
    """BISECT_OUT as a file, a folder below a file, /proc (no folder can be made there), or
    a folder whose result.json is a directory."""
    afile = tmp_path / "afile"
    afile.write_text("not a folder\n", encoding="utf-8")
    if kind == "file":
        return afile
    if kind == "below_a_file":
        return afile / "out"
    if kind == "proc":
        return Path("/proc/model-bisect-out")
    out = tmp_path / "out"
    (out / "result.json").mkdir(parents=True)
    return out


BROKEN_OUT = {
    "file": "is a file, not a folder",
    "below_a_file": "is below a file",
    "proc": "is unusable",
    "result_json_a_directory": "result.json is a directory",
}


@pytest.mark.parametrize("kind", sorted(BROKEN_OUT))
def test_nightly_with_an_unusable_output_folder_exits_3_with_a_wiring_broke_body(
    tmp_path: Path, kind: str
) -> None:
    out = _broken_out(tmp_path, kind)
    env = {**os.environ, "BISECT_OUT": str(out)}
    result = run_module("invoke", "nightly", env=env, timeout=120)
    assert "Traceback" not in result.err, result.err
    assert result.code == ExitCode.INPUT, result.err
    assert "Wiring broke in stage <code>output</code>" in result.out  # the --dry-run body
    assert BROKEN_OUT[kind] in result.out  # the body quotes the problem as its log
    assert "wiring broke (output): " in result.err
    assert (tmp_path / "afile").read_text(encoding="utf-8") == "not a folder\n"


@pytest.mark.parametrize("kind", ["file", "below_a_file"])
def test_check_and_bisect_with_bisect_out_a_file_exit_3_in_one_line(
    tmp_path: Path, kind: str
) -> None:
    env = {**os.environ, "BISECT_OUT": str(_broken_out(tmp_path, kind))}
    for task_name in ("check", "bisect"):
        result = run_module("invoke", task_name, env=env, timeout=120)
        assert "Traceback" not in result.err, result.err
        assert result.code == ExitCode.INPUT, result.err
        assert result.err.strip().startswith("error: output folder")
        assert BROKEN_OUT[kind] in result.err
