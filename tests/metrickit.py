"""A metric the tool does not ship, for tests that add one to the catalogue in-process.

Mean absolute error is the trivial case: an error on the mapped predictions, lower is better,
with no interval and no significance test. Swapping the catalogue's ``specs`` is swapping
data; every module reads the one ``CATALOGUE`` when it runs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from model_bisect.catalogue import (
    CATALOGUE,
    Catalogue,
    Direction,
    DropTest,
    Interval,
    MetricSpec,
    Sample,
)

__all__ = ["MAE", "add_metric"]


def _mean_absolute_error(sample: Sample) -> float:
    if sample.n == 0:
        return math.nan
    return float(np.mean(np.abs(np.asarray(sample.mapped, dtype=np.float64) - sample.target)))


MAE = MetricSpec(
    name="mae",
    label="MAE",
    direction=Direction.LOWER_IS_BETTER,
    rank_based=False,
    value=_mean_absolute_error,
    interval=Interval.NONE,
    drop_test=DropTest.NONE,
    threshold_range=(0.0, math.inf),
    threshold_hint="an MAE threshold is a number >= 0 on the target's scale",
)


def add_metric(monkeypatch: pytest.MonkeyPatch, spec: MetricSpec = MAE) -> None:
    """``spec`` appended to the catalogue until the test ends."""
    monkeypatch.setattr(CATALOGUE, "specs", Catalogue((*CATALOGUE.specs, spec)).specs)
