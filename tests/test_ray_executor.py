"""`--executor ray` against the local executor, on a real local Ray (one per module).

The probes of a round run as Ray tasks on worker processes that open the features file
themselves; the report must be the local executor's, timings aside.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from model_bisect.engine import RunOptions, run
from model_bisect.errors import InputError
from model_bisect.evaluation.features import TARGET_COLUMN
from model_bisect.evaluation.inputs import describe
from model_bisect.executors import Executor, ExecutorKind, RemoteJob
from model_bisect.executors.ray import RayPredictor
from model_bisect.gates import gate_specs
from model_bisect.report import Report, Status, VerdictKind
from model_bisect.timeline.arguments import from_arguments
from model_bisect.timeline.entry import TimelineEntry
from tests.clirun import call_main
from tests.hostilekit import loop_forever_model
from tests.modelkit import default_weights, features_parquet, invalid_model, timeline_dir

ray = pytest.importorskip("ray")

RAY = Executor(ExecutorKind.RAY)


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    """Two CPUs, no dashboard: the executor joins it instead of starting its own."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _timeline(folder: Path, n: int, first_bad: int | None, skipped: tuple[int, ...] = ()) -> Path:
    features, _ = features_parquet(folder / "features.parquet", rows=300, seed=3)
    paths = timeline_dir(folder / "models", n, first_bad, weights=default_weights(6), seed=2)
    for index in skipped:
        invalid_model(paths[index])
    return features


def _without_timings(report: Report) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(report.to_json()))
    for step in data["steps"]:
        step.pop("seconds")
    assert data["settings"].pop("executor") in ("local", "ray")
    return data


def _both(
    entries: list[TimelineEntry], features: Path, options: RunOptions
) -> tuple[Report, Report]:
    local = run(entries, features, options)
    remote = run(entries, features, replace(options, executor=RAY))
    return local, remote


@pytest.mark.parametrize("jobs", [1, 3])
def test_ray_report_equals_the_local_one_when_a_skip_hides_the_boundary(
    tmp_path: Path, jobs: int
) -> None:
    features = _timeline(tmp_path, 12, first_bad=7, skipped=(6,))
    entries = from_arguments([str(tmp_path / "models")])
    options = RunOptions(gates=gate_specs({"plcc": 0.85}), jobs=jobs)
    local, remote = _both(entries, features, options)
    assert local.verdict.kind is VerdictKind.INCONCLUSIVE
    assert local.verdict.candidates == (6, 7)
    assert _without_timings(remote) == _without_timings(local)


def test_ray_report_equals_the_local_one_with_max_drop_and_significance(tmp_path: Path) -> None:
    features = _timeline(tmp_path, 9, first_bad=4)
    entries = from_arguments([str(tmp_path / "models")])
    options = RunOptions(gates=gate_specs({}, ["plcc=0.05"]), alpha=0.05, jobs=2)
    local, remote = _both(entries, features, options)
    assert local.verdict.kind is VerdictKind.REGRESSION
    assert local.culprit is not None
    assert any(s.p_values for s in local.steps)  # the predictions came back for the test
    assert _without_timings(remote) == _without_timings(local)


def test_ray_scan_equals_the_local_scan_with_skips(tmp_path: Path) -> None:
    features = _timeline(tmp_path, 6, first_bad=3, skipped=(1, 4))
    entries = from_arguments([str(tmp_path / "models")])
    options = RunOptions(gates=gate_specs({"plcc": 0.85}), jobs=3, scan=True)
    local, remote = _both(entries, features, options)
    assert [s.status for s in local.steps].count(Status.SKIP) == 2
    assert _without_timings(remote) == _without_timings(local)


def test_a_worker_that_reads_other_rows_than_the_driver_stops_the_run(tmp_path: Path) -> None:
    features = _timeline(tmp_path, 2, first_bad=None)
    entry = from_arguments([str(tmp_path / "models")])[0]
    description = describe(entry.path, entry.inputs)
    job = RemoteJob(features, (description,), TARGET_COLUMN, digest="the driver read another file")
    predictor = RayPredictor(job, None)
    with pytest.raises(InputError, match="other rows from the features file"):
        predictor.predict(entry, description)  # raised on the worker, travelled back as itself
    predictor.close()


def test_cli_executor_ray_writes_the_report_of_jobs_k_locally(tmp_path: Path) -> None:
    features = _timeline(tmp_path, 10, first_bad=6)
    common = [
        tmp_path / "models",
        "--features",
        features,
        "--min-plcc",
        "0.85",
        "--quiet",
        "--no-cache",
    ]
    local = call_main("model_bisect", "run", *common, "--jobs", "3", "--json", tmp_path / "l.json")
    remote = call_main(
        "model_bisect", "run", *common, "--jobs", "3", "--executor", "ray",
        "--json", tmp_path / "r.json",
    )  # fmt: skip
    assert (local.code, remote.code) == (0, 0), remote.err

    def loaded(name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((tmp_path / name).read_text(encoding="utf-8"))
        data.pop("invocation")  # the command lines differ by the flag
        for step in data["steps"]:
            step.pop("seconds")
        return data

    local_report, ray_report = loaded("l.json"), loaded("r.json")
    assert (local_report["settings"].pop("executor"), ray_report["settings"].pop("executor")) == (
        "local",
        "ray",
    )
    assert ray_report == local_report


def _descendants(root: int) -> set[int]:
    """Every process below ``root`` (the local Ray's raylet and workers are)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", encoding="utf-8") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(name))
    found, stack = set(), [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def _kill_the_worker_evaluating(spared: set[int], done: threading.Event) -> int:
    """SIGKILL the Ray worker of ours whose title says it runs ``_evaluate`` (Ray titles a
    busy worker ``ray::<task>``) and is not in ``spared``; waits until there is one."""
    while not done.wait(0.05):
        for pid in _descendants(os.getpid()) - spared:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    title = handle.read()
            except OSError:
                continue
            if title.startswith(b"ray::_evaluate"):
                os.kill(pid, signal.SIGKILL)
                return pid
    raise AssertionError("the probe ended before a worker could be killed")


def _in_thread(work: Callable[[], object]) -> tuple[threading.Thread, dict[str, object]]:
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except Exception as exc:  # handed to the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def _endless_timeline(folder: Path) -> tuple[Path, list[TimelineEntry]]:
    features = _timeline(folder, 2, first_bad=None)
    loop_forever_model(folder / "models" / "model_01.onnx", 6)  # the tail, probed first
    return features, from_arguments([str(folder / "models")])


def test_a_worker_lost_mid_probe_is_retried_once(tmp_path: Path) -> None:
    features, entries = _endless_timeline(tmp_path)
    # The retry runs to the model's time bound: a skip, which is what the local run says.
    options = RunOptions(gates=gate_specs({"plcc": 0.85}), model_timeout=15.0, scan=True)
    done = threading.Event()
    thread, outcome = _in_thread(lambda: run(entries, features, replace(options, executor=RAY)))
    _kill_the_worker_evaluating(set(), done)
    thread.join()
    done.set()
    assert "error" not in outcome, outcome
    report = outcome["value"]
    assert isinstance(report, Report)
    assert [s.status for s in report.steps] == [Status.GOOD, Status.SKIP]
    assert "took longer than 15 s" in report.steps[1].reason


def test_a_model_that_kills_its_worker_every_time_stops_the_run_with_exit_3(
    tmp_path: Path,
) -> None:
    features, entries = _endless_timeline(tmp_path)
    options = RunOptions(gates=gate_specs({"plcc": 0.85}), model_timeout=600.0, executor=RAY)
    done = threading.Event()
    thread, outcome = _in_thread(lambda: run(entries, features, options))
    first = _kill_the_worker_evaluating(set(), done)
    _kill_the_worker_evaluating({first}, done)  # the retry, on another worker
    thread.join()
    done.set()
    error = outcome.get("error")
    assert isinstance(error, InputError), outcome
    assert error.exit_code == 3
    assert str(error).startswith("Ray lost the evaluation of model_01.onnx after 1 retry")
