"""The nightly chain's failure paths, fast enough for the default selection.

`tasks.py`'s `nightly` task runs here in this process with a real invoke `Context`: every
command is a real process. The one substitution is the drift check's environment: instead of
`nox -s drift` building the pinned-toolchain venv (minutes, which is why tests/test_nightly.py
is `slow`), the check runs the same `python -m cache_builder check --require bytes ...` that
the nox session runs, in this venv. Every command the chain issues is recorded, so a test can
show that the bisect never ran.
"""

from __future__ import annotations

import gc
import shlex
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from model_bisect.exitcodes import ExitCode
from tests.conftest import FIXTURE_DIR
from tests.repokit import load_root_module

MARKER = "<!-- model-bisect:nightly -->"

# invoke's local runner leaves its pipes and Popen objects to the garbage collector; their
# ResourceWarnings are invoke's, so they are collected and silenced here, inside these tests.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(autouse=True)
def _collect_invoke_leftovers() -> Iterator[None]:
    yield
    gc.collect()


@pytest.fixture(scope="module")
def tasks() -> ModuleType:
    return load_root_module("tasks.py", "tasks_for_the_chain")


def _context(tasks: ModuleType, issued: list[str]) -> Context:
    """A real Context that records each command and runs the drift check without nox."""
    nox_drift = f"{tasks.NOX} -s drift -- "
    check = f"{shlex.quote(sys.executable)} -m cache_builder check --require bytes "

    class Recording(Context):
        def run(self, command: str, **kwargs: Any) -> Any:
            issued.append(command)
            kwargs.setdefault("in_stream", False)  # pytest's stdin cannot be read
            return super().run(command.replace(nox_drift, check), **kwargs)

    return Recording()


def _drifted_copy(tmp_path: Path) -> Path:
    """The committed fixture with one value changed (written with another codec too)."""
    fixture = tmp_path / "fixture"
    shutil.copytree(FIXTURE_DIR, fixture)
    features = fixture / "features.parquet"
    table = pq.read_table(features)
    values = table.column("vif_scale1").to_pylist()
    values[11] += 0.5
    index = table.schema.get_field_index("vif_scale1")
    table = table.set_column(index, "vif_scale1", pa.array(values, pa.float32()))
    pq.write_table(table, features, compression="zstd")
    return fixture


def test_failed_drift_check_skips_the_bisect_and_renders_the_wiring_broke_body(
    tasks: ModuleType, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bisect-out"
    out.mkdir()
    (out / "result.json").write_text("{}", encoding="utf-8")  # yesterday's: must not survive
    issued: list[str] = []

    with pytest.raises(Exit) as stopped:
        tasks.nightly(_context(tasks, issued), fixture=str(_drifted_copy(tmp_path)), out=str(out))

    assert stopped.value.code == ExitCode.DRIFT
    assert "wiring broke (check)" in str(stopped.value.message)
    # The chain issued the check and the publish, and never `model-bisect run`.
    assert len(issued) == 2
    assert " -s drift -- " in issued[0]
    assert " -m model_bisect run " not in " ".join(issued)
    assert " -m model_bisect publish " in issued[1]
    assert "--wiring-broke" in issued[1]
    assert "--stage check" in issued[1]
    assert "--dry-run" in issued[1]  # without --publish nothing is sent
    assert not (out / "result.json").exists()
    assert (out / "bisect.log").read_text(encoding="utf-8").startswith("not run: the drift check")
    body = (out / "comment.md").read_text(encoding="utf-8")
    assert body.startswith(f"{MARKER}\n### 🛠️ Wiring broke in stage <code>check</code>")
    assert "vif_scale1" in body  # the check log's tail names the drifted column
    # The dry run prints what it would have sent (the terminal may re-flow the log's table).
    printed = capfd.readouterr().out
    assert f"{MARKER}\n### 🛠️ Wiring broke in stage <code>check</code>" in printed


def test_a_clean_check_then_a_failing_bisect_is_wiring_broke_in_stage_bisect(
    tasks: ModuleType, tmp_path: Path
) -> None:
    """The other branch: the check passes, the bisect ends without a verdict (exit 3)."""
    fixture = tmp_path / "fixture"
    shutil.copytree(FIXTURE_DIR, fixture)
    out = tmp_path / "bisect-out"
    issued: list[str] = []

    with pytest.raises(Exit) as stopped:
        tasks.nightly(
            _context(tasks, issued),
            fixture=str(fixture),
            models=str(tmp_path / "no-models-here"),
            out=str(out),
        )

    assert stopped.value.code == ExitCode.INPUT
    assert "wiring broke (bisect)" in str(stopped.value.message)
    assert len(issued) == 3
    assert " -m model_bisect run " in issued[1]
    assert "--stage bisect" in issued[2]
    body = (out / "comment.md").read_text(encoding="utf-8")
    assert body.startswith(f"{MARKER}\n### 🛠️ Wiring broke in stage <code>bisect</code>")
