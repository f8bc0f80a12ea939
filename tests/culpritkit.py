"""A timeline with one localised regression, and a features file with string columns: for
the culprit tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from model_bisect.evaluation.features import CANONICAL_FEATURES
from tests.modelkit import default_weights, linear_model

__all__ = ["ENCODERS", "GOOD", "ROWS", "features", "predict", "timeline"]

ROWS = 600
GOOD = default_weights(len(CANONICAL_FEATURES))
ENCODERS = ("libx264", "libx265", "libvpx-vp9")


def features(path: Path, *, nan_rows: tuple[int, ...] = ()) -> dict[str, Any]:
    rng = np.random.default_rng(5)
    x = rng.uniform(0.0, 1.0, size=(ROWS, len(CANONICAL_FEATURES))).astype(np.float32)
    mos = x.astype(np.float64) @ np.asarray(GOOD) + rng.normal(0.0, 0.01, ROWS)
    for row in nan_rows:
        x[row, 0] = np.nan
    columns: dict[str, Any] = {name: x[:, i] for i, name in enumerate(CANONICAL_FEATURES)}
    columns["mos"] = mos
    columns["encoder"] = [ENCODERS[i % 3] for i in range(ROWS)]
    columns["clip"] = [f"clip-{i:04d}" for i in range(ROWS)]
    pq.write_table(pa.table(columns), path)
    return columns


def timeline(folder: Path, first_bad: int, n: int = 6) -> tuple[list[float], list[float]]:
    """Identical good models, then the same weights with ``motion2``'s scaled by -4."""
    bad = list(GOOD)
    bad[5] *= -4.0
    for i in range(n):
        linear_model(folder / f"model_{i:02d}.onnx", GOOD if i < first_bad else bad, 0.1)
    return GOOD, bad


def predict(columns: dict[str, Any], weights: list[float]) -> np.ndarray:
    """The linear models' predictions computed by numpy, independently of ONNX Runtime."""
    x = np.column_stack([np.asarray(columns[n], dtype=np.float64) for n in CANONICAL_FEATURES])
    return x @ np.asarray(weights) + 0.1
