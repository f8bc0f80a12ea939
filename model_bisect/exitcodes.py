"""The exit codes every entry point shares: `model-bisect`, `python -m cache_builder`, invoke.

CI reads these numbers, so each means one thing everywhere. argparse's own usage exit (2) would
read as "regression found", which is why usage errors are mapped to INPUT instead.
"""

from __future__ import annotations

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    """What a run ended with; the value is the process exit status, ``meaning`` says why."""

    meaning: str

    def __new__(cls, value: int, meaning: str) -> ExitCode:
        member = int.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    OK = 0, "success: the fixture matches, no regression in range, the comment is published"
    DRIFT = 1, "`cache_builder check` or `matrix` found a difference the required level forbids"
    REGRESSION = (
        2,
        ("a regression was localised (with --fail-on-first-bad) or the head model already fails"),
    )
    INPUT = 3, "unusable input or a usage error: one `error: ...` line naming the file and fix"
    INCONCLUSIVE = 4, "skipped models hide where the first bad one is"
    INTERRUPTED = 130, "stopped with Ctrl-C (the shell's 128 + SIGINT)"
