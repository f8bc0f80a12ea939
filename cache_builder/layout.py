"""Where each artifact of a fixture folder lives: the one list writers and drift agree on."""

from __future__ import annotations

from pathlib import PurePosixPath

__all__ = [
    "DEFAULT_OUT",
    "FEATURES_FILE",
    "MANIFEST_FILE",
    "MODELS_DIR",
    "MODEL_COUNT",
    "is_hand_written",
    "model_file",
]

DEFAULT_OUT = "testdata/bisect"
FEATURES_FILE = "features.parquet"
MANIFEST_FILE = "MANIFEST.json"
MODELS_DIR = "models"
MODEL_COUNT = 8


def model_file(index: int) -> str:
    """Two-digit names keep plain sorting equal to timeline order up to 100 models."""
    return f"{MODELS_DIR}/model_{index:02d}.onnx"


def is_hand_written(relative: str) -> bool:
    """Top-level Markdown files are prose people maintain: kept on regenerate, never compared."""
    path = PurePosixPath(relative)
    return len(path.parts) == 1 and path.suffix.lower() == ".md"
