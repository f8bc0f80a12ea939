"""The pure search: bisect agrees with the brute-force oracle and stays within its budget."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_bisect.report import Status, VerdictKind
from model_bisect.search import (
    SearchResult,
    bisect,
    linear_verdict,
    monotone_violations,
    scan,
    verdict_message,
)
from tests.searchkit import B, G, S, Timeline


def monotone(n: int, first_bad: int, skips: set[int]) -> list[Status]:
    """good before first_bad, bad from it (first_bad == n: no bad), skips overriding."""
    return [S if i in skips else (G if i < first_bad else B) for i in range(n)]


def ceil_log2(n: int) -> int:
    return (n - 1).bit_length()


def rounds_needed(width: int, base: int) -> int:
    """Smallest r with base**r >= width: k-ary rounds to close a gap of `width`."""
    r, reach = 0, 1
    while reach < width:
        r, reach = r + 1, reach * base
    return r


def same_verdict(a: SearchResult, b: SearchResult) -> None:
    assert (a.kind, a.first_bad, a.last_good, a.candidates) == (
        b.kind,
        b.first_bad,
        b.last_good,
        b.candidates,
    )


@st.composite
def timelines(draw: st.DrawFn) -> tuple[int, int, set[int]]:
    n = draw(st.integers(2, 300))
    first_bad = draw(st.integers(0, n))  # n means no bad model
    density = draw(st.sampled_from([0.0, 0.0, 0.05, 0.3, 0.9, 1.0]))
    # A seeded generator rather than n drawn booleans keeps generation fast at n = 300;
    # near the boundary, where skips matter most, explicit picks add to them.
    rng = draw(st.randoms(use_true_random=False))
    skips = {i for i in range(n) if rng.random() < density}
    if density:
        near = st.integers(max(0, first_bad - 2), min(n - 1, first_bad + 1))
        skips |= draw(st.sets(near, max_size=3))
    return n, first_bad, skips


@settings(max_examples=300, deadline=None)
@given(timelines(), st.sampled_from([1, 2, 3]))
def test_bisect_matches_linear_oracle_on_monotone_timelines(
    case: tuple[int, int, set[int]], jobs: int
) -> None:
    n, first_bad, skips = case
    outcomes = monotone(n, first_bad, skips)
    probe = Timeline(outcomes)
    result = bisect(n, probe, jobs=jobs)
    same_verdict(result, linear_verdict(outcomes))
    assert len(probe.probed) == len(set(probe.probed)), "an index was probed twice"
    assert all(len(call) <= max(2, jobs) for call in probe.calls)
    assert dict(result.outcomes) == {i: outcomes[i] for i in probe.probed}
    if not skips:
        assert len(probe.calls) <= 1 + rounds_needed(n, jobs + 1)
        if jobs == 1:
            assert len(probe.probed) <= ceil_log2(n) + 1


@settings(max_examples=150, deadline=None)
@given(timelines())
def test_more_jobs_give_the_verdict_of_one_job_in_no_more_rounds(
    case: tuple[int, int, set[int]],
) -> None:
    n, first_bad, skips = case
    outcomes = monotone(n, first_bad, skips)
    one = Timeline(outcomes)
    reference = bisect(n, one, jobs=1)
    for jobs in (2, 3):
        probe = Timeline(outcomes)
        same_verdict(bisect(n, probe, jobs=jobs), reference)
        if not skips:
            assert len(probe.calls) <= len(one.calls)


def test_first_round_probes_the_tail_alone() -> None:
    probe = Timeline(monotone(10, 6, set()))
    bisect(10, probe)
    assert probe.calls[0] == (9,)


def test_bad_head_is_found_where_the_halving_ends() -> None:
    probe = Timeline([B] * 5)
    result = bisect(5, probe)
    assert result.kind is VerdictKind.HEAD_BAD
    assert (result.first_bad, result.last_good, result.candidates) == (0, None, (0,))
    assert probe.calls[0] == (4,)
    assert probe.calls[-1] == (0,)
    assert len(probe.calls) <= ceil_log2(5) + 1


def test_tail_good_is_no_regression_after_one_probe() -> None:
    probe = Timeline([G] * 8)
    result = bisect(8, probe)
    assert result.kind is VerdictKind.NO_REGRESSION
    assert (result.first_bad, result.last_good, result.candidates) == (None, 7, ())
    assert probe.calls == [(7,)]


def test_passing_tail_ends_the_search_even_after_a_failing_head() -> None:
    # The bisect trusts the timeline to read good...bad; --scan is what checks that.
    probe = Timeline([B, B, G])
    assert bisect(3, probe).kind is VerdictKind.NO_REGRESSION
    assert probe.calls == [(2,)]
    assert linear_verdict([B, B, G]).kind is VerdictKind.HEAD_BAD


def test_known_outcomes_are_not_probed_again_and_count_in_the_verdict() -> None:
    probe = Timeline(monotone(8, 5, set()))
    result = bisect(8, probe, known={0: G})
    assert 0 not in probe.probed
    assert result.outcomes[0] is G
    assert (result.kind, result.first_bad, result.last_good) == (VerdictKind.REGRESSION, 5, 4)


def test_known_bad_head_is_head_bad_without_a_probe() -> None:
    probe = Timeline([B] * 6)
    result = bisect(6, probe, known={0: B})
    assert result.kind is VerdictKind.HEAD_BAD
    assert probe.calls == []


def test_regression_names_first_bad_and_last_good() -> None:
    result = bisect(8, Timeline(monotone(8, 5, set())))
    assert result.kind is VerdictKind.REGRESSION
    assert (result.first_bad, result.last_good, result.candidates) == (5, 4, (5,))


def test_skipped_model_next_to_the_boundary_is_inconclusive() -> None:
    result = bisect(8, Timeline(monotone(8, 5, {4})))
    assert result.kind is VerdictKind.INCONCLUSIVE
    assert result.first_bad is None
    assert result.last_good == 3
    assert result.candidates == (4, 5)


def test_skipped_first_bad_model_is_inconclusive_with_the_next_bad_one() -> None:
    result = bisect(8, Timeline(monotone(8, 5, {5})))
    assert result.kind is VerdictKind.INCONCLUSIVE
    assert (result.last_good, result.candidates) == (4, (5, 6))


def test_skipped_head_does_not_hide_a_later_boundary() -> None:
    result = bisect(6, Timeline(monotone(6, 3, {0})))
    assert result.kind is VerdictKind.REGRESSION
    assert (result.first_bad, result.last_good) == (3, 2)


def test_skipped_head_before_a_bad_model_leaves_both_as_candidates() -> None:
    result = bisect(6, Timeline(monotone(6, 1, {0})))
    assert result.kind is VerdictKind.INCONCLUSIVE
    assert (result.last_good, result.candidates) == (None, (0, 1))


def test_skipped_tail_after_good_models_is_inconclusive() -> None:
    result = bisect(5, Timeline(monotone(5, 5, {4})))
    assert result.kind is VerdictKind.INCONCLUSIVE
    assert (result.last_good, result.candidates) == (3, (4,))


def test_all_skipped_probes_every_index_once_and_names_no_candidate() -> None:
    probe = Timeline([S] * 7)
    result = bisect(7, probe)
    assert result.kind is VerdictKind.INCONCLUSIVE
    assert (result.candidates, result.last_good, result.first_bad) == ((), None, None)
    assert sorted(probe.probed) == list(range(7))
    text = verdict_message(result, LABELS[:7])
    assert text == "no model could be evaluated: all 7 were skipped"


@pytest.mark.parametrize(
    ("outcomes", "kind", "first_bad", "last_good", "candidates"),
    [
        ([G, B], VerdictKind.REGRESSION, 1, 0, (1,)),
        ([G, G], VerdictKind.NO_REGRESSION, None, 1, ()),
        ([B, B], VerdictKind.HEAD_BAD, 0, None, (0,)),
        ([G, S], VerdictKind.INCONCLUSIVE, None, 0, (1,)),
        ([S, B], VerdictKind.INCONCLUSIVE, None, None, (0, 1)),
        ([S, S], VerdictKind.INCONCLUSIVE, None, None, ()),
        ([S, G], VerdictKind.NO_REGRESSION, None, 1, ()),
    ],
)
def test_two_model_timelines(
    outcomes: list[Status],
    kind: VerdictKind,
    first_bad: int | None,
    last_good: int | None,
    candidates: tuple[int, ...],
) -> None:
    probe = Timeline(outcomes)
    result = bisect(2, probe)
    assert (result.kind, result.first_bad, result.last_good, result.candidates) == (
        kind,
        first_bad,
        last_good,
        candidates,
    )
    assert probe.calls[0] == (1,)


def test_second_probe_is_the_midpoint_below_the_bad_tail() -> None:
    probe = Timeline(monotone(9, 7, set()))
    bisect(9, probe)
    assert probe.calls[1] == (3,)  # the middle of the nine places the first bad can be: 0..8


def test_skipped_midpoint_moves_to_an_adjacent_index() -> None:
    probe = Timeline(monotone(9, 7, {3}))
    bisect(9, probe)
    assert probe.calls[1] == (3,)
    assert probe.calls[2] in ((2,), (4,))


def test_two_jobs_probe_the_tail_with_the_midpoint_then_split_the_gap_in_thirds() -> None:
    probe = Timeline(monotone(10, 8, set()))
    bisect(10, probe, jobs=2)
    assert probe.calls[0] == (4, 9)
    assert probe.calls[1] == (5, 7)  # (4, 9) cut in thirds


def test_probe_that_omits_an_index_is_an_error() -> None:
    with pytest.raises(ValueError, match="index 4"):
        bisect(5, lambda indices: {i: G for i in indices if i != 4})


@pytest.mark.parametrize("n", [0, 1])
def test_fewer_than_two_models_is_an_error(n: int) -> None:
    with pytest.raises(ValueError, match="at least two"):
        bisect(n, Timeline([G] * n))
    with pytest.raises(ValueError, match="at least two"):
        scan(n, Timeline([G] * n))


def test_zero_jobs_is_an_error() -> None:
    with pytest.raises(ValueError, match="jobs"):
        bisect(4, Timeline([G] * 4), jobs=0)


@pytest.mark.parametrize("jobs", [1, 2, 3, 5])
def test_scan_probes_every_index_once_in_batches_of_jobs(jobs: int) -> None:
    probe = Timeline(monotone(11, 6, {2}))
    result = scan(11, probe, jobs=jobs)
    assert probe.probed == list(range(11))
    assert all(len(call) <= jobs for call in probe.calls)
    assert len(probe.calls) == -(-11 // jobs)
    assert result.kind is VerdictKind.REGRESSION
    assert (result.first_bad, result.last_good, result.violations) == (6, 5, ())
    assert len(result.outcomes) == 11


def test_scan_names_good_models_after_a_bad_one() -> None:
    outcomes = [G, G, B, G, S, B, G]
    result = scan(7, Timeline(outcomes))
    assert result.violations == (3, 6)
    assert (result.kind, result.first_bad, result.last_good) == (VerdictKind.REGRESSION, 2, 1)


def test_monotone_violations_ignore_skips_and_goods_before_the_first_bad() -> None:
    assert monotone_violations({0: G, 1: S, 2: B, 3: S, 4: B}) == ()
    assert monotone_violations({5: G, 1: B, 0: G, 3: G}) == (3, 5)
    assert monotone_violations({0: G, 1: G}) == ()


def test_linear_verdict_uses_last_good_before_the_first_bad() -> None:
    result = linear_verdict([G, S, G, S, S, B, B, G])
    assert result.kind is VerdictKind.INCONCLUSIVE
    assert (result.last_good, result.candidates) == (2, (3, 4, 5))


LABELS = [f"model_{i:02d}" for i in range(8)]


def test_message_for_a_regression_names_both_sides() -> None:
    result = bisect(8, Timeline(monotone(8, 5, set())))
    assert verdict_message(result, LABELS) == (
        "first bad model is #5 (model_05); last good #4 (model_04)"
    )


def test_message_for_head_bad_and_no_regression() -> None:
    head = verdict_message(bisect(8, Timeline([B] * 8)), LABELS)
    assert "#0 (model_00)" in head
    assert "fails" in head
    clean = verdict_message(bisect(8, Timeline([G] * 8)), LABELS)
    assert clean == "the last model #7 (model_07) passes the gates"
    assert "#7 (model_07)" in clean


def test_message_for_inconclusive_lists_the_candidates() -> None:
    text = verdict_message(bisect(8, Timeline(monotone(8, 5, {3, 4}))), LABELS)
    assert text.startswith("skipped models hide the first bad one")
    for i in (3, 4, 5):
        assert f"#{i} (model_{i:02d})" in text
    assert "last good #2 (model_02)" in text


def test_message_for_skipped_tail_says_nothing_failed() -> None:
    text = verdict_message(bisect(8, Timeline(monotone(8, 8, {7}))), LABELS)
    assert "no tested model failed" in text
    assert "#7 (model_07)" in text


def test_message_shortens_a_long_candidate_list() -> None:
    text = verdict_message(bisect(40, Timeline([G] + [S] * 38 + [B])), [])
    assert "#1, #2" in text
    assert "more" in text
    assert len(text) < 200


def test_no_regression_after_a_skipped_head_names_the_skip_and_the_passing_model() -> None:
    text = verdict_message(bisect(2, Timeline([S, G]), jobs=2), LABELS)
    assert (
        text == "the last model #1 (model_01) passes the gates; #0 (model_00) could not be tested"
    )


def test_single_evaluable_model_before_a_skipped_tail_claims_nothing_about_the_tail() -> None:
    result = bisect(3, Timeline([G, S, S]))
    text = verdict_message(result, LABELS)
    assert result.kind is VerdictKind.INCONCLUSIVE
    assert text == (
        "no tested model failed, but #1 (model_01), #2 (model_02) could not be tested; "
        "last good #0 (model_00)"
    )


def test_single_evaluable_bad_model_after_skips_leaves_the_skips_as_candidates() -> None:
    result = bisect(3, Timeline([S, S, B]))
    assert (result.kind, result.candidates) == (VerdictKind.INCONCLUSIVE, (0, 1, 2))
    text = verdict_message(result, LABELS)
    assert text.startswith("skipped models hide the first bad one, which is one of #0")
    assert text.endswith("no model before them passed")
