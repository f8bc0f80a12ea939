"""The feature cache: which columns a model reads, and loading them once with pyarrow."""

from __future__ import annotations

__all__ = ["CANONICAL_FEATURES", "TARGET_COLUMN"]

# The canonical VMAF feature set, in the order a model without a sidecar JSON expects.
CANONICAL_FEATURES: tuple[str, ...] = (
    "adm2",
    "vif_scale0",
    "vif_scale1",
    "vif_scale2",
    "vif_scale3",
    "motion2",
)
TARGET_COLUMN = "mos"
