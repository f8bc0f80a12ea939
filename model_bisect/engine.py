"""Glue between the pure search and the world: evaluate models on demand, judge them, report.

The search asks for indices; this module turns an index into a Status by running the model
(or reading the evaluation cache), computing metrics and applying the gates, and records every
visited model as a Step so the report can show the evidence.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from .catalogue import Direction, GateKind, MappingName, metric_spec
from .culprit.keep import Boundary
from .errors import InputError, first_line
from .evaluation.cache import EvalCache
from .evaluation.features import TARGET_COLUMN
from .evaluation.inputs import InputDescription, describe, open_dataset, sidecar_direction
from .executors import Executor, ExecutorKind, RemoteJob, remote_predictor
from .gates import judge
from .rank_overlap import Once, RanksBeside
from .report import (
    FeaturesRef,
    GateSpec,
    Invocation,
    MappingDirection,
    Metrics,
    ModelRef,
    Report,
    ScanSummary,
    SliceMetrics,
    SliceRef,
    Status,
    Step,
    Verdict,
    VerdictKind,
)
from .safetext import unicode_safe
from .search import SearchResult, bisect, scan, verdict_message
from .settings import DEFAULT_MIN_SLICE_ROWS
from .timeline.entry import TimelineEntry, require_two
from .toolchain import toolchain_versions

if TYPE_CHECKING:
    from .culprit.record import Culprit
    from .evaluation.dataset import Dataset
    from .executors import Predictor, RemotePredictor
    from .metrics import Fitted
    from .ranks import TargetRanks
    from .slices import Slicing

__all__ = [
    "MAX_JOBS",
    "Judged",
    "RunOptions",
    "direction_of",
    "effective_jobs",
    "inference_threads",
    "judge_model",
    "run",
    "with_sidecar_directions",
]

# Parallel probes beyond this buy nothing (each probe already uses several ORT threads) and
# each holds a model's batch buffers: --jobs is clamped to min(models, 4 x CPUs, MAX_JOBS).
MAX_JOBS = 32


# With one probe at a time, SROCC and KROCC (a sort and a merge count, about half of a
# model's cost) are computed on a second thread while the search runs the next model, when no
# gate reads them. The pending model's predictions stay alive meanwhile: above this many rows
# that extra array would cost more memory than the overlap saves time, so they run in line.
OVERLAP_MAX_ROWS = 2_000_000


def effective_jobs(requested: int, models: int) -> int:
    """How many probes run at once: ``--jobs`` clamped to the number of models, to four per
    CPU and to ``MAX_JOBS``, and at least one."""
    return max(1, min(requested, models, 4 * (os.cpu_count() or 1), MAX_JOBS))


def inference_threads(jobs: int, overlap: bool, cpus: int) -> int | None:
    """ONNX Runtime's intra-op threads per session (None: its default, one per core).

    Parallel probes share the cores between them. With the rank metrics computed beside the
    search, inference leaves one core to the ranking thread: on two cores, one inference
    thread is faster than two contending with it (measured with `nox -s bench`).
    """
    if jobs > 1:
        return max(1, cpus // jobs)
    return max(1, cpus - 1) if overlap else None


@dataclass(frozen=True)
class RunOptions:
    gates: tuple[GateSpec, ...]
    target: str = TARGET_COLUMN
    mapping: str = "none"
    alpha: float | None = None
    jobs: int = 1
    scan: bool = False
    input_name: str | None = None
    cache: EvalCache | None = None
    # --direction: which scores mean better quality, for every model whose timeline entry
    # does not say (LOWER_IS_BETTER negates the scores before anything else).
    direction: Direction = Direction.HIGHER_IS_BETTER
    model_timeout: float | None = None  # seconds of inference per model; None: no bound
    row_id: str | None = None  # the culprit's worst rows name this column's value
    pool_by: str | None = None  # rows sharing this column's value are one rated item
    slice_by: tuple[str, ...] = ()  # every metric per value of these string columns too
    gate_slices: bool = False  # the min/max gates hold on each slice of min_slice_rows items
    min_slice_rows: int = DEFAULT_MIN_SLICE_ROWS
    # where probes run: local threads, or Ray tasks
    executor: Executor = field(default_factory=Executor)


def direction_of(entry: TimelineEntry, options: RunOptions) -> Direction:
    """The entry's declared direction (its timeline entry's, else its sidecar's once
    ``with_sidecar_directions`` has read it), else the run's."""
    return entry.direction if entry.direction is not None else options.direction


def with_sidecar_directions(entries: Sequence[TimelineEntry]) -> list[TimelineEntry]:
    """Entries whose timeline entry gives no ``direction`` take their sidecar's: the
    precedence is timeline entry, then sidecar, then ``--direction``. A sidecar direction
    that is neither "higher" nor "lower" is an InputError naming the sidecar."""
    return [
        e if e.direction is not None else replace(e, direction=sidecar_direction(e.path))
        for e in entries
    ]


_NEGATED = "scores negated: declared lower-is-better"


@dataclass(frozen=True)
class _Measure:
    """One distinct model's evaluation (by sha256); duplicates of it in the timeline reuse it."""

    metrics: Metrics | None
    reason: str
    seconds: float
    cached: bool
    predictions: np.ndarray | None
    unknown_rows: int = 0
    note: str = ""
    slices: tuple[SliceMetrics, ...] = ()


def _describe_inputs(
    entries: Sequence[TimelineEntry],
) -> tuple[dict[int, InputDescription], dict[int, str]]:
    """Each model's input description, read once: the union of their columns decides what
    the parquet read loads, and each model's own description keys its cache entry. A model
    whose sidecar is malformed is skipped with that reason instead of failing the whole run."""
    descriptions: dict[int, InputDescription] = {}
    broken: dict[int, str] = {}
    for entry in entries:
        try:
            descriptions[entry.index] = describe(entry.path, entry.inputs)
        except InputError as exc:
            broken[entry.index] = str(exc)
    return descriptions, broken


def _cached_record(record: Mapping[str, Any]) -> tuple[Metrics, int, str, tuple[SliceMetrics, ...]]:
    """Metrics and unknown-value count of a cache record; raises (KeyError, TypeError, ...)
    on a record of another shape, which the cache then treats as a miss. So is a record
    written before a catalogue metric was added: it parses, but the model is evaluated again
    to compute the metric rather than gate on a value no one computed."""
    metrics = Metrics.from_json(record["metrics"])
    if not metrics.complete:
        raise KeyError("the cached metrics lack a catalogue metric")
    return (
        metrics,
        int(record.get("unknown_rows", 0)),
        str(record.get("note", "")),
        tuple(SliceMetrics.from_json(s) for s in record.get("slices", ())),
    )


class _Session:
    """One run's mutable state: the memo of judged models and the steps visited.

    With ``beside`` (one probe at a time, no gate on a rank-based metric), a model is judged
    before its SROCC and KROCC are known; they are completed on the ranking thread, which
    then replaces its memo entry, and its step is recorded (and handed to ``on_step``) only
    after that, so every recorded step holds complete metrics.
    """

    def __init__(
        self,
        entries: Sequence[TimelineEntry],
        data: Dataset,
        options: RunOptions,
        descriptions: Mapping[int, InputDescription],
        broken: Mapping[int, str],
        on_step: Callable[[Step], None] | None,
        slicing: Sequence[Slicing] = (),
    ) -> None:
        self.entries = entries
        self.slicing = slicing  # the --slice-by columns' slices of the rated items
        self.data = data
        self.options = options
        self.descriptions = descriptions
        self.broken = broken
        self.on_step = on_step
        self._evaluator: Predictor | None = None
        self._remote: RemotePredictor | None = None
        self.lock = threading.Lock()  # the memo, the steps and the evaluation count
        self.measured: dict[str, tuple[_Measure, int]] = {}  # by memo key: result, first index
        self.steps: dict[int, Step] = {}
        self.evaluations = 0
        self.anchor: _Measure | None = None
        # Read once per run, on whichever thread asks first: every cache key and the report
        # share the versions, every model is ranked against one target.
        self.toolchain = Once(toolchain_versions)
        self.target_ranks = Once(self._rank_target)
        self.needs_predictions = options.alpha is not None and any(
            g.kind is GateKind.MAX_DROP for g in options.gates
        )
        self.boundary = Boundary()  # the culprit section's predictions (two models at most)
        self.jobs = effective_jobs(options.jobs, len(entries))  # probes at once
        if options.executor.kind is not ExecutorKind.LOCAL:  # not bound by this machine's CPUs
            self.jobs = max(1, min(options.jobs, len(entries), MAX_JOBS))
        overlap = (
            self.jobs == 1
            and data.rows <= OVERLAP_MAX_ROWS
            and not any(metric_spec(g.metric).rank_based for g in options.gates)
        )
        self.beside = RanksBeside(data.target, self.target_ranks) if overlap else None

    def evaluator(self) -> Predictor:
        """Created on the first cache miss: a fully cached rerun never loads ONNX Runtime
        (nor starts Ray)."""
        with self.lock:
            if self._evaluator is None and self.options.executor.kind is not ExecutorKind.LOCAL:
                job = RemoteJob(
                    features=self.data.path,
                    descriptions=tuple(self.descriptions.values()),  # as open_dataset saw them
                    target=self.options.target,
                    digest=self.data.digest,
                    input_name=self.options.input_name,
                    timeout=self.options.model_timeout,
                )
                self._evaluator = self._remote = remote_predictor(self.options.executor, job)
            if self._evaluator is None:
                from .evaluation.runner import Evaluator

                overlap = self.beside is not None
                self._evaluator = Evaluator(
                    self.data,
                    input_name=self.options.input_name,
                    threads=inference_threads(self.jobs, overlap, os.cpu_count() or 1),
                    spin=not overlap,
                    timeout=self.options.model_timeout,
                )
            return self._evaluator

    def close(self) -> None:
        """Let go of a remote executor (a Ray this run started stops here)."""
        if self._remote is not None:
            self._remote.close()

    def _cache_key(self, entry: TimelineEntry) -> str:
        """Everything the metrics depend on: the model with its weights, the data as evaluated
        (its digest covers the rows this run kept, which depend on every model's columns), what
        the model is fed (its inputs' columns), the target, the mapping, the input name, and
        the versions that compute them."""
        versions = self.toolchain()
        # Only with --slice-by, so the keys of runs without slices stay what they were.
        slices = (
            {"slices": {"by": self.options.slice_by, "gated": self.options.gate_slices}}
            if self.options.slice_by
            else {}
        )
        return EvalCache.key(
            **slices,
            model=entry.weights_sha256 or entry.content_sha256 or entry.sha256,
            data=self.data.digest,
            inputs=self.descriptions[entry.index].key(),
            target=self.data.target_name,
            mapping=self.options.mapping,
            direction=direction_of(entry, self.options),
            input_name=self.options.input_name,
            toolchain=versions,
            version=__version__,
        )

    def _memo_key(self, entry: TimelineEntry) -> str:
        # content_sha256 covers external-data files and the sidecar: a retrained model often
        # changes only model.onnx.data, leaving model.onnx byte-identical.
        memo_key = entry.content_sha256 or entry.sha256 or f"path:{entry.path}"
        if entry.index in self.descriptions:  # same bytes fed differently are different models
            memo_key += "|" + self.descriptions[entry.index].fingerprint()
        memo_key += "|" + direction_of(entry, self.options).value
        return memo_key

    def measure(self, entry: TimelineEntry) -> tuple[_Measure, bool]:
        """The model's metrics (or skip reason), and whether an earlier entry had the same
        bytes. With ``beside`` the rank-based metrics may still be NaN: they are not gated."""
        memo_key = self._memo_key(entry)
        with self.lock:
            known = self.measured.get(memo_key)
        if known is not None:
            return known[0], known[1] != entry.index
        found = self._measure_uncached(entry, memo_key)
        with self.lock:
            found, owner = self.measured.setdefault(memo_key, (found, entry.index))
        return found, owner != entry.index

    def _measure_uncached(self, entry: TimelineEntry, memo_key: str) -> _Measure:
        if entry.index in self.broken:
            return _Measure(None, self.broken[entry.index], 0.0, False, None)
        cache = self.options.cache
        key = None
        if cache is not None and (entry.content_sha256 or entry.sha256) is not None:
            key = self._cache_key(entry)
            hit = cache.get(key, _cached_record)
            if hit is not None:
                (metrics, unknown, note, slices), predictions = hit
                if predictions is not None or not self.needs_predictions:
                    return _Measure(metrics, "", 0.0, True, predictions, unknown, note, slices)
        started = time.perf_counter()
        if self.beside is not None:  # the target ranked and the versions read meanwhile
            self.beside.prepare(self.toolchain)
        evaluation = self.evaluator().predict(entry, self.descriptions[entry.index])
        if not evaluation.ok or evaluation.predictions is None:
            # Skips are not cached: a missing external-data file may be restored later. Nor
            # are they counted: "2 evaluated" must not be said of two models that could not be.
            return _Measure(None, evaluation.reason, evaluation.seconds, False, None)
        with self.lock:
            self.evaluations += 1
        predictions = evaluation.predictions
        if direction_of(entry, self.options) is Direction.LOWER_IS_BETTER:
            predictions = np.negative(predictions)  # before the mapping, metrics and cache
        self.boundary.offer(self._memo_key(entry), predictions)
        fitted = self._fitted(predictions)
        slices = self._slices(predictions, fitted)
        record: dict[str, Any] = {"unknown_rows": evaluation.unknown_rows, "note": evaluation.note}
        if slices:
            record["slices"] = [piece.to_json() for piece in slices]
        # Predictions (8 MB per million rows) are kept only for the significance test; holding
        # them for every model of a 512-model scan would cost gigabytes.
        kept_predictions = predictions if self.needs_predictions else None
        if self.beside is None:
            metrics = self._compute_metrics(predictions, fitted=fitted)
            metrics = self._store(metrics, predictions, key, record)
        else:
            metrics = self._compute_metrics(predictions, ranked=False, fitted=fitted)
        del fitted  # a float64 copy per row: not kept past the metrics
        found = _Measure(
            metrics,
            "",
            time.perf_counter() - started,
            False,
            kept_predictions,
            evaluation.unknown_rows,
            evaluation.note,
            slices,
        )
        if self.beside is not None:

            def completed(full: Metrics) -> None:  # on the ranking thread
                self._store(full, predictions, key, record)
                with self.lock:
                    self.measured[memo_key] = (replace(found, metrics=full), entry.index)

            self.beside.complete(metrics, predictions, completed)
        return found

    def _store(
        self,
        metrics: Metrics,
        predictions: np.ndarray,
        key: str | None,
        record: Mapping[str, Any],
    ) -> Metrics:
        """Put complete metrics in the evaluation cache (when on) and return them."""
        if self.options.cache is not None and key is not None:
            kept = predictions.astype(np.float32) if self.needs_predictions else None
            self.options.cache.put(key, {"metrics": metrics.to_json(), **record}, kept)
        return metrics

    def _fitted(self, predictions: np.ndarray) -> Fitted | None:
        """The --mapping fitted once, when --slice-by slices read it beside the overall
        metrics (without slices, ``compute_metrics`` fits it and lets go at once)."""
        if not self.slicing or self.options.mapping == MappingName.NONE:
            return None
        from .metrics import fit_once

        return fit_once(predictions, self.data.target, self.options.mapping)

    def _slices(self, predictions: np.ndarray, fitted: Fitted | None) -> tuple[SliceMetrics, ...]:
        """Every metric per value of each --slice-by column (none without it)."""
        if not self.slicing:
            return ()
        from .slices import slice_metrics

        return tuple(
            piece
            for slices in self.slicing
            for piece in slice_metrics(slices, predictions, fitted=fitted)
        )

    def _judge_slices(
        self, found: _Measure, status: Status, reason: str
    ) -> tuple[Status, str, tuple[SliceMetrics, ...], SliceRef | None]:
        """With --gate-slices, a good model that fails a gate on a slice of at least
        --min-slice-rows items is bad, and its reason names the slice."""
        if not found.slices:
            return status, reason, (), None
        from .slices import slice_failures, worst_slice

        options = self.options
        slices = tuple(
            replace(s, gated=options.gate_slices and s.rows >= options.min_slice_rows)
            for s in found.slices
        )
        worst = worst_slice(slices, options.gates, options.min_slice_rows)
        unit = "items" if options.pool_by is not None else "rows"
        failed = slice_failures(slices, options.gates, unit)
        if failed and status is not Status.SKIP:
            reason = "; ".join(failed if status is Status.GOOD else [reason, *failed])
            status = Status.BAD
        return status, reason, slices, worst

    def _rank_target(self) -> TargetRanks:
        from .metrics import target_ranks

        return target_ranks(self.data.target)

    def _compute_metrics(
        self, predictions: np.ndarray, *, ranked: bool = True, fitted: Fitted | None = None
    ) -> Metrics:
        from .metrics import compute_metrics  # only on a cache miss

        return compute_metrics(
            predictions,
            self.data.target,
            mapping=self.options.mapping,
            ranks=self.target_ranks() if ranked else None,
            ranked=ranked,
            fitted=fitted,
        )

    def _p_values(self, predictions: np.ndarray | None) -> dict[str, float]:
        if not self.needs_predictions or self.anchor is None or predictions is None:
            return {}
        anchor_pred = self.anchor.predictions
        if anchor_pred is None:
            return {}
        from .significance import drop_p_value

        return {
            g.metric: drop_p_value(
                g.metric,
                self.data.target,
                np.asarray(anchor_pred, dtype=np.float64),
                np.asarray(predictions, dtype=np.float64),
                mapping=self.options.mapping,
            )
            for g in self.options.gates
            if g.kind is GateKind.MAX_DROP
        }

    def visit(self, index: int) -> Status:
        entry = self.entries[index]
        found, duplicate = self.measure(entry)
        p_values: dict[str, float] = {}
        if found.metrics is None:
            status, reason = Status.SKIP, found.reason
        else:
            p_values = self._p_values(found.predictions)
            anchor = None if self.anchor is None else self.anchor.metrics
            status, reason = judge(
                found.metrics,
                self.options.gates,
                anchor=anchor,
                p_values=p_values,
                alpha=self.options.alpha,
            )
        status, reason, slices, worst = self._judge_slices(found, status, reason)
        notes = [found.note] if found.note else []
        if direction_of(entry, self.options) is Direction.LOWER_IS_BETTER:
            notes.append(_NEGATED)
        if found.metrics is not None:
            notes += _mapping_notes(found.metrics, self.options.mapping)
        if duplicate:
            notes.append("same bytes as an earlier model: evaluated once")
        reason = "; ".join([reason, *notes] if reason else notes)
        reason = unicode_safe(reason)  # may quote a file name that is not UTF-8
        step = Step(
            index=index,
            label=entry.label,
            status=status,
            metrics=found.metrics,
            reason=reason,
            seconds=0.0 if duplicate else round(found.seconds, 6),
            cached=found.cached,
            p_values=p_values,
            unknown_rows=found.unknown_rows,
            slices=slices,
            worst_slice=worst,
        )
        self.boundary.judged(index, self._memo_key(entry), status)
        record = partial(self._record, step, self._memo_key(entry))
        if self.beside is None:
            record()
        else:  # once the ranking thread has completed this model's metrics
            self.beside.after(record)
        return status

    def _record(self, step: Step, memo_key: str) -> None:
        """Keep the step with the memo's metrics, complete by now, and tell ``on_step``."""
        with self.lock:
            step = replace(step, metrics=self.measured[memo_key][0].metrics)
            self.steps[step.index] = step
        if self.on_step is not None:
            self.on_step(step)

    def predict_again(self, index: int) -> np.ndarray | None:
        """A model's predictions once more (its metrics came from the evaluation cache)."""
        entry = self.entries[index]
        evaluation = self.evaluator().predict(entry, self.descriptions[index])
        if not evaluation.ok or evaluation.predictions is None:
            return None
        if direction_of(entry, self.options) is Direction.LOWER_IS_BETTER:
            negated: np.ndarray = np.negative(evaluation.predictions)  # as the metrics saw them
            return negated
        return evaluation.predictions

    def explain(self, result: SearchResult) -> Culprit | None:
        """The culprit section when the search localised a regression."""
        if result.kind is not VerdictKind.REGRESSION:
            return None
        if result.last_good is None or result.first_bad is None:
            return None
        from .culprit.explain import explain_boundary

        self.target_ranks.forget()  # not needed by the section: room for its float64 copies
        return explain_boundary(
            [e.path for e in self.entries],
            self.data,
            result.last_good,
            result.first_bad,
            self.boundary,
            self.predict_again,
            row_id=self.options.row_id,
        )

    def set_anchor(self) -> None:
        """--max-drop compares with the first model, so it is measured before anything else."""
        head = self.entries[0]
        found, _ = self.measure(head)
        if found.metrics is None:
            raise InputError(
                f"the first model, the --max-drop anchor, cannot be evaluated ({found.reason})",
                str(head.path),
                "fix or drop the first model of the timeline, or use absolute gates only",
            )
        self.anchor = found


def _mapping_notes(metrics: Metrics, requested: str) -> list[str]:
    """What the reason says when the mapping used is not the one asked for."""
    if metrics.mapping_direction is MappingDirection.DECREASING:
        return [
            f"{requested} mapping not applied: the scores fall as the target rises and a"
            " mapping may only rise (if lower scores mean better quality, declare it:"
            ' --direction lower, or direction = "lower" in the timeline)'
        ]
    if metrics.mapping != requested:
        return [f"{requested} mapping fell back to {metrics.mapping}"]
    return []


@contextmanager
def _open_session(
    entries: Sequence[TimelineEntry],
    features_path: Path,
    options: RunOptions,
    on_step: Callable[[Step], None] | None,
    *,
    one_model: bool = False,
    described: tuple[dict[int, InputDescription], dict[int, str]] | None = None,
) -> Iterator[_Session]:
    """Describe each model's inputs (unless ``described`` already holds them), load the
    features they need, and measure the anchor; the session lasts for the ``with`` block,
    whose end waits until every step is complete (and stops the ranking thread)."""
    descriptions, broken = described if described is not None else _describe_inputs(entries)
    if not descriptions:
        raise InputError(
            "no model of the timeline has a usable feature list",
            str(entries[0].path),
            "fix the sidecar JSON files next to the models",
        )
    data = open_dataset(
        features_path,
        list(descriptions.values()),
        options.target,
        one_model=one_model,
        pool_by=options.pool_by,
    )
    slicing: list[Slicing] = []
    if options.slice_by:  # read before any model runs: a bad column is exit 3 at once
        from .evaluation.slicing import slice_columns
        from .slices import slicing as slices_of

        columns = slice_columns(data, options.slice_by)
        slicing = [
            slices_of(name, c.codes, c.vocabulary, data.target) for name, c in columns.items()
        ]
    session = _Session(entries, data, options, descriptions, broken, on_step, slicing)
    try:
        with session.beside or nullcontext():
            if any(g.kind is GateKind.MAX_DROP for g in options.gates):
                session.set_anchor()
            yield session
    finally:
        session.close()


@dataclass(frozen=True)
class Judged:
    """One model judged on its own (`model-bisect judge`); ``anchor`` is the --max-drop
    reference's step when there was one."""

    step: Step
    anchor: Step | None


def judge_model(
    model: TimelineEntry,
    features_path: Path,
    options: RunOptions,
    *,
    anchor: TimelineEntry | None = None,
) -> Judged:
    """Judge one model exactly as a bisect step would, against ``anchor`` for --max-drop.

    Raises InputError when the run cannot proceed (unusable features, an anchor that cannot
    be evaluated); a model that cannot be evaluated is a SKIP step, not an error.
    """
    entries = [replace(e, index=i) for i, e in enumerate([*([anchor] if anchor else []), model])]
    entries = with_sidecar_directions(entries)
    mine = entries[-1]
    described = _describe_inputs(entries)
    broken = described[1]
    if mine.index in broken and anchor is None:  # nothing to load features for
        step = Step(mine.index, mine.label, Status.SKIP, None, broken[mine.index], 0.0)
        return Judged(step, None)
    with _open_session(
        entries, features_path, options, None, one_model=True, described=described
    ) as session:
        session.visit(mine.index)
        if anchor is not None:
            session.visit(0)
    return Judged(session.steps[mine.index], session.steps.get(0) if anchor else None)


def run(
    entries: Sequence[TimelineEntry],
    features_path: Path,
    options: RunOptions,
    *,
    on_step: Callable[[Step], None] | None = None,
    invocation: Invocation | None = None,
) -> Report:
    """Evaluate the timeline lazily and localise the first model that fails the gates."""
    require_two(entries)
    entries = with_sidecar_directions(entries)
    if options.row_id is not None:
        from .culprit.explain import check_row_id

        check_row_id(features_path, options.row_id)
    with _open_session(entries, features_path, options, on_step) as session:
        jobs = session.jobs
        pool = ThreadPoolExecutor(max_workers=jobs) if jobs > 1 else None

        def probe(indices: Sequence[int]) -> Mapping[int, Status]:
            if pool is None:
                return {i: session.visit(i) for i in indices}
            return dict(zip(indices, pool.map(session.visit, indices), strict=True))

        try:
            n = len(entries)
            if options.scan:
                result = scan(n, probe, jobs=jobs)
            else:  # the --max-drop anchor is measured already: it is a step, not a new probe
                known = {0: session.visit(0)} if session.anchor is not None else None
                result = bisect(n, probe, jobs=jobs, known=known)
        finally:
            if pool is not None:
                pool.shutdown()
        culprit = session.explain(result)

    if session.steps and all(s.status is Status.SKIP for s in session.steps.values()):
        raise _nothing_fed(session, features_path)
    report = _build_report(entries, session.data, options, session, result, invocation)
    return replace(report, culprit=culprit)


# The distinct skip reasons an error line names before it counts the rest.
_LISTED_REASONS = 3


def _nothing_fed(session: _Session, features_path: Path) -> InputError:
    """The run's error when every model was skipped: nothing is inconclusive when no model
    could be measured at all; the input is unusable, and the reasons say why."""
    steps = list(session.steps.values())
    counts: dict[str, int] = {}
    for step in steps:  # the skip's own reason, without the duplicate's note
        found, _ = session.measured[session._memo_key(session.entries[step.index])]
        reason = first_line(unicode_safe(found.reason) or "no reason")
        counts[reason] = counts.get(reason, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    listed = [f"{n} x {reason}" if n > 1 else reason for reason, n in ranked[:_LISTED_REASONS]]
    more = len(ranked) - _LISTED_REASONS
    reasons = "; ".join(listed) + (f"; and {more} other reasons" if more > 0 else "")
    return InputError(
        f"no model of the timeline could be evaluated (all {len(steps)} skipped: {reasons})",
        unicode_safe(str(features_path)),
        "feed the models what they need (the columns, or an inputs table in a --timeline"
        " file), or fix the model files the reasons name",
    )


def _build_report(
    entries: Sequence[TimelineEntry],
    data: Dataset,
    options: RunOptions,
    session: _Session,
    result: SearchResult,
    invocation: Invocation | None,
) -> Report:
    labels = [e.label for e in entries]
    verdict = Verdict(
        kind=result.kind,
        first_bad_index=result.first_bad,
        last_good_index=result.last_good,
        candidates=tuple(result.candidates),
        message=verdict_message(result, labels),
    )
    settings: dict[str, Any] = {
        "target": data.target_name,
        "mapping": options.mapping,
        "significance": options.alpha,
        "jobs": session.jobs,
        "mode": "scan" if options.scan else "bisect",
        "cache": options.cache is not None,
        "direction": options.direction.value,
        "executor": options.executor.kind.value,
    }
    if options.slice_by:  # additive: reports without slices keep their settings
        settings["slice_by"] = list(options.slice_by)
        settings["gate_slices"] = options.gate_slices
        settings["min_slice_rows"] = options.min_slice_rows
    return Report(
        tool_version=__version__,
        timeline=tuple(
            ModelRef(
                e.index,
                unicode_safe(e.label),
                unicode_safe(e.source or str(e.path)),
                e.sha256,
                e.commit,
                e.subject,
                e.content_sha256,
                direction_of(e, options),
            )
            for e in entries
        ),
        features=FeaturesRef(
            path=unicode_safe(str(data.path)),
            sha256=data.sha256,
            rows=data.fed_rows,
            columns=data.names,
            dropped_rows=data.dropped.count,
            pool_by=options.pool_by,
            groups=data.rows if options.pool_by is not None else None,
        ),
        gates=options.gates,
        steps=tuple(session.steps[i] for i in sorted(session.steps)),
        evaluations=session.evaluations,
        verdict=verdict,
        toolchain=session.toolchain(),
        settings=settings,
        scan=(
            ScanSummary(monotone=not result.violations, violations=tuple(result.violations))
            if options.scan
            else None
        ),
        invocation=invocation,
    )
