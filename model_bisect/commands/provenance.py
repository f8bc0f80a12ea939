"""What a report records about the command that produced it, so it can be run again.

The working directory is kept relative to the repository when there is one: an absolute
path from a CI runner or a laptop means nothing to the next reader, a folder of the
repository does. No process is started: the repository is found by its `.git` entry.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .. import __version__
from ..publishing.redact import redact
from ..report import Invocation

__all__ = ["TOKEN_VARIABLES", "invocation", "portable_words", "repository_head", "repository_root"]

# Environment variables whose values must never appear in a recorded command line.
TOKEN_VARIABLES = ("GH_TOKEN", "GITHUB_TOKEN")


def repository_root(folder: Path) -> Path | None:
    """The nearest folder at or above ``folder`` holding `.git` (a folder, or a file in a
    worktree or submodule); None outside any repository."""
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def repository_head(root: Path) -> str | None:
    """The commit checked out in ``root`` (full SHA), or None when git cannot say."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--verify", "--quiet", "HEAD"],
            capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    head = done.stdout.strip()
    return head if done.returncode == 0 and _SHA.fullmatch(head) else None


def _portable(word: str, cwd: Path, root: Path | None, temp: Path | None) -> str:
    """One word, with the path in it (alone, or after ``--flag=``) made portable."""
    flag, equals, value = word.partition("=") if word.startswith("--") else ("", "", word)
    if not equals and flag:
        return word
    if not value.startswith("/"):
        return word
    path = Path(os.path.abspath(value))
    if temp is not None and path.is_relative_to(temp):
        value = path.name
    elif root is not None and path.is_relative_to(root):
        value = os.path.relpath(path, cwd)
    return f"{flag}{equals}{value}"


def portable_words(words: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> tuple[str, ...]:
    """``words`` with absolute paths inside the repository made relative to ``cwd``, and
    those under ``$RUNNER_TEMP`` cut to their file name: what a fresh checkout can run."""
    folder = Path(os.path.abspath(cwd))
    runner_temp = env.get("RUNNER_TEMP", "").strip()
    temp = Path(os.path.abspath(runner_temp)) if runner_temp.startswith("/") else None
    root = repository_root(folder)
    return tuple(_portable(word, folder, root, temp) for word in words)


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
    words = tuple(redact(word, hidden) for word in portable_words(argv, cwd=cwd, env=env))
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
    relative = folder.relative_to(root).as_posix()
    return Invocation(words, __version__, relative, True, shown, where, repository_head(root))
