"""The exit codes every entry point shares: `model-bisect`, `python -m cache_builder`, invoke.

CI reads these numbers, so each means one thing everywhere. argparse's own usage exit (2) would
read as "regression found", which is why usage errors are mapped to INPUT instead.
"""

from __future__ import annotations

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    """What a run ended with; the value is the process exit status."""

    OK = 0
    """Success: the fixture matches, no regression in range, the comment was published."""

    DRIFT = 1
    """`cache_builder check` or `matrix` found a difference that the required level forbids."""

    REGRESSION = 2
    """A regression was localised (with --fail-on-first-bad), or the head model already fails."""

    INPUT = 3
    """Unusable input or a usage error: one `error: ...` line naming the file and the fix."""

    INCONCLUSIVE = 4
    """Skipped models hide where the first bad one is."""

    INTERRUPTED = 130
    """Stopped with Ctrl-C (the shell's convention, 128 + SIGINT)."""
