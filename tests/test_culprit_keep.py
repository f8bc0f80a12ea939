"""The boundary models' predictions kept through a bisect: in memory when short, on disk
from SPILL_MIN_ROWS rows, and the same values either way."""

from __future__ import annotations

import gc
import weakref

import numpy as np

from model_bisect.culprit.keep import SPILL_MIN_ROWS, Boundary
from model_bisect.report import Status


def _predictions(rows: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(3.0, 1.0, rows).astype(np.float32)


def test_long_predictions_wait_on_disk_and_come_back_unchanged() -> None:
    boundary = Boundary()
    good, bad = _predictions(SPILL_MIN_ROWS, 1), _predictions(SPILL_MIN_ROWS, 2)
    expected_good, expected_bad = good.copy(), bad.copy()
    alive = [weakref.ref(good), weakref.ref(bad)]
    boundary.offer("good", good)
    boundary.judged(3, "good", Status.GOOD)
    boundary.offer("bad", bad)
    boundary.judged(4, "bad", Status.BAD)
    del good, bad
    gc.collect()
    assert [ref() for ref in alive] == [None, None]  # nothing holds them in memory
    back_good, back_bad = boundary.get(3), boundary.get(4)
    assert back_good is not None
    assert back_bad is not None
    assert back_good.dtype == np.float32
    assert np.array_equal(back_good, expected_good)
    assert np.array_equal(back_bad, expected_bad)
    assert boundary.get(5) is None


def test_short_predictions_stay_in_memory_as_given() -> None:
    boundary = Boundary()
    good = _predictions(1000, 3)
    boundary.offer("good", good)
    boundary.judged(1, "good", Status.GOOD)
    assert boundary.get(1) is good


def test_a_later_good_model_replaces_the_spilled_one() -> None:
    boundary = Boundary()
    first, second = _predictions(SPILL_MIN_ROWS, 4), _predictions(SPILL_MIN_ROWS, 5)
    boundary.offer("a", first)
    boundary.judged(1, "a", Status.GOOD)
    boundary.offer("b", second)
    boundary.judged(2, "b", Status.GOOD)
    assert boundary.get(1) is None
    back = boundary.get(2)
    assert back is not None
    assert np.array_equal(back, second)
