"""Where the project's errors become words and exit codes, shared by both CLIs.

The libraries only raise; these two pieces are the whole of "the CLI speaks".
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from .errors import BisectError, UsageError

__all__ = ["Parser", "speak"]


class Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors, which CI would read as "regression": raise instead,
    so usage errors get exit 3 and the same one-line form as every other error."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, None, f"see `{self.prog} --help`")


def speak(action: Callable[[], int], argv: Sequence[str]) -> int:
    """Run a command; turn a project error into `error: ...` on stderr and its exit code
    (the traceback only with --debug)."""
    try:
        return action()
    except BisectError as exc:
        if "--debug" in argv:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
