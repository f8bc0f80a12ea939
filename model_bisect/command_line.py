"""Where the project's errors become words and exit codes, shared by both CLIs.

The libraries only raise; `Parser`, `add_debug_flag` and `speak` are the whole of "the CLI
speaks".
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any, NoReturn

from .errors import BisectError, UsageError
from .exitcodes import ExitCode
from .safetext import guarded_streams, printable

__all__ = [
    "DEBUG_FLAG",
    "Parser",
    "Terminated",
    "add_debug_flag",
    "speak",
    "split_debug",
    "terminations_unwind",
]

DEBUG_FLAG = "--debug"


class Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors, which CI would read as "regression": raise instead,
    so usage errors get exit 3 and the same one-line form as every other error.

    Abbreviations are off: ``--min-pl`` must not silently mean ``--min-plcc`` (and would
    change meaning the day a second flag shares the prefix)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, None, f"see `{self.prog} --help`")


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    """List --debug in a parser's help; `speak` takes it out of the command line before any
    parser sees it, so it is accepted before or after the subcommand alike."""
    parser.add_argument(
        DEBUG_FLAG, action="store_true", help="on an error, show the full traceback too"
    )


def split_debug(argv: Sequence[str]) -> tuple[list[str], bool]:
    """The command line without its --debug flags, and whether there was one.

    Only options before a `--` count: after it every word is an operand. A value can never be
    the bare word `--debug` (argparse would read it as an option), so removing it is safe.
    """
    words = list(argv)
    end = words.index("--") if "--" in words else len(words)
    kept = [word for word in words[:end] if word != DEBUG_FLAG]
    return kept + words[end:], len(kept) < end


def speak(action: Callable[[list[str]], int], argv: Sequence[str] | None = None) -> int:
    """Run a command on ``argv`` (default: this process's arguments) and return its exit code.

    A project error becomes one `error: ...` line on stderr and its exit code; with --debug
    the traceback comes first, and the exit code stays the same so CI reads it the same way.
    """
    words, debug = split_debug(sys.argv[1:] if argv is None else argv)
    with guarded_streams():  # no line of ours begins with `::` unless it is our annotation
        return _spoken(action, words, debug)


def _masked(text: str) -> str:
    """The environment's tokens masked by value (an API URL can carry one in its path)."""
    from .publishing.redact import env_secrets, mask_error

    return mask_error(text, env_secrets(os.environ))


def _spoken(action: Callable[[list[str]], int], words: list[str], debug: bool) -> int:
    try:
        return int(action(words))
    except BisectError as exc:
        if debug:
            traceback.print_exc(file=sys.stderr)
        print(f"error: {_masked(printable(_masked(str(exc))))}", file=sys.stderr)  # one line
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised so that every `finally` (a temporary folder, the fixture's
    staging tree) runs; by default these signals end the process on the spot."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


@contextlib.contextmanager
def terminations_unwind() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise ``Terminated``, so temporary folders (run's
    copies of `--git-path` versions, cache_builder's scratch) are removed on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; an embedding program keeps its own
        return
    caught = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])

    def handler(signum: int, frame: FrameType | None) -> None:
        for each in caught:  # a second signal must not cut the clean-up short
            signal.signal(each, signal.SIG_IGN)
        raise Terminated(signum)

    previous = {each: signal.signal(each, handler) for each in caught}
    try:
        yield
    finally:
        for each, action in previous.items():
            signal.signal(each, action)
