"""drop_p_value's promises the mutation session's second pass found unpinned: its defaults,
its smallest inputs, more resamples than one chunk holds, and the m-out-of-n rescaling above
a catalogue row cap. The reference is the RMSE paired bootstrap as a plain loop over the rows
each resample draws (numpy only), never model_bisect's vectorised counts.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from model_bisect.catalogue import CATALOGUE, metric_spec
from model_bisect.significance import drop_p_value


def _rmse(pred: np.ndarray, target: np.ndarray) -> float:
    return math.sqrt(float(np.mean((pred - target) ** 2)))


def loop_p(
    t: np.ndarray, a: np.ndarray, b: np.ndarray, resamples: int, seed: int, cap: int
) -> float:
    """RMSE's paired bootstrap: above ``cap`` rows a seeded subsample of ``cap`` rows, whose
    resampled drops are shrunk by sqrt(cap / n) around the drop on all rows."""
    n = t.size
    rng = np.random.default_rng(seed)
    full = _rmse(b, t) - _rmse(a, t)
    if n > cap:
        rows = np.sort(rng.choice(n, size=cap, replace=False))
        t, a, b = t[rows], a[rows], b[rows]
    m = t.size
    sub = _rmse(b, t) - _rmse(a, t)
    not_worse = 0
    for _ in range(resamples):
        drawn = rng.integers(0, m, size=m)
        drop = _rmse(b[drawn], t[drawn]) - _rmse(a[drawn], t[drawn])
        if m < n:
            drop = full + (drop - sub) * math.sqrt(m / n)
        not_worse += not drop > 0.0
    return (1 + not_worse) / (resamples + 1)


def models(n: int, seed: int, extra: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = rng.uniform(1.0, 5.0, n)
    anchor = target + rng.normal(0.0, 0.6, n)
    return target, anchor, target + rng.normal(0.0, 0.6 + extra, n)


RMSE_CAP = metric_spec("rmse").boot_rows or 0


def test_the_default_bootstrap_is_1000_resamples_from_seed_0() -> None:
    target, anchor, model = models(40, 1, 0.05)
    expected = loop_p(target, anchor, model, 1000, 0, RMSE_CAP)
    assert 0.05 < expected < 0.95  # neither side saturated: the resamples matter
    assert drop_p_value("rmse", target, anchor, model) == expected


def test_one_resample_is_enough_and_none_is_refused_in_those_words() -> None:
    target, anchor, model = models(30, 2, 0.3)
    assert drop_p_value("rmse", target, anchor, model, resamples=1, seed=3) == loop_p(
        target, anchor, model, 1, 3, RMSE_CAP
    )
    with pytest.raises(ValueError, match=r"^resamples must be at least 1, got 0$"):
        drop_p_value("rmse", target, anchor, model, resamples=0)


def test_three_rows_already_have_a_bootstrap_p_value() -> None:
    target = np.array([1.0, 2.0, 3.0])
    anchor = target + np.array([0.1, -0.2, 0.1])
    model = target + np.array([0.5, -0.4, 0.3])
    expected = loop_p(target, anchor, model, 200, 4, RMSE_CAP)
    assert drop_p_value("rmse", target, anchor, model, resamples=200, seed=4) == expected


def test_resamples_beyond_one_chunk_are_each_drawn_once() -> None:
    # 1200 rows x 1500 resamples is more than the million cells drawn at a time.
    target, anchor, model = models(1200, 5, 0.01)
    expected = loop_p(target, anchor, model, 1500, 6, RMSE_CAP)
    assert drop_p_value("rmse", target, anchor, model, resamples=1500, seed=6) == expected


@pytest.mark.parametrize(("seed", "extra"), [(7, 0.05), (9, -0.05)])
def test_above_the_row_cap_drops_are_rescaled_around_the_drop_on_all_rows(
    monkeypatch: pytest.MonkeyPatch, seed: int, extra: float
) -> None:
    capped = dataclasses.replace(metric_spec("rmse"), boot_rows=50)
    specs = tuple(capped if s.name == "rmse" else s for s in CATALOGUE.specs)
    monkeypatch.setattr(CATALOGUE, "specs", specs)
    target, anchor, model = models(200, seed, extra)
    expected = loop_p(target, anchor, model, 300, seed, 50)
    assert 0.02 < expected < 0.98
    assert drop_p_value("rmse", target, anchor, model, resamples=300, seed=seed) == expected
