"""Every metric the tool knows, described once.

Gates, the metric values and their intervals, significance tests, the report record, both
renderers, the config keys and the CLI's gate flags read their metric list and everything that
varies with a metric from here, so adding a metric means one entry below. Standard library
only: the CLI imports this module while building ``--help``; a metric's formula runs on a
``Sample`` that metrics.py provides.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from .errors import UnknownMetricError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "CATALOGUE",
    "Catalogue",
    "Direction",
    "DropTest",
    "GateKind",
    "Interval",
    "MappingName",
    "MetricSpec",
    "Sample",
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
    NONE = "none"  # no interval: both bounds are NaN


class DropTest(StrEnum):
    """How significance.py tests a drop against the anchor on the same rows.

    The bootstrap ones are paired (each resample draws the same rows for both models) and
    differ in how a resample's metric is computed, which is specific to the statistic.
    """

    WILLIAMS = "williams"  # Williams' T2 for two correlations sharing the target
    SPEARMAN_BOOTSTRAP = "spearman_bootstrap"  # mid-ranks inside each resample
    KENDALL_BOOTSTRAP = "kendall_bootstrap"  # exact tau-b as quadratic forms in row counts
    RMSE_BOOTSTRAP = "rmse_bootstrap"  # root of the resampled mean squared error
    NONE = "none"  # no test: the p-value is NaN, so a drop past its gate fails

    @property
    def bootstrap(self) -> bool:
        return self in (
            DropTest.SPEARMAN_BOOTSTRAP,
            DropTest.KENDALL_BOOTSTRAP,
            DropTest.RMSE_BOOTSTRAP,
        )


class Sample(Protocol):
    """One model's predictions against the target, as a metric's formula reads them.

    metrics.py implements it; the statistics several metrics share (the squared errors, the
    one sort behind both rank correlations) are computed at most once per sample. ``mapped``
    exists only for metrics that are not rank-based.
    """

    @property
    def n(self) -> int: ...

    @property
    def predictions(self) -> np.ndarray: ...

    @property
    def mapped(self) -> np.ndarray: ...

    @property
    def target(self) -> np.ndarray: ...

    def pearson(self) -> float:
        """Pearson's r of the mapped predictions and the target."""
        ...

    def squared_errors(self) -> tuple[float, float]:
        """Mean and variance of the mapped predictions' squared errors."""
        ...

    def rank_correlations(self) -> tuple[float, float]:
        """Spearman's rho and Kendall's tau-b of the raw predictions."""
        ...


@dataclass(frozen=True)
class MetricSpec:
    """One metric: what it is called, which way is better, how it is computed, tested, shown
    and gated.

    ``rank_based`` metrics are computed on the raw predictions (a monotonic mapping cannot
    change them, and they cost a sort, so the engine may finish them later); the others on
    the predictions after the fitted mapping. ``value`` computes the metric from a
    ``Sample``. ``fisher`` is the Fisher-z variance as (scale, offset), i.e.
    scale / (n - offset), for metrics whose interval is ``FISHER_Z``. ``boot_rows`` caps the
    rows a bootstrap ``drop_test`` resamples (see significance.py). ``threshold_range``
    bounds the value a ``--min-``/``--max-`` flag accepts.
    """

    name: str
    label: str
    direction: Direction
    rank_based: bool
    value: Callable[[Sample], float]
    interval: Interval
    drop_test: DropTest
    threshold_range: tuple[float, float]
    threshold_hint: str
    fisher: tuple[float, int] | None = None
    boot_rows: int | None = None
    digits: int = 4

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"a metric name is a lower-case identifier, not {self.name!r}")
        if (self.interval is Interval.FISHER_Z) != (self.fisher is not None):
            raise ValueError(f"{self.name}: a Fisher-z interval and its variance go together")
        if self.drop_test.bootstrap != (self.boot_rows is not None):
            raise ValueError(f"{self.name}: a bootstrap test and its row cap go together")
        if self.boot_rows is not None and self.boot_rows < 3:
            raise ValueError(f"{self.name}: boot_rows must be at least 3")

    @property
    def mapped(self) -> bool:
        """Computed on the predictions after the fitted mapping."""
        return not self.rank_based

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


class Catalogue:
    """The metrics, in the order tables show them.

    There is one instance, ``CATALOGUE``, and every module reads it when it runs rather than
    copying it when imported, so its entries are the one list. ``specs`` is an immutable
    tuple, only ever replaced whole (a test extends a copy that way); it is the one mutable
    attribute, which is why this is not a frozen dataclass.
    """

    __slots__ = ("specs",)

    def __init__(self, specs: Iterable[MetricSpec]) -> None:
        self.specs = tuple(specs)
        names = [spec.name for spec in self.specs]
        if len(set(names)) != len(names):
            raise ValueError(f"metric names repeat: {', '.join(names)}")

    def __iter__(self) -> Iterator[MetricSpec]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)

    def __contains__(self, name: object) -> bool:
        return any(spec.name == name for spec in self.specs)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.specs)

    def spec(self, name: str) -> MetricSpec:
        """The entry of ``name``; UnknownMetricError (never another metric) otherwise."""
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise UnknownMetricError(name, self.names)


def _plcc(sample: Sample) -> float:
    return sample.pearson()


def _srocc(sample: Sample) -> float:
    return sample.rank_correlations()[0]


def _krocc(sample: Sample) -> float:
    return sample.rank_correlations()[1]


def _rmse(sample: Sample) -> float:
    return math.sqrt(sample.squared_errors()[0])


_CORRELATION_RANGE = (-1.0, 1.0)
_CORRELATION_HINT = "a correlation threshold lies between -1 and 1, e.g. 0.85"

# Fisher-z variances: 1/(n-3) for Pearson; for Spearman and Kendall the approximations of
# Fieller, Hartley & Pearson (1957, Biometrika 44:470), 1.06/(n-3) and 0.437/(n-4).
# Bootstrap row caps: SROCC and RMSE resamples cost O(rows) each, KROCC's exact resampled
# tau O(rows^2) each, hence its smaller cap.
CATALOGUE = Catalogue(
    (
        MetricSpec(
            name="plcc",
            label="PLCC",
            direction=Direction.HIGHER_IS_BETTER,
            rank_based=False,
            value=_plcc,
            interval=Interval.FISHER_Z,
            drop_test=DropTest.WILLIAMS,
            threshold_range=_CORRELATION_RANGE,
            threshold_hint=_CORRELATION_HINT,
            fisher=(1.0, 3),
        ),
        MetricSpec(
            name="srocc",
            label="SROCC",
            direction=Direction.HIGHER_IS_BETTER,
            rank_based=True,
            value=_srocc,
            interval=Interval.FISHER_Z,
            drop_test=DropTest.SPEARMAN_BOOTSTRAP,
            threshold_range=_CORRELATION_RANGE,
            threshold_hint=_CORRELATION_HINT,
            fisher=(1.06, 3),
            boot_rows=5_000,
        ),
        MetricSpec(
            name="krocc",
            label="KROCC",
            direction=Direction.HIGHER_IS_BETTER,
            rank_based=True,
            value=_krocc,
            interval=Interval.FISHER_Z,
            drop_test=DropTest.KENDALL_BOOTSTRAP,
            threshold_range=_CORRELATION_RANGE,
            threshold_hint=_CORRELATION_HINT,
            fisher=(0.437, 4),
            boot_rows=1_000,
        ),
        MetricSpec(
            name="rmse",
            label="RMSE",
            direction=Direction.LOWER_IS_BETTER,
            rank_based=False,
            value=_rmse,
            interval=Interval.MSE_NORMAL,
            drop_test=DropTest.RMSE_BOOTSTRAP,
            threshold_range=(0.0, math.inf),
            threshold_hint="an RMSE threshold is a number >= 0 on the target's scale",
            boot_rows=10_000,
        ),
    )
)


def metric_spec(name: str) -> MetricSpec:
    """The catalogue entry of ``name``; UnknownMetricError for a metric the tool does not know."""
    return CATALOGUE.spec(name)


def gate_flags_text() -> str:
    """Every gate flag, for messages that say which ones exist."""
    return ", ".join([*(spec.flag for spec in CATALOGUE), "--max-drop METRIC=DELTA"])
