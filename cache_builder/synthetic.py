"""Seeded synthetic features, target and good weights: the committed fixture's recipe.

Features follow one latent quality per row, so they are correlated the way VMAF's
elementary features are; the target is a linear function of them plus small noise, so a
good linear model scores a PLCC just below 1.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from model_bisect.evaluation.features import CANONICAL_FEATURES, TARGET_COLUMN

from .fixture import (
    TIMELINE_SEED,
    Fixture,
    FixtureData,
    LinearWeights,
    Origin,
    OriginKind,
    perturb,
)
from .layout import MODEL_COUNT

__all__ = ["DEFAULT_ROWS", "DEFAULT_SEEDS", "build_synthetic"]

DEFAULT_ROWS = 256
DEFAULT_SEEDS: Mapping[str, int] = {
    "features": 20_241_101,
    "good_weights": 20_241_102,
    "target_noise": 20_241_103,
    "timeline": TIMELINE_SEED,
}

# Per feature: (value at the worst quality, span up to the best, per-row jitter, weight).
# Ranges follow VMAF's elementary features (adm2 and vif near 1 for pristine video, vif
# falling faster at fine scales); the weights put `mos` on the 1..5 ACR scale.
_SHAPE: Mapping[str, tuple[float, float, float, float]] = {
    "adm2": (0.70, 0.29, 0.010, 5.0),
    "vif_scale0": (0.25, 0.60, 0.030, 1.0),
    "vif_scale1": (0.45, 0.50, 0.025, 1.0),
    "vif_scale2": (0.55, 0.42, 0.020, 1.0),
    "vif_scale3": (0.60, 0.38, 0.020, 1.0),
    "motion2": (0.0, 0.0, 0.0, 0.02),
}
_MOTION_MAX = 24.0
_MOS_FLOOR = 1.0
# Noise sd relative to the signal's (about 1.0 MOS): PLCC about 1/sqrt(1 + 0.1**2) = 0.995.
_NOISE_SD = 0.1


def build_synthetic(
    seeds: Mapping[str, int] = DEFAULT_SEEDS, rows: int = DEFAULT_ROWS, models: int = MODEL_COUNT
) -> Fixture:
    """The fixture from seeds alone; same seeds and numpy give the same float32 values."""
    rng = np.random.default_rng(seeds["features"])
    quality = rng.uniform(0.0, 1.0, rows)
    columns: dict[str, np.ndarray] = {}
    for name in CANONICAL_FEATURES:
        low, span, jitter, _ = _SHAPE[name]
        if name == "motion2":
            # Temporal activity is content-driven, not quality-driven: independent of quality.
            values = rng.uniform(0.0, _MOTION_MAX, rows)
        else:
            values = np.clip(low + span * quality + jitter * rng.standard_normal(rows), 0.0, 1.0)
        columns[name] = values.astype(np.float32)

    weight_rng = np.random.default_rng(seeds["good_weights"])
    nominal = np.array([_SHAPE[name][3] for name in CANONICAL_FEATURES])
    weights = (nominal * weight_rng.uniform(0.8, 1.2, nominal.shape[0])).astype(np.float32)
    lows = np.array([_SHAPE[name][0] for name in CANONICAL_FEATURES])
    bias = np.float32(_MOS_FLOOR - _sum_products(weights.astype(np.float64), lows))

    signal = _predict(columns, LinearWeights(weights, bias))
    noise = np.random.default_rng(seeds["target_noise"]).standard_normal(rows) * _NOISE_SD
    columns[TARGET_COLUMN] = (signal + noise).astype(np.float32)

    data = FixtureData(columns, LinearWeights(weights, bias))
    origin = Origin(OriginKind.SYNTHETIC, dict(seeds), rows, models)
    return Fixture(data, perturb(data.good, seeds["timeline"], models), origin)


def _sum_products(weights: np.ndarray, values: np.ndarray) -> float:
    """A dot product in fixed left-to-right order: BLAS may reorder sums per CPU."""
    total = 0.0
    for w, v in zip(weights.tolist(), values.tolist(), strict=True):
        total += w * v
    return total


def _predict(columns: Mapping[str, np.ndarray], good: LinearWeights) -> np.ndarray:
    total = np.full(columns[CANONICAL_FEATURES[0]].shape[0], float(good.bias))
    for name, weight in zip(CANONICAL_FEATURES, good.weights.tolist(), strict=True):
        total = total + weight * columns[name].astype(np.float64)
    return total
