"""`--executor ray` against the local executor, on a real local Ray (one per module).

The probes of a round run as Ray tasks on worker processes that open the features file
themselves; the report must be the local executor's, timings aside.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
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
