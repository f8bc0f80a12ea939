"""The rounds table of docs/performance.md is what the search does, for every boundary.

A round is one ``probe`` call: on k Ray workers (or k threads) it costs one evaluation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from model_bisect.report import Status
from model_bisect.search import bisect
from tests.conftest import REPO_ROOT

_ROW = re.compile(r"^\| (\d+) \| (\d+) \| (\d+) \| (\d+) \|", re.MULTILINE)


def _worst_rounds(n: int, jobs: int) -> tuple[int, int]:
    """The most rounds and evaluations the search needs over every first-bad index
    (``n``: none bad), brute force."""
    worst_rounds = worst_evaluations = 0
    for first_bad in range(n + 1):
        sizes: list[int] = []

        def probe(
            indices: Sequence[int], first_bad: int = first_bad, sizes: list[int] = sizes
        ) -> dict[int, Status]:
            sizes.append(len(indices))
            return {i: Status.BAD if i >= first_bad else Status.GOOD for i in indices}

        result = bisect(n, probe, jobs=jobs)
        assert result.first_bad == (first_bad if first_bad < n else None)
        worst_rounds = max(worst_rounds, len(sizes))
        worst_evaluations = max(worst_evaluations, sum(sizes))
    return worst_rounds, worst_evaluations


def test_the_documented_rounds_are_the_searchs_worst_case() -> None:
    text = (REPO_ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    rows = [tuple(int(v) for v in row) for row in _ROW.findall(text)]
    assert len(rows) >= 4, "the rounds table of docs/performance.md is missing"
    for n, jobs, rounds, evaluations in rows:
        assert _worst_rounds(n, jobs) == (rounds, evaluations), (n, jobs)


def test_rounds_stay_within_one_of_the_k_ary_ideal() -> None:
    # k probes a round cut the range into k + 1 parts; the tail's round cuts it into k.
    for n in (2, 7, 100, 512):
        for jobs in (1, 2, 3, 7, 31):
            rounds, _ = _worst_rounds(n, jobs)
            ideal = math.ceil(math.log(n) / math.log(jobs + 1))
            assert ideal <= rounds <= ideal + 1, (n, jobs, rounds)
