"""A run imports only what it uses: a fully cached rerun evaluates nothing, so it must not
pay for ONNX Runtime or scipy; a run nobody watches prints no table or progress, so it must
not pay for rich.

Pinned on a real process with ``-X importtime``: an import anywhere on the run's path (a
module-level ``import onnxruntime`` one module away, say) shows up in its stderr.
"""

from __future__ import annotations

import json
import os
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


def _run(
    folder: Path, cache: Path, report: Path, *extra: str, cwd: Path = REPO_ROOT
) -> tuple[set[str], dict[str, object]]:
    # stderr is a pipe here; these would make rich call it a terminal anyway.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("FORCE_TERMINAL", "TTY_COMPATIBLE", "FORCE_COLOR")
    }
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
            *(extra or ("--quiet",)),
        ],
        cwd=cwd,
        env=env,
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
    # no regression, no culprit section: its differ and its parquet reads stay unloaded
    assert {"model_bisect.culprit.explain", "model_bisect.culprit.graph"} & (cold | warm) == set()


def _rich(modules: set[str]) -> set[str]:
    return {
        m for m in modules if m.split(".")[0] == "rich" or m == "model_bisect.publishing.comment"
    }


def test_unwatched_quiet_run_imports_no_terminal_or_markdown_rendering(tmp_path: Path) -> None:
    # Outside the checkout: its pyproject.toml's [tool.model-bisect] marker needs the comment
    # module to be checked.
    def run(name: str, *extra: str) -> set[str]:
        return _run(FIXTURE, tmp_path / "cache", tmp_path / name, *extra, cwd=tmp_path)[0]

    quiet = run("quiet.json")
    assert "model_bisect.engine" in quiet
    assert _rich(quiet) == set()
    shown = run("shown.json", "--no-cache")
    assert "rich.console" in shown  # the table is printed with rich
    assert "model_bisect.publishing.comment" not in shown
    markdown = tmp_path / "result.md"
    assert "model_bisect.publishing.comment" in run(
        "md.json", "--quiet", "--markdown", str(markdown)
    )
    assert markdown.read_text(encoding="utf-8").startswith("<!--")
