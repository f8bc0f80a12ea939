"""Where a probe's model is evaluated: on this machine's threads, or as Ray tasks.

The engine asks ``predictor`` for something that turns a model into an ``Evaluation`` and
never learns which kind it got; the metrics are computed from those predictions on the
caller's side either way, so both executors give the same report. Ray is imported only when
it is chosen (``executors/ray.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..evaluation.inputs import InputDescription
    from ..evaluation.runner import Evaluation
    from ..timeline.entry import TimelineEntry

__all__ = ["Executor", "ExecutorKind", "Predictor", "RemoteJob", "remote_predictor"]


class ExecutorKind(Enum):
    LOCAL = "local"  # threads of this process (`--jobs` of them)
    RAY = "ray"  # one Ray task per probe, on whatever workers the cluster has


@dataclass(frozen=True)
class Executor:
    """``--executor`` and ``--ray-address``: ``address`` None starts a local Ray, ``auto``
    joins the cluster running on this machine, anything else is a Ray address."""

    kind: ExecutorKind = ExecutorKind.LOCAL
    address: str | None = None


class Predictor(Protocol):
    """Predicts one model of the timeline; safe to call from several threads at once."""

    def predict(self, entry: TimelineEntry, inputs: InputDescription) -> Evaluation: ...


@dataclass(frozen=True)
class RemoteJob:
    """What a worker needs to open the run's data itself: paths and descriptions, never
    arrays. ``digest`` is the driver's: a worker whose copy of the features differs refuses
    to evaluate rather than report metrics on other rows."""

    features: Path
    descriptions: tuple[InputDescription, ...]
    target: str
    digest: str
    input_name: str | None = None
    timeout: float | None = None
    one_model: bool = False


class RemotePredictor(Predictor, Protocol):
    def close(self) -> None:
        """Release the cluster connection (and stop the Ray this run started)."""


def remote_predictor(executor: Executor, job: RemoteJob) -> RemotePredictor:
    """A predictor for a non-local executor (today: Ray, imported here and nowhere else)."""
    if executor.kind is ExecutorKind.RAY:
        from .ray import RayPredictor

        return RayPredictor(job, executor.address)
    raise ValueError(f"{executor.kind} is not a remote executor")
