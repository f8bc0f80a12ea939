"""What a report records about the command that produced it, so it can be run again.

The working directory is kept relative to the repository when there is one: an absolute
path from a CI runner or a laptop means nothing to the next reader, a folder of the
repository does. No process is started: the repository is found by its `.git` entry.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .. import __version__
from ..publishing.redact import redact
from ..report import Invocation

__all__ = ["TOKEN_VARIABLES", "invocation", "repository_root"]

# Environment variables whose values must never appear in a recorded command line.
TOKEN_VARIABLES = ("GH_TOKEN", "GITHUB_TOKEN")


def repository_root(folder: Path) -> Path | None:
    """The nearest folder at or above ``folder`` holding `.git` (a folder, or a file in a
    worktree or submodule); None outside any repository."""
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def invocation(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    reproduce: str | None = None,
    secrets: Iterable[str] = (),
    config: Path | None = None,
) -> Invocation:
    """The record of one command line run in ``cwd``; tokens in ``env`` (and anything shaped
    like a GitHub token) are masked in every word."""
    hidden = [*secrets, *(env.get(name, "") for name in TOKEN_VARIABLES)]
    words = tuple(redact(word, hidden) for word in argv)
    shown = None if reproduce is None else redact(reproduce, hidden)
    folder = Path(os.path.abspath(cwd))
    root = repository_root(folder)
    where = None  # the settings file, in the same form as the working directory
    if config is not None:
        settings = Path(os.path.abspath(config))
        if root is not None and settings.is_relative_to(root):
            where = redact(settings.relative_to(root).as_posix(), hidden)
        else:
            where = redact(str(settings), hidden)
    if root is None:
        return Invocation(words, __version__, str(folder), False, shown, where)
    return Invocation(words, __version__, folder.relative_to(root).as_posix(), True, shown, where)
