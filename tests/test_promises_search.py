"""The search's promises the mutation session's second pass found unpinned: where a cut moves
when its exact point is known, what the first round asks when outcomes are already known,
scan's defaults and smallest timeline, and the words of the messages at their edges.
Every expectation is worked out by hand in the comments, not read from model_bisect.
"""

from __future__ import annotations

import pytest

from model_bisect.report import VerdictKind
from model_bisect.search import SearchResult, bisect, linear_verdict, scan, verdict_message
from tests.searchkit import B, G, S, Timeline


def _bad_tail(n: int) -> Timeline:
    return Timeline([G] * (n - 1) + [B])


def test_a_known_cut_point_moves_to_the_nearer_free_index_below() -> None:
    # 11 models, the tail bad: the cut of (-1, 10) is -1 + 11 // 2 = 4, known skipped; the
    # free indices are 3 and 6..9, and 3 is one away where 6 is two.
    probe = _bad_tail(11)
    bisect(11, probe, known={i: S for i in (0, 1, 2, 4, 5)})
    assert probe.calls[:2] == [(10,), (3,)]


def test_a_known_cut_point_between_two_equally_near_free_indices_moves_up() -> None:
    # The cut 4 is known skipped; 3 and 5 are both one away: the later one is asked.
    probe = _bad_tail(11)
    bisect(11, probe, known={4: S})
    assert probe.calls[:2] == [(10,), (5,)]


def test_a_known_cut_point_moves_down_past_several_free_indices() -> None:
    # The cut 4 and 5, 6 known skipped: 3 (one away) beats 7 (three away), with 0..2 free too.
    probe = _bad_tail(11)
    bisect(11, probe, known={4: S, 5: S, 6: S})
    assert probe.calls[:2] == [(10,), (3,)]


def test_a_known_passing_tail_is_no_regression_without_a_probe() -> None:
    probe = _bad_tail(6)
    result = bisect(6, probe, known={5: G})
    assert probe.calls == []
    assert result.kind is VerdictKind.NO_REGRESSION


def test_the_tail_comes_first_even_when_the_model_before_it_is_known() -> None:
    probe = _bad_tail(8)
    bisect(8, probe, known={6: S})
    assert probe.calls[0] == (7,)


def test_the_first_round_never_cuts_below_the_last_known_good() -> None:
    # Everything between the known good 3 and the tail is known skipped: nothing is left to
    # cut, so the first round is the tail alone, not an index below 3.
    probe = _bad_tail(10)
    bisect(10, probe, jobs=2, known={3: G, **{i: S for i in range(4, 9)}})
    assert probe.calls[0] == (9,)


def test_the_first_round_asks_the_tail_once_and_nothing_past_it() -> None:
    probe = _bad_tail(6)
    bisect(6, probe, jobs=2, known={i: S for i in range(5)})
    assert probe.calls[0] == (5,)


def test_scan_asks_one_index_at_a_time_by_default() -> None:
    probe = Timeline([G, G, B, B])
    scan(4, probe)
    assert probe.calls == [(0,), (1,), (2,), (3,)]


def test_scan_takes_a_two_model_timeline() -> None:
    result = scan(2, Timeline([G, B]))
    assert (result.kind, result.first_bad, result.last_good) == (VerdictKind.REGRESSION, 1, 0)


def test_scan_refuses_zero_jobs_and_linear_verdict_one_model_in_those_words() -> None:
    with pytest.raises(ValueError, match=r"^jobs must be at least 1, got 0$"):
        scan(3, Timeline([G, G, B]), jobs=0)
    with pytest.raises(ValueError, match=r"^a timeline needs at least two models, got 1$"):
        linear_verdict([G])


def test_scan_names_the_candidates_that_skips_hide() -> None:
    # good, skip, skip, bad: the first bad is one of 1, 2, 3.
    result = scan(4, Timeline([G, S, S, B]))
    assert result.kind is VerdictKind.INCONCLUSIVE
    assert result.candidates == (1, 2, 3)


@pytest.mark.parametrize(("count", "tail"), [(6, ""), (7, " and 1 more"), (8, " and 2 more")])
def test_an_inconclusive_message_lists_six_candidates_and_counts_the_rest(
    count: int, tail: str
) -> None:
    candidates = tuple(range(1, count + 1))
    outcomes = {0: G, **{i: S for i in candidates[:-1]}, candidates[-1]: B}
    result = SearchResult(VerdictKind.INCONCLUSIVE, None, 0, candidates, outcomes)
    shown = ", ".join(f"#{i}" for i in candidates[:6])
    assert verdict_message(result, []) == (
        f"skipped models hide the first bad one, which is one of {shown}{tail}; last good #0"
    )


def test_no_regression_without_a_last_good_says_every_model_passes() -> None:
    result = SearchResult(VerdictKind.NO_REGRESSION, None, None, (), {})
    assert verdict_message(result, []) == "every model passes the gates"
