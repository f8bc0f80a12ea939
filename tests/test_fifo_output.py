"""A report written into a named FIFO reaches a reader that was already waiting: the check
that something reads the FIFO must not end that reader's input before the report is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import REPO_ROOT

FIXTURE = REPO_ROOT / "testdata" / "bisect"


def test_json_into_a_fifo_with_a_waiting_reader_delivers_the_whole_report(tmp_path: Path) -> None:
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "model_bisect", "run", str(FIXTURE / "models"),
             "--features", str(FIXTURE / "features.parquet"), "--min-plcc", "0.85",
             "--no-cache", "--quiet", "--json", str(fifo)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        received, _ = reader.communicate(timeout=60)
    finally:
        reader.kill()
    assert done.returncode == 0, done.stderr
    report = json.loads(received)
    assert report["verdict"]["kind"] == "no_regression"
