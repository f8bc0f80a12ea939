"""The bisect over an abstract probe: which index of a timeline is the first bad one.

Nothing here knows about models or files. A probe evaluates some indices and answers
good, bad or skip for each, like ``git bisect good|bad|skip``; the search assumes the
timeline reads good...good bad...bad with skips anywhere. ``linear_verdict`` defines the
verdict from a full list of outcomes, and ``bisect`` reaches the same verdict for every
monotone timeline while probing about log2(n) indices.
"""

from __future__ import annotations

import bisect as _sorted
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .report import Status, VerdictKind

__all__ = [
    "Probe",
    "SearchResult",
    "bisect",
    "linear_verdict",
    "monotone_violations",
    "scan",
    "verdict_message",
]

Probe = Callable[[Sequence[int]], Mapping[int, Status]]

# An inconclusive message lists this many candidates and counts the rest, so a long run of
# skipped models cannot make the verdict line unreadable.
_LISTED_CANDIDATES = 6


@dataclass(frozen=True)
class SearchResult:
    """Where the timeline turns bad, and the evidence: every probed index with its status."""

    kind: VerdictKind
    first_bad: int | None
    last_good: int | None
    candidates: tuple[int, ...]
    outcomes: Mapping[int, Status]
    violations: tuple[int, ...] = ()


def _classify(n: int, outcomes: Mapping[int, Status], lo: int, hi: int) -> SearchResult:
    """The verdict once nothing unprobed is left strictly between ``lo`` (the highest known
    good, -1 for none) and ``hi`` (the lowest known bad, ``n`` for none)."""
    ordered = dict(sorted(outcomes.items()))
    last_good = lo if lo >= 0 else None
    if all(s is Status.SKIP for s in ordered.values()):
        # Nothing was testable: naming candidates would suggest evidence that does not exist.
        return SearchResult(VerdictKind.INCONCLUSIVE, None, None, (), ordered)
    if hi == 0:
        return SearchResult(VerdictKind.HEAD_BAD, 0, None, (0,), ordered)
    if hi == lo + 1 and hi < n:
        return SearchResult(VerdictKind.REGRESSION, hi, lo, (hi,), ordered)
    if hi == n and lo == n - 1:
        return SearchResult(VerdictKind.NO_REGRESSION, None, last_good, (), ordered)
    candidates = tuple(range(lo + 1, min(hi, n - 1) + 1))
    return SearchResult(VerdictKind.INCONCLUSIVE, None, last_good, candidates, ordered)


def _bounds(n: int, outcomes: Mapping[int, Status]) -> tuple[int, int]:
    """``hi`` is the lowest bad index; ``lo`` the highest good one below it, so a good model
    after a bad one (a broken timeline) cannot move the search past the bad one."""
    hi = min((i for i, s in outcomes.items() if s is Status.BAD), default=n)
    lo = max((i for i, s in outcomes.items() if s is Status.GOOD and i < hi), default=-1)
    return lo, hi


def linear_verdict(outcomes: Sequence[Status]) -> SearchResult:
    """The brute-force oracle: the verdict defined by every model's outcome, oldest first.

    R is the first bad index (n when none) and L the last good index before it (-1 when
    none); the rules are those of ``bisect``, so both agree on every monotone timeline.
    """
    n = len(outcomes)
    if n < 2:
        raise ValueError(f"a timeline needs at least two models, got {n}")
    full = {i: Status(s) for i, s in enumerate(outcomes)}
    lo, hi = _bounds(n, full)
    return _classify(n, full, lo, hi)


def monotone_violations(outcomes: Mapping[int, Status]) -> tuple[int, ...]:
    """Good indices that follow a bad one: the places where good-then-bad does not hold."""
    first_bad = min((i for i, s in outcomes.items() if s is Status.BAD), default=None)
    if first_bad is None:
        return ()
    return tuple(sorted(i for i, s in outcomes.items() if s is Status.GOOD and i > first_bad))


def _ask(probe: Probe, indices: Sequence[int], outcomes: dict[int, Status]) -> None:
    """Run one round and record its answers; a probe that leaves an index out is a bug."""
    answers = probe(tuple(indices))
    for i in indices:
        if i not in answers:
            raise ValueError(f"the probe returned no status for index {i}")
        outcomes[i] = Status(answers[i])


def _round(lo: int, hi: int, unprobed: Sequence[int], jobs: int) -> list[int]:
    """Up to ``jobs`` indices cutting (lo, hi) into ``jobs + 1`` near-equal parts, each moved
    to the nearest unprobed index when the exact cut point was already probed (skipped)."""
    if len(unprobed) <= jobs:
        return list(unprobed)
    width = hi - lo
    chosen: list[int] = []
    free = list(unprobed)  # sorted; chosen indices leave it so no round probes one twice
    for j in range(1, jobs + 1):
        # floor(j * width / (jobs + 1)) keeps every part at most ceil(width / (jobs + 1))
        # wide, which is what bounds the number of rounds.
        target = lo + (j * width) // (jobs + 1)
        pos = _sorted.bisect_left(free, target)
        below = free[pos - 1] if pos > 0 else None
        above = free[pos] if pos < len(free) else None
        if above is not None and (below is None or above - target <= target - below):
            pick = pos
        else:
            pick = pos - 1
        chosen.append(free.pop(pick))
    return sorted(chosen)


def bisect(
    n: int, probe: Probe, *, jobs: int = 1, known: Mapping[int, Status] | None = None
) -> SearchResult:
    """Find the first bad index: the tail first, since a passing tail ends the search (the
    common nightly answer), then ``jobs`` indices a round between the last good and the first
    bad. ``known`` holds outcomes measured before the search (the --max-drop anchor).

    Without skips, ``jobs=1`` probes at most ceil(log2(n)) + 1 indices; larger ``jobs``
    gives the same verdict in fewer rounds (each round is one ``probe`` call). A bad head
    is found where the halving ends, so the head is never probed for its own sake.
    """
    if n < 2:
        raise ValueError(f"a timeline needs at least two models, got {n}")
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    outcomes: dict[int, Status] = dict(known or {})
    lo, hi = _bounds(n, outcomes)
    if hi == n and n - 1 not in outcomes:
        # The tail with jobs - 1 cuts of the rest: more probes would be wasted if it passes.
        rest = [i for i in range(lo + 1, n - 1) if i not in outcomes]
        _ask(probe, [*_round(lo, n - 1, rest, jobs - 1), n - 1], outcomes)
    while True:
        lo, hi = _bounds(n, outcomes)
        unprobed = [i for i in range(lo + 1, hi) if i not in outcomes]
        if not unprobed:
            return _classify(n, outcomes, lo, hi)
        _ask(probe, _round(lo, hi, unprobed, jobs), outcomes)


def scan(n: int, probe: Probe, *, jobs: int = 1) -> SearchResult:
    """Probe every index, ``jobs`` at a time, and name the good ones that follow a bad one."""
    if n < 2:
        raise ValueError(f"a timeline needs at least two models, got {n}")
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    outcomes: dict[int, Status] = {}
    for start in range(0, n, jobs):
        _ask(probe, range(start, min(start + jobs, n)), outcomes)
    result = linear_verdict([outcomes[i] for i in range(n)])
    return SearchResult(
        result.kind,
        result.first_bad,
        result.last_good,
        result.candidates,
        result.outcomes,
        monotone_violations(outcomes),
    )


def _name(index: int, labels: Sequence[str]) -> str:
    if 0 <= index < len(labels) and labels[index]:
        return f"#{index} ({labels[index]})"
    return f"#{index}"


def _names(indices: Sequence[int], labels: Sequence[str]) -> str:
    shown = ", ".join(_name(i, labels) for i in indices[:_LISTED_CANDIDATES])
    rest = len(indices) - _LISTED_CANDIDATES
    return shown if rest <= 0 else f"{shown} and {rest} more"


def verdict_message(result: SearchResult, labels: Sequence[str]) -> str:
    """One sentence for people: which model first broke, or why that cannot be said."""
    kind = result.kind
    if kind is VerdictKind.REGRESSION and result.first_bad is not None:
        text = f"first bad model is {_name(result.first_bad, labels)}"
        if result.last_good is not None:
            text += f"; last good {_name(result.last_good, labels)}"
        return text
    if kind is VerdictKind.HEAD_BAD:
        return f"the first model {_name(0, labels)} already fails the gates"
    skipped = [i for i, s in sorted(result.outcomes.items()) if s is Status.SKIP]
    if kind is VerdictKind.NO_REGRESSION:
        # Renderers put the verdict kind in front, so the sentence does not repeat it.
        text = (
            "every model passes the gates"
            if result.last_good is None
            else f"the last model {_name(result.last_good, labels)} passes the gates"
        )
        if skipped:
            text += f"; {_names(skipped, labels)} could not be tested"
        return text
    if not result.candidates and result.last_good is None:
        return f"no model could be evaluated: all {len(skipped)} were skipped"
    after = (
        "no model before them passed"
        if result.last_good is None
        else f"last good {_name(result.last_good, labels)}"
    )
    candidates = result.candidates
    if candidates and result.outcomes.get(candidates[-1]) is Status.BAD:
        return (
            f"skipped models hide the first bad one, which is one of "
            f"{_names(candidates, labels)}; {after}"
        )
    return f"no tested model failed, but {_names(candidates, labels)} could not be tested; {after}"
