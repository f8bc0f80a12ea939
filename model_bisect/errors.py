"""The one error family of the project: the library raises, only the CLIs speak."""

from __future__ import annotations

from .exitcodes import ExitCode

__all__ = [
    "BisectError",
    "InputError",
    "PublishError",
    "UnknownMetricError",
    "UsageError",
    "first_line",
]

_LINE_LIMIT = 300


def first_line(problem: BaseException | str) -> str:
    """The first non-blank line of an exception's message (or of a text), at most 300
    characters: third-party errors (protobuf, pyarrow, ONNX Runtime) can run to pages, and a
    skip reason or an error message must stay one line. An exception without a message is
    named by its class."""
    text = problem if isinstance(problem, str) else str(problem)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines:
        line = lines[0]
    elif isinstance(problem, BaseException):
        line = problem.__class__.__name__
    else:
        line = ""
    return line if len(line) <= _LINE_LIMIT else line[: _LINE_LIMIT - 3] + "..."


class BisectError(Exception):
    """A problem a user can act on: what went wrong, where, and how to fix it.

    The CLIs print ``error: <str(exc)>`` on one line and exit with ``exit_code``.
    """

    exit_code: ExitCode = ExitCode.INPUT

    def __init__(self, problem: str, where: str | None = None, fix: str | None = None) -> None:
        self.problem = problem
        self.where = where
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        text = self.problem if self.where is None else f"{self.problem} in {self.where}"
        return text if self.fix is None else f"{text}: {self.fix}"


class InputError(BisectError):
    """A file the user gave is missing, unreadable or of the wrong shape."""


class UsageError(BisectError):
    """The command line itself is wrong (argparse errors are mapped here, exit 3 not 2)."""


class PublishError(BisectError):
    """GitHub refused or failed the publish; the message names the token, permission or issue."""


class UnknownMetricError(UsageError, KeyError):
    """A metric name outside the catalogue: a gate, a test or a record asked for a metric the
    tool does not compute. Also a KeyError, since it is a failed look-up by name."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        self.name = name
        super().__init__(f"unknown metric {name!r}", None, f"use one of {', '.join(known)}")
