"""Every metric the tool knows, described once.

Gates, significance tests, the report record, both renderers and the CLI's gate flags read
their metric list and each metric's direction from here, so adding a metric means one entry
below plus the code that computes its value. Standard library only: the CLI imports this
module while building ``--help``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "CATALOGUE",
    "METRIC_NAMES",
    "Direction",
    "DropTest",
    "GateKind",
    "Interval",
    "MappingName",
    "MetricSpec",
    "fixed",
    "gate_flags_text",
    "metric_spec",
]


class GateKind(StrEnum):
    """``min``: value >= threshold; ``max``: value <= threshold; ``max_drop``: how much worse
    than the first model, sign-adjusted so worse is positive, <= threshold."""

    MIN = "min"
    MAX = "max"
    MAX_DROP = "max_drop"


class MappingName(StrEnum):
    """The fitted P.1401 mappings applied to predictions before the mapped metrics."""

    NONE = "none"
    LINEAR = "linear"
    CUBIC = "cubic"
    LOGISTIC = "logistic"


class Direction(StrEnum):
    HIGHER_IS_BETTER = "higher"
    LOWER_IS_BETTER = "lower"


class Interval(StrEnum):
    """How the 95% interval is computed."""

    FISHER_Z = "fisher_z"  # correlation through Fisher's z, with a per-metric variance
    MSE_NORMAL = "mse_normal"  # normal interval of the mean squared error, square-rooted


class DropTest(StrEnum):
    """How significance.py tests a drop against the anchor on the same rows."""

    WILLIAMS = "williams"  # Williams' T2 for two correlations sharing the target
    PAIRED_BOOTSTRAP = "paired_bootstrap"


@dataclass(frozen=True)
class MetricSpec:
    """One metric: what it is called, which way is better, and how it is shown and gated.

    ``fisher`` is the Fisher-z variance as (scale, offset), i.e. scale / (n - offset), for
    metrics whose interval is ``FISHER_Z``. ``mapped`` metrics are computed on predictions
    after the fitted mapping; the others (rank-based) on the raw predictions.
    ``threshold_range`` bounds the value a ``--min-``/``--max-`` flag accepts.
    """

    name: str
    label: str
    direction: Direction
    interval: Interval
    drop_test: DropTest
    mapped: bool
    threshold_range: tuple[float, float]
    threshold_hint: str
    fisher: tuple[float, int] | None = None
    digits: int = 4

    @property
    def threshold_kind(self) -> GateKind:
        """A higher-is-better metric gets a floor, a lower-is-better one a ceiling."""
        if self.direction is Direction.HIGHER_IS_BETTER:
            return GateKind.MIN
        return GateKind.MAX

    @property
    def flag(self) -> str:
        return f"--{self.threshold_kind.value}-{self.name}"

    @property
    def dest(self) -> str:
        """The argparse attribute of ``flag``."""
        return f"{self.threshold_kind.value}_{self.name}"

    @property
    def worse_sign(self) -> float:
        """Multiplies a change (model minus anchor) into how much worse: positive is worse."""
        return 1.0 if self.direction is Direction.LOWER_IS_BETTER else -1.0

    def worse_by(self, change: float) -> float:
        """``change`` (model minus anchor) as how much worse the model is."""
        return self.worse_sign * change

    def show(self, value: float) -> str:
        """The value as tables print it; a metric that could not be computed is a dash."""
        return fixed(value, self.digits) if math.isfinite(value) else "—"


def fixed(value: float, decimals: int) -> str:
    """``value`` with ``decimals`` decimals, never as a negative zero (``-0.0000``): a sign
    on a number that prints as zero says something the number does not."""
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


_CORRELATION_RANGE = (-1.0, 1.0)
_CORRELATION_HINT = "a correlation threshold lies between -1 and 1, e.g. 0.85"

# Fisher-z variances: 1/(n-3) for Pearson; for Spearman and Kendall the approximations of
# Fieller, Hartley & Pearson (1957, Biometrika 44:470), 1.06/(n-3) and 0.437/(n-4).
CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec(
        name="plcc",
        label="PLCC",
        direction=Direction.HIGHER_IS_BETTER,
        interval=Interval.FISHER_Z,
        drop_test=DropTest.WILLIAMS,
        mapped=True,
        threshold_range=_CORRELATION_RANGE,
        threshold_hint=_CORRELATION_HINT,
        fisher=(1.0, 3),
    ),
    MetricSpec(
        name="srocc",
        label="SROCC",
        direction=Direction.HIGHER_IS_BETTER,
        interval=Interval.FISHER_Z,
        drop_test=DropTest.PAIRED_BOOTSTRAP,
        mapped=False,
        threshold_range=_CORRELATION_RANGE,
        threshold_hint=_CORRELATION_HINT,
        fisher=(1.06, 3),
    ),
    MetricSpec(
        name="krocc",
        label="KROCC",
        direction=Direction.HIGHER_IS_BETTER,
        interval=Interval.FISHER_Z,
        drop_test=DropTest.PAIRED_BOOTSTRAP,
        mapped=False,
        threshold_range=_CORRELATION_RANGE,
        threshold_hint=_CORRELATION_HINT,
        fisher=(0.437, 4),
    ),
    MetricSpec(
        name="rmse",
        label="RMSE",
        direction=Direction.LOWER_IS_BETTER,
        interval=Interval.MSE_NORMAL,
        drop_test=DropTest.PAIRED_BOOTSTRAP,
        mapped=True,
        threshold_range=(0.0, math.inf),
        threshold_hint="an RMSE threshold is a number >= 0 on the target's scale",
    ),
)

METRIC_NAMES: tuple[str, ...] = tuple(spec.name for spec in CATALOGUE)
_BY_NAME = {spec.name: spec for spec in CATALOGUE}


def metric_spec(name: str) -> MetricSpec:
    """The catalogue entry of ``name``; KeyError for a metric the tool does not know."""
    return _BY_NAME[name]


def gate_flags_text() -> str:
    """Every gate flag, for messages that say which ones exist."""
    return ", ".join([*(spec.flag for spec in CATALOGUE), "--max-drop METRIC=DELTA"])
