"""The fixture in memory: feature columns, the good linear weights, the timeline, its origin.

Both ways of making a fixture (seeded synthetic data, or a real source parquet) end in a
``Fixture``; the writers and the manifest only ever see this record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from model_bisect.evaluation.features import CANONICAL_FEATURES, TARGET_COLUMN

from .layout import MODEL_COUNT
from .limits import MAX_MODELS, MAX_ROWS, MAX_SEED, FieldError, integer, mapping, sha256, text

__all__ = [
    "TIMELINE_SEED",
    "Fixture",
    "FixtureData",
    "LinearWeights",
    "Origin",
    "OriginKind",
    "perturb",
]

Float32Array = npt.NDArray[np.float32]

# Relative spread of each weight between timeline steps: small enough that every model stays
# good (PLCC >= 0.99 on the synthetic fixture), large enough that the eight files differ.
_WEIGHT_SPREAD = 0.02
TIMELINE_SEED = 20_241_104


@dataclass(frozen=True, eq=False)
class LinearWeights:
    """score = features @ weights + bias, in float32 as the ONNX model stores them."""

    weights: Float32Array
    bias: np.float32


@dataclass(frozen=True, eq=False)
class FixtureData:
    """Canonical feature columns plus the target, all float32 and of equal length."""

    columns: Mapping[str, Float32Array]
    good: LinearWeights

    @property
    def rows(self) -> int:
        return int(self.columns[TARGET_COLUMN].shape[0])

    @property
    def features(self) -> Float32Array:
        """Rows x features, in the canonical order a model's input expects."""
        return np.stack([self.columns[name] for name in CANONICAL_FEATURES], axis=1)


class OriginKind(StrEnum):
    SYNTHETIC = "synthetic"
    SOURCE = "source"
    IMAGES = "images"  # the image fixture: seeded frames and CNNs (cache_builder.images)


@dataclass(frozen=True)
class Origin:
    """How a fixture was made: enough to make it again, recorded in MANIFEST.json."""

    kind: OriginKind
    seeds: Mapping[str, int]
    rows: int
    models: int = MODEL_COUNT
    source_path: str | None = None  # relative to the fixture folder, POSIX separators
    source_sha256: str | None = None
    target_column: str | None = None  # the source's target column, renamed to `mos`
    rows_read: int | None = None
    dropped_rows: int = 0

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind.value,
            "seeds": dict(self.seeds),
            "rows": self.rows,
            "models": self.models,
        }
        if self.kind is OriginKind.SOURCE:
            data["source"] = {
                "path": self.source_path,
                "sha256": self.source_sha256,
                "target_column": self.target_column,
                "rows_read": self.rows_read,
                "dropped_rows": self.dropped_rows,
            }
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Origin:
        """The origin a manifest records, every value type- and range-checked (``FieldError``
        names the field): a regeneration acts on these numbers."""
        data = mapping(data, "origin")
        try:
            kind = OriginKind(str(data.get("kind")))
        except ValueError:
            raise FieldError("origin.kind", "must be 'synthetic', 'source' or 'images'") from None
        seeds = {
            text(name, "origin.seeds", 40): integer(value, f"origin.seeds.{name}", 0, MAX_SEED)
            for name, value in mapping(data.get("seeds"), "origin.seeds").items()
        }
        rows = integer(data.get("rows"), "origin.rows", 1, MAX_ROWS)
        models = integer(data.get("models"), "origin.models", 1, MAX_MODELS)
        if kind is not OriginKind.SOURCE:
            return cls(kind, seeds, rows, models)
        source = mapping(data.get("source"), "origin.source")
        rows_read = integer(source.get("rows_read"), "origin.source.rows_read", rows, MAX_ROWS)
        dropped = integer(source.get("dropped_rows"), "origin.source.dropped_rows", 0, rows_read)
        if rows + dropped != rows_read:
            raise FieldError("origin.source.dropped_rows", "plus origin.rows is not rows_read")
        path = text(source.get("path"), "origin.source.path", 4096)
        if not path:
            raise FieldError("origin.source.path", "is empty")
        return cls(
            kind,
            seeds,
            rows,
            models,
            source_path=path,
            source_sha256=sha256(source.get("sha256"), "origin.source.sha256"),
            target_column=text(source.get("target_column"), "origin.source.target_column"),
            rows_read=rows_read,
            dropped_rows=dropped,
        )


@dataclass(frozen=True, eq=False)
class Fixture:
    data: FixtureData
    timeline: tuple[LinearWeights, ...]
    origin: Origin


def perturb(good: LinearWeights, seed: int, count: int) -> tuple[LinearWeights, ...]:
    """A timeline of ``count`` models near ``good``, as checkpoints of one training run are.

    Elementwise float64 arithmetic only (no BLAS reductions), so every platform rounds alike.
    """
    rng = np.random.default_rng(seed)
    base = good.weights.astype(np.float64)
    scale = float(np.max(np.abs(base))) if base.size else 1.0
    steps = []
    for _ in range(count):
        factors = 1.0 + _WEIGHT_SPREAD * rng.standard_normal(base.shape[0])
        shift = _WEIGHT_SPREAD * scale * float(rng.standard_normal())
        steps.append(
            LinearWeights(
                (base * factors).astype(np.float32),
                np.float32(float(good.bias) + shift),
            )
        )
    return tuple(steps)
