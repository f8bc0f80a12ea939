"""Every way to give a timeline, one record each: the flag, config key and action input that
choose it, and the function that builds it.

`commands/run.py` (parser, config fallback, validation, dispatch), `config.py` (the keys it
accepts) and `action.yml` (its inputs, kept in step by a test) all read `SOURCES`, so a new
source is one record here and one builder module. Standard library only: `config.py` reads
this before anything else is imported; each builder imports its module when it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .entry import TimelineEntry

__all__ = ["SOURCES", "Builder", "SourceName", "SourceOption", "TimelineSource", "source_named"]

# values (the paths given), options (by dest; None when not given), a scratch folder that
# lives as long as the run -> the timeline
Builder = Callable[[tuple[str, ...], Mapping[str, "str | None"], Path], "list[TimelineEntry]"]


class SourceName(StrEnum):
    """A source's name: its `[tool.model-bisect]` key and its action input alike."""

    MODELS = "models"
    TIMELINE = "timeline"
    GIT_PATH = "git-path"


@dataclass(frozen=True)
class SourceOption:
    """A setting that refines one source and means nothing without it (``--rev-range``)."""

    flag: str
    action_input: str
    metavar: str
    help: str
    action_help: str

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


@dataclass(frozen=True)
class TimelineSource:
    """One way to give the timeline.

    ``flag`` is None for the positional MODEL arguments. ``many``: the value is a list of
    paths or globs (else one path). ``read_as_input``: the value names a file the run reads
    itself (a timeline file, a tracked model), which no output may replace.
    """

    name: SourceName
    flag: str | None
    metavar: str
    help: str
    action_help: str
    many: bool
    read_as_input: bool
    build: Builder
    options: tuple[SourceOption, ...] = ()

    @property
    def config_key(self) -> str:
        return self.name.value

    @property
    def action_input(self) -> str:
        return self.name.value

    @property
    def dest(self) -> str:
        return self.name.value.replace("-", "_")

    @property
    def spelled(self) -> str:
        """How a message names it on the command line: ``--git-path PATH``, ``MODEL``."""
        return self.metavar if self.flag is None else f"{self.flag} {self.metavar}"


def _from_arguments(
    values: tuple[str, ...], options: Mapping[str, str | None], workdir: Path
) -> list[TimelineEntry]:
    from .arguments import from_arguments

    return from_arguments(values)


def _from_file(
    values: tuple[str, ...], options: Mapping[str, str | None], workdir: Path
) -> list[TimelineEntry]:
    from .file import from_file

    (path,) = values
    return from_file(Path(path))


def _from_git(
    values: tuple[str, ...], options: Mapping[str, str | None], workdir: Path
) -> list[TimelineEntry]:
    from .git import from_git

    (path,) = values
    return from_git(Path(path), options.get("rev_range"), workdir)


SOURCES: tuple[TimelineSource, ...] = (
    TimelineSource(
        SourceName.MODELS,
        flag=None,
        metavar="MODEL",
        help="model files, globs or folders, oldest first",
        action_help=(
            "Model files, globs or folders, one per line, oldest first "
            "(or set timeline or git-path)."
        ),
        many=True,
        read_as_input=False,  # the models themselves are inputs, whatever the source
        build=_from_arguments,
    ),
    TimelineSource(
        SourceName.TIMELINE,
        flag="--timeline",
        metavar="FILE",
        help="TOML or JSON file listing models in order",
        action_help="A TOML or JSON file listing the models in order.",
        many=False,
        read_as_input=True,
        build=_from_file,
    ),
    TimelineSource(
        SourceName.GIT_PATH,
        flag="--git-path",
        metavar="PATH",
        help="every committed version of one model file",
        action_help=(
            "One model file whose committed versions form the timeline; check out the whole "
            "history (actions/checkout with fetch-depth: 0), as a shallow clone holds one."
        ),
        many=False,
        read_as_input=True,
        build=_from_git,
        options=(
            SourceOption(
                flag="--rev-range",
                action_input="rev-range",
                metavar="A..B",
                help="with --git-path: the version at A (the good end), then the commits in A..B",
                action_help=(
                    "With git-path, the version in effect at A (the good end, as for git "
                    "bisect), then the commits in A..B."
                ),
            ),
        ),
    ),
)


def source_named(name: SourceName | str) -> TimelineSource:
    """The record of one source (KeyError for a name no source has)."""
    for source in SOURCES:
        if source.name == name:
            return source
    raise KeyError(name)
