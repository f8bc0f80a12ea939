"""The bisect report (schema_version 1): the one record every renderer and publisher reads.

Its JSON shape is the contract described in docs/report-schema.md; ``to_json`` /
``from_json`` here are the only code that knows the field names (the additive ``culprit``
section's live with its records in ``culprit/record.py``).
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from .catalogue import CATALOGUE, Direction, GateKind, MappingName, metric_spec
from .culprit.record import Culprit

__all__ = [
    "SCHEMA_VERSION",
    "FeaturesRef",
    "GateSpec",
    "Invocation",
    "MappingDirection",
    "Metrics",
    "ModelRef",
    "Report",
    "ScanSummary",
    "SliceMetrics",
    "SliceRef",
    "Status",
    "Step",
    "Verdict",
    "VerdictKind",
    "negated_phrase",
    "read_report",
    "short_identity",
]

SCHEMA_VERSION = 1


class Status(StrEnum):
    """Outcome of one model, as `git bisect good|bad|skip`."""

    GOOD = "good"
    BAD = "bad"
    SKIP = "skip"


class MappingDirection(StrEnum):
    """Which way the least-squares line through a model's scores runs. Mappings may only
    rise, so a model whose line falls is left unmapped instead of flipped into a good one."""

    INCREASING = "increasing"
    DECREASING = "decreasing"


class VerdictKind(StrEnum):
    NO_REGRESSION = "no_regression"
    REGRESSION = "regression"
    HEAD_BAD = "head_bad"
    INCONCLUSIVE = "inconclusive"


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class ModelRef:
    """One timeline entry. For a git timeline ``path`` is the file's path inside the repository
    (the copy that was evaluated lived in a temporary folder, deleted since), ``commit`` the
    full SHA and ``subject`` the commit's subject line; both are None for other timelines.

    ``content_sha256`` is the model's identity: the hash of the ``.onnx`` file with its
    external-data files and sidecar, all of which decide its predictions (``sha256`` is the
    ``.onnx`` file's alone). ``direction`` is ``LOWER_IS_BETTER`` when the model was declared
    to score better quality lower, so its scores were negated before anything else.
    """

    index: int
    label: str
    path: str
    sha256: str | None  # None when the file could not be read
    commit: str | None = None
    subject: str | None = None
    content_sha256: str | None = None
    direction: Direction = Direction.HIGHER_IS_BETTER

    @property
    def identity(self) -> str | None:
        """The hash that tells models apart (reports written before it was recorded fall
        back to the ``.onnx`` file's)."""
        return self.content_sha256 or self.sha256

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "index": self.index,
            "label": self.label,
            "path": self.path,
            "sha256": self.sha256,
            "content_sha256": self.content_sha256,
            "direction": self.direction.value,
        }
        if self.commit is not None:
            data["commit"] = self.commit
        if self.subject is not None:
            data["subject"] = self.subject
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelRef:
        return cls(
            int(data["index"]),
            str(data["label"]),
            str(data["path"]),
            data.get("sha256"),
            _optional_str(data.get("commit")),
            _optional_str(data.get("subject")),
            _optional_str(data.get("content_sha256")),
            Direction(data.get("direction", Direction.HIGHER_IS_BETTER.value)),
        )


@dataclass(frozen=True)
class Invocation:
    """How the report was produced, so anyone can run it again.

    ``argv`` is the command line after the program name, secrets already masked; ``cwd`` the
    working directory relative to the repository root when it was inside one (``"."`` at the
    root, ``in_repository`` true), else absolute. ``reproduce`` overrides the shown command
    when a wrapper (the nightly chain) produced the report. ``config`` is the file whose
    `[tool.model-bisect]` supplied settings (found upwards or given with --config), in the
    same form as ``cwd``: a parent folder's table must not act unseen. ``head`` is the
    repository's checked-out commit (full SHA), so a rerun starts from the same code.
    """

    argv: tuple[str, ...]
    tool_version: str
    cwd: str
    in_repository: bool
    reproduce: str | None = None
    config: str | None = None
    head: str | None = None

    def command(self) -> str:
        """The command line to show: the wrapper's, else `model-bisect` with ``argv``."""
        return self.reproduce or shlex.join(["model-bisect", *self.argv])

    def to_json(self) -> dict[str, Any]:
        return {
            "argv": list(self.argv),
            "tool_version": self.tool_version,
            "cwd": self.cwd,
            "in_repository": self.in_repository,
            "reproduce": self.reproduce,
            "config": self.config,
            "head": self.head,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Invocation:
        return cls(
            tuple(str(word) for word in data["argv"]),
            str(data["tool_version"]),
            str(data["cwd"]),
            bool(data.get("in_repository", False)),
            _optional_str(data.get("reproduce")),
            _optional_str(data.get("config")),
            _optional_str(data.get("head")),
        )


@dataclass(frozen=True)
class FeaturesRef:
    path: str
    sha256: str
    rows: int
    columns: tuple[str, ...]
    dropped_rows: int = 0  # rows with a non-finite feature or target, left out
    pool_by: str | None = None  # --pool-by: the column whose values are the rated items
    groups: int | None = None  # how many rated items (groups) the metrics are over

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.path,
            "sha256": self.sha256,
            "rows": self.rows,
            "columns": list(self.columns),
            "dropped_rows": self.dropped_rows,
        }
        if self.pool_by is not None:  # additive: reports without pooling read as before
            data["pool_by"] = self.pool_by
            data["groups"] = self.groups
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeaturesRef:
        return cls(
            str(data["path"]),
            str(data["sha256"]),
            int(data["rows"]),
            tuple(data["columns"]),
            int(data.get("dropped_rows", 0)),
            None if data.get("pool_by") is None else str(data["pool_by"]),
            None if data.get("groups") is None else int(data["groups"]),
        )


def _finite_or_none(value: float) -> float | None:
    """NaN and inf are not JSON: a metric that cannot be computed is written as null."""
    return value if math.isfinite(value) else None


def _float_or_nan(value: Any) -> float:
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class Metrics:
    """Agreement of one model's predictions with the subjective target.

    ``values`` holds catalogue metrics by name: every one when this version computed them, a
    subset when read from a report or cache entry written before a metric was added (absent
    = not computed; ``value`` gives NaN, as for a metric that could not be computed). ``ci``
    maps a metric name to its 95% interval (computed as the catalogue says). Metrics that are
    not rank-based are computed after ``mapping``; ``mapping_direction`` is which way the
    fitted line ran when a mapping was asked for (``DECREASING``: no rising mapping fits, so
    the scores were left unmapped).
    """

    values: Mapping[str, float]
    n: int
    ci: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    mapping: str = MappingName.NONE.value
    mapping_direction: MappingDirection | None = None

    def __post_init__(self) -> None:
        for name in (*self.values, *self.ci):
            metric_spec(name)  # UnknownMetricError for a name outside the catalogue

    @property
    def complete(self) -> bool:
        """Whether every catalogue metric was computed (a record from an older version may
        lack one added since)."""
        return all(name in self.values for name in CATALOGUE.names)

    def value(self, metric: str) -> float:
        """The metric's value, NaN when it was not computed; UnknownMetricError (a KeyError)
        for a name outside the catalogue."""
        return float(self.values.get(metric_spec(metric).name, math.nan))

    def to_json(self) -> dict[str, Any]:
        return {
            **{
                name: _finite_or_none(self.values[name])
                for name in CATALOGUE.names
                if name in self.values
            },
            "n": self.n,
            "ci": {
                k: [_finite_or_none(lo), _finite_or_none(hi)] for k, (lo, hi) in self.ci.items()
            },
            "mapping": self.mapping,
            **(
                {}
                if self.mapping_direction is None
                else {"mapping_direction": self.mapping_direction.value}
            ),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Metrics:
        """The record ``to_json`` wrote, by this or another version: a catalogue metric it
        lacks was not computed, a metric name this version does not know is left out.
        ValueError naming the problem for anything else."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a metrics record is a JSON object, not {type(data).__name__}")
        if "n" not in data:
            raise ValueError("metrics record lacks n")
        ci = data.get("ci", {})
        if not isinstance(ci, Mapping):
            raise ValueError(f"metrics ci is a JSON object, not {type(ci).__name__}")
        known = CATALOGUE.names
        try:
            intervals = {}
            for k, bounds in ci.items():
                low, high = bounds
                if str(k) in known:
                    intervals[str(k)] = (_float_or_nan(low), _float_or_nan(high))
            return cls(
                values={name: _float_or_nan(data[name]) for name in known if name in data},
                n=int(data["n"]),
                ci=intervals,
                mapping=str(data.get("mapping", MappingName.NONE.value)),
                mapping_direction=(
                    None
                    if data.get("mapping_direction") is None
                    else MappingDirection(data["mapping_direction"])
                ),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"malformed metrics record ({exc})") from None


@dataclass(frozen=True)
class GateSpec:
    """One gate: ``kind`` (see GateKind) applied to ``metric`` with ``threshold``."""

    metric: str
    kind: GateKind
    threshold: float

    def __post_init__(self) -> None:
        metric_spec(self.metric)  # UnknownMetricError: a gate on a metric no one computes
        if self.kind not in tuple(GateKind):
            raise ValueError(f"unknown gate kind {self.kind!r}")
        object.__setattr__(self, "kind", GateKind(self.kind))

    def describe(self) -> str:
        if self.kind is GateKind.MIN:
            return f"{self.metric} >= {self.threshold:g}"
        if self.kind is GateKind.MAX:
            return f"{self.metric} <= {self.threshold:g}"
        return f"{self.metric} drop <= {self.threshold:g} vs first model"

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "kind": self.kind.value, "threshold": self.threshold}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GateSpec:
        return cls(str(data["metric"]), GateKind(str(data["kind"])), float(data["threshold"]))


@dataclass(frozen=True)
class SliceRef:
    """Names one slice: a string column and its value (None: the rows where it is null)."""

    column: str
    value: str | None

    def describe(self) -> str:
        """``encoder = libx265``, as reasons and tables name the slice."""
        return f"{self.column} = {'(null)' if self.value is None else self.value}"

    def to_json(self) -> dict[str, Any]:
        return {"column": self.column, "value": self.value}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SliceRef:
        return cls(str(data["column"]), _optional_str(data.get("value")))


@dataclass(frozen=True)
class SliceMetrics:
    """Every metric of one model on the rated items whose ``column`` is ``value`` (--slice-by):
    ``rows`` of them (groups with --pool-by). ``gated`` says whether the slice gates applied
    to it (--gate-slices and at least --min-slice-rows rows)."""

    column: str
    value: str | None
    rows: int
    metrics: Metrics
    gated: bool = False

    @property
    def ref(self) -> SliceRef:
        return SliceRef(self.column, self.value)

    def to_json(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "value": self.value,
            "rows": self.rows,
            "metrics": self.metrics.to_json(),
            "gated": self.gated,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SliceMetrics:
        return cls(
            str(data["column"]),
            _optional_str(data.get("value")),
            int(data["rows"]),
            Metrics.from_json(data["metrics"]),
            bool(data.get("gated", False)),
        )


@dataclass(frozen=True)
class Step:
    """One evaluated model. ``p_values`` holds the significance test of each max-drop gate;
    ``unknown_rows`` counts rows whose one-hot value is outside the model's layout (written
    only when non-zero, so reports without one-hot inputs keep their shape). ``slices`` are
    its metrics per value of each --slice-by column and ``worst_slice`` names the worst of
    them (see ``slices.worst_slice``); both are written only with --slice-by."""

    index: int
    label: str
    status: Status
    metrics: Metrics | None
    reason: str
    seconds: float
    cached: bool = False
    p_values: Mapping[str, float] = field(default_factory=dict)
    unknown_rows: int = 0
    slices: tuple[SliceMetrics, ...] = ()
    worst_slice: SliceRef | None = None

    def worst(self) -> SliceMetrics | None:
        """The record ``worst_slice`` names (None without slices)."""
        return next((s for s in self.slices if s.ref == self.worst_slice), None)

    def to_json(self) -> dict[str, Any]:
        data = {
            "index": self.index,
            "label": self.label,
            "status": self.status.value,
            "metrics": None if self.metrics is None else self.metrics.to_json(),
            "reason": self.reason,
            "seconds": self.seconds,
            "cached": self.cached,
            "p_values": dict(self.p_values),
        }
        if self.unknown_rows:
            data["unknown_rows"] = self.unknown_rows
        if self.slices:  # additive: reports without --slice-by keep their shape
            data["slices"] = [s.to_json() for s in self.slices]
            data["worst_slice"] = None if self.worst_slice is None else self.worst_slice.to_json()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Step:
        metrics = data.get("metrics")
        return cls(
            index=int(data["index"]),
            label=str(data["label"]),
            status=Status(data["status"]),
            metrics=None if metrics is None else Metrics.from_json(metrics),
            reason=str(data.get("reason", "")),
            seconds=float(data.get("seconds", 0.0)),
            cached=bool(data.get("cached", False)),
            p_values={k: float(v) for k, v in data.get("p_values", {}).items() if k in CATALOGUE},
            unknown_rows=int(data.get("unknown_rows", 0)),
            slices=tuple(SliceMetrics.from_json(s) for s in data.get("slices") or ()),
            worst_slice=(
                None if data.get("worst_slice") is None else SliceRef.from_json(data["worst_slice"])
            ),
        )


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    first_bad_index: int | None
    last_good_index: int | None
    candidates: tuple[int, ...]
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "first_bad_index": self.first_bad_index,
            "last_good_index": self.last_good_index,
            "candidates": list(self.candidates),
            "message": self.message,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(
            VerdictKind(data["kind"]),
            data.get("first_bad_index"),
            data.get("last_good_index"),
            tuple(int(i) for i in data.get("candidates", ())),
            str(data.get("message", "")),
        )


@dataclass(frozen=True)
class ScanSummary:
    """Present with ``--scan``: whether good-then-bad holds; ``violations`` are good models
    that follow a bad one (the timeline breaks the bisect's assumption there)."""

    monotone: bool
    violations: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"monotone": self.monotone, "violations": list(self.violations)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScanSummary:
        return cls(bool(data["monotone"]), tuple(int(i) for i in data.get("violations", ())))

    @staticmethod
    def shape(steps: Sequence[Step]) -> str:
        """How a monotone scan looks: "good, then bad", or that every evaluated model was
        one of the two (a timeline that is all bad is monotone too, but says so)."""
        seen = {step.status for step in steps} - {Status.SKIP}
        if seen == {Status.GOOD}:
            return "every evaluated model good"
        if seen == {Status.BAD}:
            return "every evaluated model bad"
        if not seen:
            return "no model evaluated"
        return "good, then bad"


@dataclass(frozen=True)
class Report:
    tool_version: str
    timeline: tuple[ModelRef, ...]
    features: FeaturesRef
    gates: tuple[GateSpec, ...]
    steps: tuple[Step, ...]  # index order, only the models actually visited
    evaluations: int  # models evaluated in this run (cache hits and duplicates excluded)
    verdict: Verdict
    toolchain: Mapping[str, str]
    settings: Mapping[str, Any] = field(default_factory=dict)  # mapping, target, alpha, jobs...
    scan: ScanSummary | None = None
    invocation: Invocation | None = None  # None in reports written before it was recorded
    culprit: Culprit | None = None  # only for a localised regression
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "tool_version": self.tool_version,
            "timeline": [m.to_json() for m in self.timeline],
            "features": self.features.to_json(),
            "gates": [g.to_json() for g in self.gates],
            "steps": [s.to_json() for s in self.steps],
            "evaluations": self.evaluations,
            "verdict": self.verdict.to_json(),
            "toolchain": dict(self.toolchain),
            "settings": dict(self.settings),
            "scan": None if self.scan is None else self.scan.to_json(),
            "invocation": None if self.invocation is None else self.invocation.to_json(),
            "culprit": None if self.culprit is None else self.culprit.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Report:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"schema_version {version!r}, expected {SCHEMA_VERSION}")
        scan = data.get("scan")
        invocation = data.get("invocation")
        return cls(
            schema_version=SCHEMA_VERSION,
            tool_version=str(data["tool_version"]),
            timeline=tuple(ModelRef.from_json(m) for m in data["timeline"]),
            features=FeaturesRef.from_json(data["features"]),
            gates=tuple(GateSpec.from_json(g) for g in data["gates"]),
            steps=tuple(Step.from_json(s) for s in data["steps"]),
            evaluations=int(data["evaluations"]),
            verdict=Verdict.from_json(data["verdict"]),
            toolchain={str(k): str(v) for k, v in data.get("toolchain", {}).items()},
            settings=dict(data.get("settings", {})),
            scan=None if scan is None else ScanSummary.from_json(scan),
            invocation=None if invocation is None else Invocation.from_json(invocation),
            culprit=None if data.get("culprit") is None else Culprit.from_json(data["culprit"]),
        )


def read_report(path: Path) -> Report:
    """Load a report file, turning every way it can be wrong into one InputError."""
    from .errors import InputError

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Report.from_json(data)
    except FileNotFoundError:
        raise InputError(
            "report not found", str(path), "run `model-bisect run --json FILE` first"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"not a model-bisect report ({exc.__class__.__name__}: {exc})",
            str(path),
            "pass the JSON written by `model-bisect run --json`",
        ) from None


def dumps(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2, allow_nan=False) + "\n"


# A model's identity is shown by this many hex digits of its content hash (the report has it
# whole): enough to tell apart the models of one timeline at a glance.
ID_DIGITS = 8


def short_identity(report: Report, index: int) -> str:
    """The first ``ID_DIGITS`` of the model's identity (the hash of its ``.onnx`` file,
    external data and sidecar), or a dash when the file could not be read."""
    for ref in report.timeline:
        if ref.index == index:
            return ref.identity[:ID_DIGITS] if ref.identity else "-"
    return "-"


def negated_phrase(report: Report, more: str) -> str:
    """Which models' scores were negated, declared lower-is-better ("" when none); ``more``
    stands for the rest of a long list, in the renderer's own alphabet."""
    lower = [ref.index for ref in report.timeline if ref.direction is Direction.LOWER_IS_BETTER]
    if not lower:
        return ""
    if len(lower) == len(report.timeline):
        return "scores negated: every model declared lower-is-better"
    shown = ", ".join(f"#{i}" for i in lower[:20]) + (f" {more}" if len(lower) > 20 else "")
    return f"scores negated for {shown}: declared lower-is-better"
