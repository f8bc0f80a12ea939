"""The exit codes every entry point shares: `model-bisect`, `python -m cache_builder`, invoke.

CI reads these numbers, so each means one thing everywhere. argparse's own usage exit (2) would
read as "regression found", which is why usage errors are mapped to INPUT instead.

A signal that ends a run is reported the shell's way, 128 + the signal's number: Ctrl-C is
INTERRUPTED (130); `cache_builder` also unwinds on SIGTERM (143) and SIGHUP (129), cleaning up
as it goes, and ends with ``ExitCode.signalled(signum)``. These are not verdicts CI acts on,
so the README's table leaves them out.

`model-bisect judge` is the exception: `git bisect run` calls it and reads its status by git's
own contract (0 good, 1 bad, 125 skip, above 127 abort), so it ends with a `JudgeExit` instead.
"""

from __future__ import annotations

import enum

__all__ = ["ExitCode", "JudgeExit"]


class _Status(enum.IntEnum):
    """A process exit status that says what it means (``meaning``); members are declared as
    ``NAME = value, meaning``."""

    meaning: str

    def __new__(cls, value: int, meaning: str) -> _Status:
        member = int.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member


class ExitCode(_Status):
    """What a run ended with; the value is the process exit status, ``meaning`` says why."""

    OK = 0, "success: the fixture matches, no regression in range, the comment is published"
    DRIFT = 1, "`cache_builder check` or `matrix` found a difference the required level forbids"
    REGRESSION = (
        2,
        ("a regression was localised (with --fail-on-first-bad) or the head model already fails"),
    )
    INPUT = 3, "unusable input or a usage error: one `error: ...` line naming the file and fix"
    INCONCLUSIVE = 4, "skipped models hide where the first bad one is"
    INTERRUPTED = 130, "stopped with Ctrl-C (the shell's 128 + SIGINT)"

    @staticmethod
    def signalled(signum: int) -> int:
        """The status after the signal ``signum`` ended the run: 128 + its number, as a shell
        reports a process the signal killed (143 for SIGTERM, 129 for SIGHUP)."""
        if not 0 < signum < 128:
            raise ValueError(f"signal number {signum} is outside 1..127")
        return 128 + signum


class JudgeExit(_Status):
    """What `model-bisect judge` ends with: the statuses `git bisect run` understands.

    Kept apart from ExitCode on purpose: git reads 1..127 (but 125) as "this commit is bad",
    so a usage or input error must never end with ExitCode.INPUT (3) here; it aborts the
    bisect with ABORT instead of silently blaming the commit.
    """

    GOOD = 0, "every gate holds: git marks the commit good"
    BAD = 1, "a gate fails: git marks the commit bad"
    SKIP = 125, "the model cannot be evaluated at this commit: git skips it"
    ABORT = 128, "the run cannot proceed (flags, features, anchor): git stops the bisect"
