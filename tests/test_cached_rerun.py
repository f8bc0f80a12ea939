"""A fully cached rerun evaluates nothing, so it must not pay for ONNX Runtime or scipy.

Pinned on a real process with ``-X importtime``: an import anywhere on the rerun's path (a
module-level ``import onnxruntime`` one module away, say) shows up in its stderr.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE = REPO_ROOT / "testdata" / "bisect"


def _imported(stderr: str) -> set[str]:
    """Module names from ``-X importtime`` lines: ``import time: self | cumulative | name``."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def _run(folder: Path, cache: Path, report: Path) -> tuple[set[str], dict[str, object]]:
    done = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "model_bisect",
            "run",
            str(folder / "models"),
            "--features",
            str(folder / "features.parquet"),
            "--min-plcc",
            "0.9",
            "--cache-dir",
            str(cache),
            "--json",
            str(report),
            "--quiet",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data: dict[str, object] = json.loads(report.read_text(encoding="utf-8"))
    return _imported(done.stderr), data


def _heavy(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules} & {"onnxruntime", "scipy"}


def test_fully_cached_rerun_imports_neither_onnxruntime_nor_scipy(tmp_path: Path) -> None:
    folder = tmp_path / "bisect"
    shutil.copytree(FIXTURE, folder)
    cache = tmp_path / "cache"

    cold, first = _run(folder, cache, tmp_path / "first.json")
    assert _heavy(cold) == {"onnxruntime"}  # the probe sees real imports (scipy: --significance)
    assert isinstance(first["evaluations"], int)
    assert first["evaluations"] > 0

    warm, second = _run(folder, cache, tmp_path / "second.json")
    assert second["evaluations"] == 0
    assert second["verdict"] == first["verdict"]
    assert "model_bisect.engine" in warm  # the rerun did go through the engine
    assert _heavy(warm) == set()
