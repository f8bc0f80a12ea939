"""A probe over fixed outcomes, for the search's tests: what it answers and what it was asked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from model_bisect.report import Status

G, B, S = Status.GOOD, Status.BAD, Status.SKIP


class Timeline:
    """A probe over fixed outcomes that records every call it receives."""

    def __init__(self, outcomes: Sequence[Status]) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[int, ...]] = []

    def __call__(self, indices: Sequence[int]) -> Mapping[int, Status]:
        self.calls.append(tuple(indices))
        return {i: self.outcomes[i] for i in indices}

    @property
    def probed(self) -> list[int]:
        return [i for call in self.calls for i in call]
