"""`model-bisect run` in a real terminal 80 columns wide (a tmux pane): nothing the program
writes is wider than the pane, so the terminal never cuts a word, every word of the verdict,
labels and reasons appears whole, and the progress line is gone once the run ends.

tmux is required, not optional: `.ci/run` installs it when it is missing.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.clirun import REPO_ROOT
from tests.culpritkit import features, timeline

WIDTH = 80
DONE = "__model_bisect_done__"


class Pane:
    """One detached tmux server of our own (its own socket), one pane of fixed size."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "-f", os.devnull, *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def start(self, command: str, folder: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "COLUMNS")}
        script = f"cd {shlex.quote(str(folder))} && {command}; echo {DONE} $?; sleep 600"
        subprocess.run(
            ["tmux", "-L", self.socket, "-f", os.devnull, "new-session", "-d",
             "-x", str(WIDTH), "-y", "60", script],
            env={**env, "TERM": "xterm-256color"},
            check=True,
        )  # fmt: skip

    def screen(self, *, joined: bool = False) -> str:
        """The pane's rows; ``joined`` rejoins rows the terminal itself wrapped."""
        return self.tmux("capture-pane", "-p", *(["-J"] if joined else []), "-t", "0")

    def wait(self, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if DONE in text:
                return text
            time.sleep(0.3)
        raise AssertionError(f"the run did not finish in {timeout} s:\n{self.screen()}")


@pytest.fixture
def pane() -> Iterator[Pane]:
    assert shutil.which("tmux"), "tmux is needed for this test (.ci/run installs it)"
    made = Pane(f"model-bisect-test-{uuid.uuid4().hex[:12]}")
    try:
        yield made
    finally:
        subprocess.run(["tmux", "-L", made.socket, "kill-server"], capture_output=True, check=False)


def _words(*texts: str) -> set[str]:
    return {word for text in texts for word in text.split()}


def _run_in_pane(pane: Pane, folder: Path, *args: str) -> tuple[str, dict[str, Any]]:
    report = folder / "report.json"
    argv = [sys.executable, "-m", "model_bisect", "run", *args, "--json", str(report)]
    pane.start(" ".join(shlex.quote(a) for a in argv), folder)
    shown = pane.wait()
    assert f"{DONE} 0" in shown, shown
    data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return shown, data


def _assert_reads_well(pane: Pane, shown: str, report: dict[str, Any]) -> None:
    rows = [row.rstrip() for row in shown.splitlines()]
    # A row the terminal wrapped (the program wrote it wider than the pane) is rejoined by -J:
    # none may be, since the terminal wraps at column 80 whatever the word there.
    joined = [row.rstrip() for row in pane.screen(joined=True).splitlines()]
    assert joined == [row.rstrip() for row in pane.screen().splitlines()], shown
    assert all(len(row) <= WIDTH for row in rows)
    tokens = _words(shown)
    wanted = _words(
        report["verdict"]["message"],
        *(report["timeline"][step["index"]]["label"] for step in report["steps"]),
        *(step["reason"] for step in report["steps"] if step["status"] == "skip"),
    )
    assert wanted <= tokens, f"cut or missing: {sorted(wanted - tokens)}\n{shown}"
    # The progress line ("bisecting 6 models", "3 visited; #2 ...") is transient.
    assert not [r for r in rows if "bisecting" in r or re.search(r"\d+ visited; #", r)], shown


def test_a_regression_at_80_columns_reads_whole_with_no_progress_left(
    pane: Pane, tmp_path: Path
) -> None:
    features(tmp_path / "f.parquet")
    timeline(tmp_path / "models", first_bad=3)
    for path in sorted((tmp_path / "models").iterdir()):  # labels long enough to matter
        path.rename(path.with_name(f"quality-regressor-{path.name}"))
    shown, report = _run_in_pane(
        pane, tmp_path, "models", "--features", "f.parquet", "--min-plcc", "0.97",
        "--no-cache", "--row-id", "clip",
    )  # fmt: skip
    assert report["verdict"]["kind"] == "regression"
    assert "culprit:" in shown
    _assert_reads_well(pane, shown, report)


def test_the_fixture_at_80_columns_shows_the_table_without_repeating_reasons(
    pane: Pane, tmp_path: Path
) -> None:
    fixture = REPO_ROOT / "testdata" / "bisect"
    shown, report = _run_in_pane(
        pane, tmp_path, str(fixture / "models"), "--features", str(fixture / "features.parquet"),
        "--min-plcc", "0.85", "--no-cache", "--scan",
    )  # fmt: skip
    _assert_reads_well(pane, shown, report)
    plcc = {s["index"]: s["metrics"]["plcc"] for s in report["steps"]}
    for index, value in plcc.items():
        (row,) = [r for r in shown.splitlines() if re.match(rf"\s*{index} │", r)]
        assert f"{value:.4f}" in row
    assert "plcc 0.9960 >= 0.85" not in shown  # the status and the cell already say it
