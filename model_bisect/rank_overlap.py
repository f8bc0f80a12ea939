"""SROCC and KROCC of one model completed on a second thread while the search runs the next.

On a cache miss, ranking a model's predictions (a sort and a merge count) is about half of
its cost. When no gate reads the rank-based metrics the verdict need not wait for them: the
engine judges the model on the others, hands its predictions here, and gets the complete
metrics back through a callback, in submission order, before the ``with`` block ends. Worth
about 0.8 s of 3 s on 512 models x 1M rows (`nox -s bench`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    import numpy as np

    from .ranks import TargetRanks
    from .report import Metrics

__all__ = ["Once", "RanksBeside"]

_T = TypeVar("_T")


class Once(Generic[_T]):
    """A value made on first use, once, whichever thread asks first (the others wait): the
    target's ranks and the library versions are shared by every model of a run."""

    def __init__(self, make: Callable[[], _T]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._made: list[_T] = []

    def __call__(self) -> _T:
        with self._lock:
            if not self._made:
                self._made.append(self._make())
            return self._made[0]

    def forget(self) -> None:
        """Let go of the value (a caller still holding it keeps it); the next call makes it
        again. The target's ranks are 80 MB at 10M rows, and nothing after the search needs
        them."""
        with self._lock:
            self._made.clear()


class RanksBeside:
    """One worker thread that completes rank metrics for the life of a ``with`` block.

    Work runs in the order it is given. The first failure there stops the work after it and
    is raised on the caller's thread: by the next ``complete`` or ``after``, or on leaving the
    block, which otherwise waits until everything given is done. No thread starts before the
    first piece of work, so a fully cached run never has one.
    """

    def __init__(self, target: np.ndarray, ranks: Callable[[], TargetRanks]) -> None:
        self._target = target
        self._ranks = ranks
        self._worker: ThreadPoolExecutor | None = None
        self._last: Future[None] | None = None
        self._failure: Exception | None = None
        self._prepared = False

    def __enter__(self) -> RanksBeside:
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ranks")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        worker, self._worker = self._worker, None
        try:
            if kind is None:
                self._settle()
        finally:
            if worker is not None:  # on an error, what has not started yet is dropped
                worker.shutdown(wait=True, cancel_futures=True)

    def prepare(self, *calls: Callable[[], object]) -> None:
        """Rank the target (and run ``calls``) on the thread, once, so that both are ready by
        the time the first model's predictions are: called on the first cache miss."""
        if self._prepared:
            return
        self._prepared = True

        def warm() -> None:
            self._ranks()
            for call in calls:
                call()

        self._submit(warm)

    def complete(
        self, metrics: Metrics, predictions: np.ndarray, then: Callable[[Metrics], None]
    ) -> None:
        """Fill in SROCC and KROCC of ``metrics`` (``compute_metrics(ranked=False)`` of these
        predictions) on the thread and pass the result to ``then`` there. The previous model's
        are finished first: at most one extra predictions array is alive, and a failure there
        is raised here."""
        from .metrics import with_rank_metrics

        self._settle()

        def rank() -> None:
            then(with_rank_metrics(metrics, predictions, self._target, ranks=self._ranks()))

        self._submit(rank)

    def after(self, then: Callable[[], None]) -> None:
        """Run ``then`` once everything given so far is done: at once on this thread when
        nothing is pending, else on the worker after it."""
        if self._last is not None and not self._last.done():
            self._submit(then)
            return
        self._settle()
        then()

    def _settle(self) -> None:
        """Wait for everything given so far; raise the first failure."""
        if self._last is not None:
            self._last.result()
            self._last = None
        if self._failure is not None:
            raise self._failure

    def _submit(self, work: Callable[[], None]) -> None:
        if self._worker is None:
            raise RuntimeError("RanksBeside used outside its with block")
        self._last = self._worker.submit(self._guarded, work)

    def _guarded(self, work: Callable[[], None]) -> None:
        if self._failure is not None:  # work after a failure would build on a broken state
            return
        try:
            work()
        except Exception as exc:
            self._failure = exc
