"""Glue between the pure search and the world: evaluate models on demand, judge them, report.

The search asks for indices; this module turns an index into a Status by running the model
(or reading the evaluation cache), computing metrics and applying the gates, and records every
visited model as a Step so the report can show the evidence.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from .catalogue import metric_spec
from .culprit.keep import Boundary
from .errors import InputError
from .evaluation.cache import EvalCache
from .evaluation.features import FeatureTable, load_features
from .evaluation.inputs import InputDescription, describe
from .gates import judge
from .report import (
    FeaturesRef,
    GateSpec,
    Invocation,
    Metrics,
    ModelRef,
    Report,
    ScanSummary,
    Status,
    Step,
    Verdict,
    VerdictKind,
)
from .safetext import unicode_safe
from .search import SearchResult, bisect, scan, verdict_message
from .timeline.sources import TimelineEntry, require_two
from .toolchain import toolchain_versions

if TYPE_CHECKING:
    from .culprit.record import Culprit
    from .evaluation.runner import Evaluator
    from .ranks import TargetRanks

__all__ = [
    "MAX_JOBS",
    "Judged",
    "RunOptions",
    "effective_jobs",
    "inference_threads",
    "judge_model",
    "run",
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
    target: str = "mos"
    mapping: str = "none"
    alpha: float | None = None
    jobs: int = 1
    scan: bool = False
    input_name: str | None = None
    cache: EvalCache | None = None
    row_id: str | None = None  # the culprit's worst rows name this column's value


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
    # The complete metrics when the rank-based ones are still being computed (``metrics``
    # then holds every gated metric, and NaN for those).
    pending: Future[Metrics] | None = None


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


def _load_for(
    descriptions: Mapping[int, InputDescription],
    features_path: Path,
    target: str,
    *,
    one_model: bool = False,
) -> FeatureTable:
    """The parquet read once for every model: a column only some models need may be missing
    (those models skip, naming it), but a file no model can be fed from is an InputError.
    For ``one_model`` (judge) a missing column is that model's skip whatever the others need."""
    numeric = list(dict.fromkeys(c for d in descriptions.values() for c in d.numeric_columns))
    strings = list(dict.fromkeys(c for d in descriptions.values() for c in d.string_columns))
    features = load_features(features_path, numeric, target, strings=strings, allow_missing=True)
    if one_model:
        return features
    if features.absent and all(d.lacking(features) for d in descriptions.values()):
        # Read again without allow_missing for the usual message naming the missing columns.
        load_features(features_path, numeric, target, strings=strings)
    return features


def _cached_record(record: Mapping[str, Any]) -> tuple[Metrics, int, str]:
    """Metrics and unknown-value count of a cache record; raises (KeyError, TypeError, ...)
    on a record of another shape, which the cache then treats as a miss."""
    return (
        Metrics.from_json(record["metrics"]),
        int(record.get("unknown_rows", 0)),
        str(record.get("note", "")),
    )


class _Session:
    """One run's mutable state: the memo of judged models and the steps visited."""

    def __init__(
        self,
        entries: Sequence[TimelineEntry],
        features: FeatureTable,
        options: RunOptions,
        descriptions: Mapping[int, InputDescription],
        broken: Mapping[int, str],
        on_step: Callable[[Step], None] | None,
    ) -> None:
        self.entries = entries
        self.features = features
        self.options = options
        self.descriptions = descriptions
        self.broken = broken
        self.on_step = on_step
        self._evaluator: Evaluator | None = None
        self._target_ranks: TargetRanks | None = None
        # Apart from self.lock, which every probe takes: ranking the target, or reading the
        # library versions, takes a while.
        self._target_lock = threading.Lock()
        self._toolchain_lock = threading.Lock()
        self.measured: dict[str, tuple[_Measure, int]] = {}  # by sha256: result, first index
        self.steps: dict[int, Step] = {}
        self.evaluations = 0
        self.anchor: _Measure | None = None
        self.lock = threading.Lock()
        self._toolchain: dict[str, str] | None = None
        self.needs_predictions = options.alpha is not None and any(
            g.kind == "max_drop" for g in options.gates
        )
        self.visited: dict[int, _Measure] = {}
        self.boundary = Boundary()  # the culprit section's predictions (two models at most)
        self._ranker: ThreadPoolExecutor | None = None
        self._ranking: Future[Metrics] | None = None
        self.jobs = effective_jobs(options.jobs, len(entries))  # probes at once
        self.overlap = (
            self.jobs == 1
            and features.rows <= OVERLAP_MAX_ROWS
            and all(metric_spec(g.metric).mapped for g in options.gates)
        )

    @property
    def evaluator(self) -> Evaluator:
        """Created on the first cache miss: a fully cached rerun never loads ONNX Runtime."""
        with self.lock:
            if self._evaluator is None:
                from .evaluation.runner import Evaluator

                self._evaluator = Evaluator(
                    self.features,
                    input_name=self.options.input_name,
                    threads=inference_threads(self.jobs, self.overlap, os.cpu_count() or 1),
                    spin=not self.overlap,
                )
                if self.overlap:  # ready when due, read while this model is inferred
                    self._ranking_thread().submit(self._ranks)
                    self._ranking_thread().submit(self.toolchain)
            return self._evaluator

    def _cache_key(self, entry: TimelineEntry) -> str:
        """Everything the metrics depend on: the model with its weights, the feature file and
        the rows of it this run kept (they depend on every model's columns), what the model is
        fed (its inputs' columns), the target, the mapping, the input name, and the versions
        that compute them."""
        versions = self.toolchain()
        return EvalCache.key(
            model=entry.weights_sha256 or entry.content_sha256 or entry.sha256,
            features=self.features.sha256,
            rows=self.features.rows_sha256,
            inputs=self.descriptions[entry.index].key(),
            target=self.features.target_name,
            mapping=self.options.mapping,
            input_name=self.options.input_name,
            toolchain=versions,
            version=__version__,
        )

    def measure(self, entry: TimelineEntry) -> tuple[_Measure, bool]:
        """The model's metrics (or skip reason), and whether an earlier entry had the same bytes."""
        memo_key = self._memo_key(entry)
        with self.lock:
            known = self.measured.get(memo_key)
        if known is not None:
            return known[0], known[1] != entry.index
        found = self._measure_uncached(entry)
        with self.lock:
            found, owner = self.measured.setdefault(memo_key, (found, entry.index))
        return found, owner != entry.index

    def _memo_key(self, entry: TimelineEntry) -> str:
        # content_sha256 covers external-data files and the sidecar: a retrained model often
        # changes only model.onnx.data, leaving model.onnx byte-identical.
        memo_key = entry.content_sha256 or entry.sha256 or f"path:{entry.path}"
        if entry.index in self.descriptions:  # same bytes fed differently are different models
            memo_key += "|" + self.descriptions[entry.index].fingerprint()
        return memo_key

    def _measure_uncached(self, entry: TimelineEntry) -> _Measure:
        if entry.index in self.broken:
            return _Measure(None, self.broken[entry.index], 0.0, False, None)
        cache = self.options.cache
        key = None
        if cache is not None and (entry.content_sha256 or entry.sha256) is not None:
            key = self._cache_key(entry)
            hit = cache.get(key, _cached_record)
            if hit is not None:
                (metrics, unknown, note), predictions = hit
                if predictions is not None or not self.needs_predictions:
                    return _Measure(metrics, "", 0.0, True, predictions, unknown, note)
        started = time.perf_counter()
        evaluation = self.evaluator.predict(entry, self.descriptions[entry.index])
        if not evaluation.ok or evaluation.predictions is None:
            # Skips are not cached: a missing external-data file may be restored later. Nor
            # are they counted: "2 evaluated" must not be said of two models that could not be.
            return _Measure(None, evaluation.reason, evaluation.seconds, False, None)
        with self.lock:
            self.evaluations += 1
        predictions = evaluation.predictions
        self.boundary.offer(self._memo_key(entry), predictions)
        record = {"unknown_rows": evaluation.unknown_rows, "note": evaluation.note}
        if self.overlap:
            metrics = self._compute_metrics(predictions, ranked=False)
            pending: Future[Metrics] | None = self._rank_later(predictions, metrics, key, record)
        else:
            metrics = self._store(self._compute_metrics(predictions), predictions, key, record)
            pending = None
        seconds = time.perf_counter() - started
        # Predictions (8 MB per million rows) are kept only for the significance test; holding
        # them for every model of a 512-model scan would cost gigabytes.
        kept_predictions = predictions if self.needs_predictions else None
        return _Measure(
            metrics,
            "",
            seconds,
            False,
            kept_predictions,
            evaluation.unknown_rows,
            evaluation.note,
            pending,
        )

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

    def _rank_later(
        self,
        predictions: np.ndarray,
        metrics: Metrics,
        key: str | None,
        record: Mapping[str, Any],
    ) -> Future[Metrics]:
        """Complete ``metrics`` with the rank-based ones on the ranking thread. One model at a
        time: the previous one is finished first, so at most one extra predictions array is
        alive, and an error there surfaces here."""
        from .metrics import with_rank_metrics

        if self._ranking is not None:
            self._ranking.result()

        def finish() -> Metrics:
            target = self.features.target
            full = with_rank_metrics(metrics, predictions, target, ranks=self._ranks())
            return self._store(full, predictions, key, record)

        self._ranking = self._ranking_thread().submit(finish)
        return self._ranking

    def _ranking_thread(self) -> ThreadPoolExecutor:
        if self._ranker is None:
            self._ranker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ranks")
        return self._ranker

    def finish(self) -> None:
        """Wait for the ranking thread and put the complete metrics into every visited step."""
        try:
            for index, found in self.visited.items():
                if found.pending is not None:
                    self.steps[index] = replace(self.steps[index], metrics=found.pending.result())
        finally:
            self.close()

    def close(self) -> None:
        if self._ranker is not None:
            self._ranker.shutdown(wait=True, cancel_futures=True)
            self._ranker = None

    def toolchain(self) -> dict[str, str]:
        """The library versions, read once per run: the cache key and the report share them."""
        with self._toolchain_lock:
            if self._toolchain is None:
                self._toolchain = toolchain_versions()
            return self._toolchain

    def _ranks(self) -> TargetRanks:
        from .metrics import target_ranks

        with self._target_lock:
            if self._target_ranks is None:  # every model is ranked against one target
                self._target_ranks = target_ranks(self.features.target)
            return self._target_ranks

    def _compute_metrics(self, predictions: np.ndarray, *, ranked: bool = True) -> Metrics:
        from .metrics import compute_metrics  # only on a cache miss

        return compute_metrics(
            predictions,
            self.features.target,
            mapping=self.options.mapping,
            ranks=self._ranks() if ranked else None,
            ranked=ranked,
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
                self.features.target,
                np.asarray(anchor_pred, dtype=np.float64),
                np.asarray(predictions, dtype=np.float64),
                mapping=self.options.mapping,
            )
            for g in self.options.gates
            if g.kind == "max_drop"
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
        notes = [found.note] if found.note else []
        if found.metrics is not None and found.metrics.mapping != self.options.mapping:
            notes.append(f"{self.options.mapping} mapping fell back to {found.metrics.mapping}")
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
        )
        self.boundary.judged(index, self._memo_key(entry), status)
        with self.lock:
            self.steps[index] = step
            self.visited[index] = found
        if self.on_step is not None:
            self.on_step(step)
        return status

    def predict_again(self, index: int) -> np.ndarray | None:
        """A model's predictions once more (its metrics came from the evaluation cache)."""
        evaluation = self.evaluator.predict(self.entries[index], self.descriptions[index])
        return evaluation.predictions if evaluation.ok else None

    def explain(self, result: SearchResult) -> Culprit | None:
        """The culprit section when the search localised a regression."""
        if result.kind is not VerdictKind.REGRESSION:
            return None
        if result.last_good is None or result.first_bad is None:
            return None
        from .culprit.explain import explain_boundary

        return explain_boundary(
            [e.path for e in self.entries],
            self.features,
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


def _open_session(
    entries: Sequence[TimelineEntry],
    features_path: Path,
    options: RunOptions,
    on_step: Callable[[Step], None] | None,
    *,
    one_model: bool = False,
    described: tuple[dict[int, InputDescription], dict[int, str]] | None = None,
) -> _Session:
    """Describe each model's inputs (unless ``described`` already holds them), load the
    features they need, and measure the anchor."""
    descriptions, broken = described if described is not None else _describe_inputs(entries)
    if not descriptions:
        raise InputError(
            "no model of the timeline has a usable feature list",
            str(entries[0].path),
            "fix the sidecar JSON files next to the models",
        )
    features = _load_for(descriptions, features_path, options.target, one_model=one_model)
    session = _Session(entries, features, options, descriptions, broken, on_step)
    if any(g.kind == "max_drop" for g in options.gates):
        session.set_anchor()
    return session


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
    mine = entries[-1]
    described = _describe_inputs(entries)
    broken = described[1]
    if mine.index in broken and anchor is None:  # nothing to load features for
        step = Step(mine.index, mine.label, Status.SKIP, None, broken[mine.index], 0.0)
        return Judged(step, None)
    session = _open_session(
        entries, features_path, options, None, one_model=True, described=described
    )
    try:
        session.visit(mine.index)
        if anchor is not None:
            session.visit(0)
    finally:
        session.finish()
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
    if options.row_id is not None:
        from .culprit.explain import check_row_id

        check_row_id(features_path, options.row_id)
    session = _open_session(entries, features_path, options, on_step)

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
        culprit = session.explain(result)
        session.finish()
    finally:
        session.close()
        if pool is not None:
            pool.shutdown()

    report = _build_report(entries, session.features, options, session, result, invocation)
    return replace(report, culprit=culprit)


def _build_report(
    entries: Sequence[TimelineEntry],
    features: FeatureTable,
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
        "target": features.target_name,
        "mapping": options.mapping,
        "significance": options.alpha,
        "jobs": session.jobs,
        "mode": "scan" if options.scan else "bisect",
        "cache": options.cache is not None,
    }
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
            )
            for e in entries
        ),
        features=FeaturesRef(
            path=unicode_safe(str(features.path)),
            sha256=features.sha256,
            rows=int(features.matrix.shape[0]),
            columns=features.names,
            dropped_rows=features.dropped_rows,
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
