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


def _steps_seen(
    monkeypatch: pytest.MonkeyPatch, overlap_rows: int, entries: list[Any], **options: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The steps ``on_step`` was handed, in order, and the report's steps."""
    monkeypatch.setattr(engine, "OVERLAP_MAX_ROWS", overlap_rows)
    opts = engine.RunOptions(gates=gate_specs({"plcc": 0.85}, []), **options)
    seen: list[dict[str, Any]] = []
    report = engine.run(
        entries, FIXTURE / "features.parquet", opts, on_step=lambda s: seen.append(s.to_json())
    )
    for step in seen:
        step["seconds"] = 0.0
    reported = [{**s.to_json(), "seconds": 0.0} for s in report.steps]
    return seen, reported


@pytest.mark.parametrize("scan", [False, True], ids=["bisect", "scan"])
def test_on_step_receives_complete_metrics_in_visit_order_beside_the_search(
    monkeypatch: pytest.MonkeyPatch, scan: bool
) -> None:
    entries = from_arguments([str(FIXTURE / "models")])
    beside, reported = _steps_seen(monkeypatch, 10**9, entries, scan=scan)
    in_line, _ = _steps_seen(monkeypatch, 0, entries, scan=scan)
    assert beside == in_line  # same steps, same metrics, same order
    assert sorted(beside, key=lambda s: s["index"]) == reported
    for step in beside:
        assert math.isfinite(step["metrics"]["srocc"]), step
        assert math.isfinite(step["metrics"]["krocc"]), step


def test_a_duplicate_visited_while_its_ranks_are_pending_gets_complete_metrics(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    source = sorted((FIXTURE / "models").glob("*.onnx"))
    for index, name in enumerate([source[0], source[0], source[1], source[1]]):
        (folder / f"m{index}.onnx").write_bytes(name.read_bytes())
    entries = from_arguments([str(folder)])
    seen, reported = _steps_seen(monkeypatch, 10**9, entries, scan=True)
    assert [s["index"] for s in seen] == [0, 1, 2, 3]
    assert seen[0]["metrics"] == seen[1]["metrics"]
    assert seen[2]["metrics"] == seen[3]["metrics"]
    assert all(math.isfinite(s["metrics"]["krocc"]) for s in seen)
    assert seen == reported


def _ranking_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("ranks")]


def test_a_failing_on_step_beside_the_search_stops_the_run_and_its_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "OVERLAP_MAX_ROWS", 10**9)
    entries = from_arguments([str(FIXTURE / "models")])
    opts = engine.RunOptions(gates=gate_specs({"plcc": 0.85}, []), scan=True)
    calls: list[int] = []

    def failing(step: Any) -> None:
        calls.append(step.index)
        raise OSError("the progress display is gone")

    with pytest.raises(OSError, match="progress display is gone"):
        engine.run(entries, FIXTURE / "features.parquet", opts, on_step=failing)
    assert calls == [0]  # nothing ran after the failure
    assert _ranking_threads() == []


def test_a_fully_cached_rerun_starts_no_ranking_thread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cache = EvalCache(tmp_path / "cache")
    _report(monkeypatch, 10**9, {"plcc": 0.85}, scan=True, cache=cache)
    threads: list[list[str]] = []
    entries = from_arguments([str(FIXTURE / "models")])
    opts = engine.RunOptions(gates=gate_specs({"plcc": 0.85}, []), scan=True, cache=cache)
    engine.run(
        entries,
        FIXTURE / "features.parquet",
        opts,
        on_step=lambda _: threads.append(_ranking_threads()),
    )
    assert len(threads) == 8
    assert threads == [[]] * 8


# --- the helper alone -------------------------------------------------------------------------


def _arrays(rows: int = 2_000, seed: int = 7) -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    target = rng.normal(3.0, 1.0, rows)
    predictions = (target + rng.normal(0.0, 0.5, rows)).astype(np.float32)
    return predictions, target


def test_ranks_beside_completes_the_metrics_computed_in_one_go() -> None:
    from model_bisect.rank_overlap import Once, RanksBeside

    predictions, target = _arrays()
    ranks = Once(lambda: metrics.target_ranks(target))
    partial = metrics.compute_metrics(predictions, target, ranked=False)
    assert math.isnan(partial.values["srocc"])
    got: list[Any] = []
    with RanksBeside(target, ranks) as beside:
        beside.complete(partial, predictions, got.append)
    whole = metrics.compute_metrics(predictions, target, ranks=ranks())
    assert got == [whole]
    assert _ranking_threads() == []


def test_ranks_beside_runs_work_in_the_order_given() -> None:
    from model_bisect.rank_overlap import Once, RanksBeside

    predictions, target = _arrays()
    order: list[str] = []
    with RanksBeside(target, Once(lambda: metrics.target_ranks(target))) as beside:
        beside.after(lambda: order.append("inline"))  # nothing pending: at once
        assert order == ["inline"]
        partial = metrics.compute_metrics(predictions, target, ranked=False)
        for name in ("a", "b"):
            beside.complete(partial, predictions, lambda _, n=name: order.append(n))  # type: ignore[misc]
            beside.after(lambda n=name: order.append(f"after {n}"))  # type: ignore[misc]
    assert order == ["inline", "a", "after a", "b", "after b"]


def _fail_then(second: str, ran: list[str]) -> None:
    """A block whose first model's completion fails, followed by ``second`` work."""
    from model_bisect.rank_overlap import Once, RanksBeside

    predictions, target = _arrays()
    partial = metrics.compute_metrics(predictions, target, ranked=False)

    def broken(_: Any) -> None:
        raise ValueError("cannot store")

    with RanksBeside(target, Once(lambda: metrics.target_ranks(target))) as beside:
        beside.complete(partial, predictions, broken)
        if second == "after":
            beside.after(lambda: ran.append("after"))
        else:
            beside.complete(partial, predictions, lambda _: ran.append("complete"))


@pytest.mark.parametrize("second", ["after", "complete"])
def test_ranks_beside_raises_a_failure_on_the_callers_thread(second: str) -> None:
    ran: list[str] = []
    with pytest.raises(ValueError, match="cannot store"):
        _fail_then(second, ran)
    assert ran == []  # work after the failure never runs
    assert _ranking_threads() == []


def test_ranks_beside_starts_no_thread_before_work_and_refuses_work_outside_its_block() -> None:
    from model_bisect.rank_overlap import Once, RanksBeside

    predictions, target = _arrays()
    beside = RanksBeside(target, Once(lambda: metrics.target_ranks(target)))
    with beside:
        assert _ranking_threads() == []
        beside.prepare()
    partial = metrics.compute_metrics(predictions, target, ranked=False)
    with pytest.raises(RuntimeError, match="outside its with block"):
        beside.complete(partial, predictions, lambda _: None)


def test_once_makes_its_value_once_across_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from model_bisect.rank_overlap import Once

    made: list[int] = []

    def make() -> int:
        made.append(1)
        return len(made)

    once = Once(make)
    with ThreadPoolExecutor(max_workers=8) as pool:
        values = list(pool.map(lambda _: once(), range(64)))
    assert values == [1] * 64
    assert made == [1]


def test_a_forgotten_once_lets_go_of_its_value_and_makes_it_again() -> None:
    import weakref

    from model_bisect.rank_overlap import Once

    class Value:
        pass

    made: list[weakref.ref[Value]] = []

    def make() -> Value:
        value = Value()
        made.append(weakref.ref(value))
        return value

    once = Once(make)
    first = once()
    assert once() is first
    del first
    once.forget()
    assert made[0]() is None  # nothing keeps the first value alive
    assert once() is made[1]()
