"""SROCC and KROCC computed beside the search (when no gate reads them) change nothing in
the report, and what reaches the evaluation cache is complete."""

from __future__ import annotations

import json
import math
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from model_bisect import engine, metrics
from model_bisect.evaluation.cache import EvalCache
from model_bisect.gates import gate_specs
from model_bisect.report import dumps
from model_bisect.timeline.arguments import from_arguments

from .conftest import REPO_ROOT

FIXTURE = REPO_ROOT / "testdata" / "bisect"


def _report(
    monkeypatch: pytest.MonkeyPatch,
    overlap_rows: int,
    thresholds: dict[str, float | None],
    **options: Any,
) -> dict[str, Any]:
    monkeypatch.setattr(engine, "OVERLAP_MAX_ROWS", overlap_rows)
    entries = from_arguments([str(FIXTURE / "models")])
    opts = engine.RunOptions(gates=gate_specs(thresholds, []), **options)
    data: dict[str, Any] = json.loads(
        dumps(engine.run(entries, FIXTURE / "features.parquet", opts))
    )
    for step in data["steps"]:
        step["seconds"] = 0.0
    return data


@pytest.mark.parametrize("scan", [False, True], ids=["bisect", "scan"])
@pytest.mark.parametrize(
    "thresholds",
    [{"plcc": 0.85}, {"rmse": 0.15}, {"srocc": 0.9}],
    ids=["plcc-gate", "rmse-gate", "srocc-gate"],
)
def test_rank_metrics_beside_the_search_give_the_report_computed_in_line(
    monkeypatch: pytest.MonkeyPatch, scan: bool, thresholds: dict[str, float | None]
) -> None:
    beside = _report(monkeypatch, 10**9, thresholds, scan=scan)
    in_line = _report(monkeypatch, 0, thresholds, scan=scan)
    assert beside == in_line
    for step in beside["steps"]:
        assert step["metrics"] is not None
        assert math.isfinite(step["metrics"]["srocc"]), step
        assert math.isfinite(step["metrics"]["krocc"]), step


def test_cache_entries_written_beside_the_search_hold_the_rank_metrics(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cache = EvalCache(tmp_path / "cache")
    cold = _report(monkeypatch, 10**9, {"plcc": 0.85}, scan=True, cache=cache)
    warm = _report(monkeypatch, 10**9, {"plcc": 0.85}, scan=True, cache=cache)
    assert warm["evaluations"] == 0
    assert all(step["cached"] for step in warm["steps"])
    for a, b in zip(cold["steps"], warm["steps"], strict=True):
        assert a["metrics"] == b["metrics"]


def test_target_is_ranked_once_on_the_ranking_thread_and_never_on_a_cached_rerun(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Ranked on the main thread, or under the session's lock that every probe takes, it
    # would stall the search.
    threads: list[str] = []
    free_while_ranking: list[bool] = []
    real = metrics.target_ranks

    def recording(values: Any) -> Any:
        threads.append(threading.current_thread().name)
        lock = sys._getframe(1).f_locals["self"].lock  # the _Session's, taken by every probe
        free = lock.acquire(timeout=5)
        if free:
            lock.release()
        free_while_ranking.append(free)
        return real(values)

    monkeypatch.setattr(metrics, "target_ranks", recording)
    cache = EvalCache(tmp_path / "cache")
    _report(monkeypatch, 10**9, {"plcc": 0.85}, scan=True, cache=cache)
    assert len(threads) == 1
    assert threads[0].startswith("ranks")
    assert free_while_ranking == [True]
    threads.clear()
    _report(monkeypatch, 10**9, {"plcc": 0.85}, scan=True, cache=cache)
    assert threads == []


@pytest.mark.parametrize("overlap_rows", [0, 10**9], ids=["in-line", "beside"])
def test_library_versions_are_read_once_for_the_cache_keys_and_the_report(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, overlap_rows: int
) -> None:
    calls: list[str] = []
    real = engine.toolchain_versions

    def counting() -> dict[str, str]:
        calls.append(threading.current_thread().name)
        return {**real(), "numpy": "counted"}

    monkeypatch.setattr(engine, "toolchain_versions", counting)
    cache = EvalCache(tmp_path / "cache")
    report = _report(monkeypatch, overlap_rows, {"plcc": 0.85}, scan=True, cache=cache)
    assert len(calls) == 1
    assert report["toolchain"]["numpy"] == "counted"


@pytest.mark.parametrize(
    ("jobs", "overlap", "cpus", "threads"),
    [
        (1, False, 8, None),  # ONNX Runtime's own default: every core
        (1, True, 2, 1),  # one core left to the ranking thread
        (1, True, 8, 7),
        (1, True, 1, 1),
        (2, False, 8, 4),  # parallel probes share the cores
        (4, False, 2, 1),
    ],
)
def test_inference_leaves_a_core_to_the_ranking_thread(
    jobs: int, overlap: bool, cpus: int, threads: int | None
) -> None:
    assert engine.inference_threads(jobs, overlap, cpus) == threads
