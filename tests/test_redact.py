"""Tokens are masked wherever text leaves the tool, in plain text and inside a report."""

from __future__ import annotations

from model_bisect.publishing.redact import MASK, redact, redact_report
from tests.reportkit import make_report


def test_every_given_secret_is_masked_and_empty_ones_are_ignored() -> None:
    text = "push with s3cr3t-value then s3cr3t-value again; other-secret too"
    assert redact(text, ["s3cr3t-value", "", "other-secret"]) == (
        f"push with {MASK} then {MASK} again; {MASK} too"
    )


def test_github_token_shapes_are_masked_even_when_not_passed() -> None:
    classic = "ghp_" + "a1B2" * 6
    fine_grained = "github_pat_" + "Xy_9" * 6
    text = f"Authorization: token {classic}\nGH_TOKEN={fine_grained}"
    assert redact(text) == f"Authorization: token {MASK}\nGH_TOKEN={MASK}"


def test_short_or_unprefixed_lookalikes_are_left_alone() -> None:
    text = "ghp_short and xghp_" + "a" * 30 + " and gha_" + "b" * 30
    assert redact(text) == text


def test_report_secret_with_json_escapes_is_masked_in_labels_reason_and_message() -> None:
    secret = 'to"ken\\with-escapes'
    report = make_report(labels=[f"m{i} {secret}" for i in range(8)], reason=secret, message=secret)
    clean = redact_report(report, [secret])
    assert clean.timeline[3].label == f"m3 {MASK}"
    assert all(step.reason == MASK for step in clean.steps)
    assert clean.verdict.message == MASK
    assert secret not in str(clean.to_json())


def test_report_without_secrets_comes_back_as_the_same_object() -> None:
    report = make_report()
    assert redact_report(report, ["not-in-the-report"]) is report
