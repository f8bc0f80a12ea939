"""Helpers for the cache_builder tests: snapshot trees, write source parquets, edit models."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pyarrow as pa
import pyarrow.parquet as pq

from model_bisect.evaluation.features import CANONICAL_FEATURES

__all__ = [
    "REPO_ROOT",
    "edit_model",
    "read_json",
    "snapshot",
    "source_columns",
    "write_parquet",
]

REPO_ROOT = Path(__file__).resolve().parent.parent


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones too) by relative path."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def source_columns(rows: int, seed: int = 7, target: str = "mos") -> dict[str, np.ndarray]:
    """A plausible real cache: six features and a target linearly tied to them plus noise."""
    rng = np.random.default_rng(seed)
    features = {name: rng.uniform(0.2, 1.0, rows) for name in CANONICAL_FEATURES}
    total = sum((i + 1) * features[name] for i, name in enumerate(CANONICAL_FEATURES))
    return {**features, target: total + 0.05 * rng.standard_normal(rows)}


def write_parquet(path: Path, columns: Mapping[str, Any], **options: Any) -> Path:
    table = pa.table({name: pa.array(values) for name, values in columns.items()})
    pq.write_table(table, path, **options)
    return path


def edit_model(path: Path, **fields: Any) -> onnx.ModelProto:
    """Load, set top-level fields, save back: how a hand edit or another writer looks."""
    model = onnx.load_model(path)
    for name, value in fields.items():
        setattr(model, name, value)
    onnx.save_model(model, path)
    return model
