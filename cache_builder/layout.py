"""Where each artifact of a fixture folder lives: the one list writers and drift agree on."""

from __future__ import annotations

from enum import StrEnum
from pathlib import PurePosixPath

__all__ = [
    "DEFAULT_OUT",
    "FEATURES_FILE",
    "FR_FRAMES_FILE",
    "FR_TIMELINE_FILE",
    "IMAGES_OUT",
    "MANIFEST_FILE",
    "MODELS_DIR",
    "MODEL_COUNT",
    "NR_FRAMES_FILE",
    "NR_TIMELINE_FILE",
    "FixtureKind",
    "image_model",
    "is_hand_written",
    "model_file",
]

DEFAULT_OUT = "testdata/bisect"
FEATURES_FILE = "features.parquet"
MANIFEST_FILE = "MANIFEST.json"
MODELS_DIR = "models"
MODEL_COUNT = 8

# The image fixture (`regenerate --kind images`): tensor caches and two timeline files.
IMAGES_OUT = "testdata/bisect-images"
NR_FRAMES_FILE = "frames.parquet"  # grey frames, no-reference models
FR_FRAMES_FILE = "pairs.parquet"  # RGB reference/distorted pairs, full-reference models
NR_TIMELINE_FILE = "nr-timeline.toml"
FR_TIMELINE_FILE = "fr-timeline.toml"


def model_file(index: int) -> str:
    """Two-digit names keep plain sorting equal to timeline order up to 100 models."""
    return f"{MODELS_DIR}/model_{index:02d}.onnx"


class FixtureKind(StrEnum):
    """What `regenerate --kind` writes; `check` reads the kind from MANIFEST.json instead."""

    FEATURES = "features"
    IMAGES = "images"

    @property
    def default_out(self) -> str:
        return IMAGES_OUT if self is FixtureKind.IMAGES else DEFAULT_OUT


def image_model(name: str) -> str:
    return f"{MODELS_DIR}/{name}.onnx"


def is_hand_written(relative: str) -> bool:
    """Top-level Markdown files are prose people maintain: kept on regenerate, never compared."""
    path = PurePosixPath(relative)
    return len(path.parts) == 1 and path.suffix.lower() == ".md"
