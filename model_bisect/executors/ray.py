"""Probes as Ray tasks: each evaluates one model on a worker that opens the data itself.

A task receives the features file's path and the models' input descriptions, not arrays, so
the file must be readable at the same path on every worker (a shared volume, or a local Ray).
It returns the same ``Evaluation`` the local evaluator makes; the caller computes the metrics
from it, which is why a Ray run's report equals the local one. A worker lost mid-probe is
retried once by Ray; a second loss stops the run (an ``InputError``, exit 3), never a skip
that would move the boundary.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from ..errors import BisectError, InputError, first_line
from ..evaluation.inputs import open_dataset
from ..evaluation.runner import Evaluator

if TYPE_CHECKING:
    from ..evaluation.dataset import Dataset
    from ..evaluation.inputs import InputDescription
    from ..evaluation.runner import Evaluation
    from ..timeline.entry import TimelineEntry
    from . import RemoteJob

__all__ = ["RayPredictor"]

# A task lost with its worker runs once more; a model that kills every worker it meets
# must not take the cluster down with it one retry at a time.
RETRIES = 1

# The data one worker process opened, by the driver's digest: a worker runs one task at a
# time, so later probes of the same run reuse it instead of reading the parquet again.
_OPENED: dict[str, Dataset] = {}


def _dataset(job: RemoteJob) -> Dataset:
    data = _OPENED.get(job.digest)
    if data is None:
        data = open_dataset(
            job.features, list(job.descriptions), job.target, one_model=job.one_model
        )
        if data.digest != job.digest:
            raise InputError(
                "a Ray worker reads other rows from the features file than the driver",
                str(job.features),
                "make the same file readable at the same path on every Ray worker",
            )
        _OPENED.clear()  # one run's data at a time per worker
        _OPENED[job.digest] = data
    return data


def _evaluate(job: RemoteJob, entry: TimelineEntry, inputs: InputDescription) -> Evaluation:
    """The task body, on a worker: ONNX Runtime gets as many intra-op threads as Ray gave
    the task CPUs (it does not follow OMP_NUM_THREADS)."""
    import ray

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    evaluator = Evaluator(
        _dataset(job),
        input_name=job.input_name,
        threads=max(1, int(cpus)),
        timeout=job.timeout,
    )
    return evaluator.predict(entry, inputs)


class RayPredictor:
    """Submits one task per ``predict`` and waits for it; the engine's probe threads call
    it concurrently, so a round of k probes is k tasks in flight. Joins the Ray already
    initialised in this process if there is one (and leaves it running), else starts or
    joins the one ``address`` names and shuts it down on ``close``."""

    def __init__(self, job: RemoteJob, address: str | None) -> None:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # before ray is imported
        import ray

        self._where = address or "a local Ray"
        self._started = False
        if not ray.is_initialized():
            try:
                ray.init(
                    address=address,
                    include_dashboard=False,
                    logging_level=logging.ERROR,
                    log_to_driver=False,  # ORT's raw stderr stays on the workers
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise InputError(
                    f"cannot start or join Ray ({first_line(exc)})",
                    f"--ray-address {address}" if address else "--executor ray",
                    "start the cluster first (ray start --head), or drop --ray-address to"
                    " start a local Ray",
                ) from None
            self._started = True
        self._task: Any = ray.remote(num_cpus=1, max_retries=RETRIES)(_evaluate)
        self._job = ray.put(job)

    def predict(self, entry: TimelineEntry, inputs: InputDescription) -> Evaluation:
        import ray
        from ray.exceptions import RayError, RayTaskError

        try:
            found: Evaluation = ray.get(self._task.remote(self._job, entry, inputs))
        except RayTaskError as exc:  # the task raised: one of ours travels back as itself
            if isinstance(exc.cause, BisectError):
                raise exc.cause from None
            raise self._broke(entry, exc) from None
        except RayError as exc:  # the worker or its node died, twice
            raise self._broke(entry, exc) from None
        return found

    def _broke(self, entry: TimelineEntry, exc: BaseException) -> InputError:
        return InputError(
            f"Ray lost the evaluation of {entry.label} after {RETRIES} retry"
            f" ({exc.__class__.__name__}: {first_line(exc)})",
            self._where,
            "check the workers' memory and logs (a model that crashes ONNX Runtime does this"
            " every time); the run stopped rather than skip the model",
        )

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
