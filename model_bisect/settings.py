"""Every run setting that is one value, one record each: its name (the `[tool.model-bisect]`
key, the action input and the flag without ``--``), its type, default and help.

`config.py` validates the table's keys from these records, `commands/` add the flags from
them and `action.yml` has one input per record (checked by `tests/test_settings.py`), so a new
setting is one record here. The timeline sources (`timeline/registry.py`) and the gates
(`catalogue.py`) keep their own records; `config_keys` lists them all. Standard library only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from .catalogue import CATALOGUE, Direction, MappingName
from .evaluation.features import TARGET_COLUMN
from .executors import ExecutorKind
from .timeline.registry import SOURCES

__all__ = [
    "DEFAULT_MIN_SLICE_ROWS",
    "DEFAULT_MODEL_TIMEOUT",
    "SETTINGS",
    "Command",
    "Kind",
    "Range",
    "Setting",
    "config_keys",
    "number_text",
    "setting_named",
]

# Seconds of inference one model may take before it is stopped and skipped: far above what a
# quality model needs on a million rows, far below a night.
DEFAULT_MODEL_TIMEOUT = 600.0
# Rated items a slice needs before its gates apply: below this a correlation is mostly noise.
DEFAULT_MIN_SLICE_ROWS = 30


class Kind(StrEnum):
    """What a value is, in TOML, on the command line and as an action input."""

    PATH = "path"  # relative to the config file's folder in the table
    TEXT = "text"
    NUMBER = "number"
    INTEGER = "integer"
    SWITCH = "switch"  # a flag without a value; true or false in the table and the action
    CHOICE = "choice"
    # a repeatable flag of text values; a list of strings (or one string) in the table, one
    # value per line as an action input
    LIST = "list"


class Command(StrEnum):
    """The subcommands a setting is a flag of."""

    RUN = "run"
    JUDGE = "judge"


@dataclass(frozen=True)
class Range:
    """The numbers a setting accepts; an open end excludes its bound."""

    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        # an int is finite however large (math.isfinite would overflow on 10**400)
        return above and below and (isinstance(value, int) or math.isfinite(value))

    def words(self, *, finite: bool = False) -> str:
        """``at least 1``, ``above 0``, ``above 0 and below 1`` (with ``finite``: ``finite and
        above 0``, ``finite, above 0 and below 1``): the range as messages word it, after
        "must be" or "a number that is"."""
        parts = ["finite"] if finite else []
        if self.low != -math.inf:
            parts.append(f"{'above' if self.low_open else 'at least'} {number_text(self.low)}")
        if self.high != math.inf:
            parts.append(f"{'below' if self.high_open else 'at most'} {number_text(self.high)}")
        if not parts:
            return "any number"
        return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"

    def requirement(self, value: float) -> str:
        """The words ``value`` fails, "finite" among them when it is NaN or infinite (inf is
        above 0, yet refused)."""
        return self.words(finite=not (isinstance(value, int) or math.isfinite(value)))

    def refusal(self, name: str, value: float) -> str:
        """``--jobs must be at least 1, not 0``: the one line that refuses ``value`` for
        ``name`` (a flag), the command line's and the config file's wording alike."""
        return f"{name} must be {self.requirement(value)}, not {number_text(value)}"


def number_text(value: float) -> str:
    """A number as a message shows it: ``0``, ``-1``, ``0.05``, ``1.0000001``, ``inf``,
    ``nan`` (every digit kept, unlike ``:g``, so a value just past a bound never reads as the
    bound itself)."""
    return repr(value).removesuffix(".0") if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Setting:
    """One run setting. ``default`` None means unset (the run decides, and says so in
    ``default_text``); ``example`` is a valid value messages suggest."""

    name: str
    kind: Kind
    help: str
    example: str
    default: str | float | int | bool | None = None
    default_text: str | None = None
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    bounds: Range | None = None
    commands: frozenset[Command] = frozenset({Command.RUN, Command.JUDGE})

    def __post_init__(self) -> None:
        if (self.kind is Kind.CHOICE) != bool(self.choices):
            raise ValueError(f"{self.name}: choices go with a choice setting, and only there")
        if self.bounds is not None and self.kind not in (Kind.NUMBER, Kind.INTEGER):
            raise ValueError(f"{self.name}: only a number has bounds")

    @property
    def flag(self) -> str:
        return f"--{self.name}"

    @property
    def dest(self) -> str:
        """The argparse attribute of ``flag``."""
        return self.name.replace("-", "_")

    @property
    def env(self) -> str:
        """The variable the action's run step hands the input over in."""
        return "MB_" + self.name.upper().replace("-", "_")

    @property
    def flag_help(self) -> str:
        """The ``--help`` line: the help and the default."""
        shown = self.default_text
        if shown is None and self.default is not None and self.kind is not Kind.SWITCH:
            shown = f"{self.default:g}" if isinstance(self.default, float) else str(self.default)
        return self.help if shown is None else f"{self.help} (default: {shown})"

    @property
    def action_help(self) -> str:
        """The action input's description: the help as a sentence."""
        text = self.help[0].upper() + self.help[1:] + "."
        if self.kind is Kind.LIST:
            return f"{text} One per line."
        return f"{text} Use true or false." if self.kind is Kind.SWITCH else text


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "features",
        Kind.PATH,
        "the feature cache (parquet) with the subjective scores",
        example="data/features.parquet",
        metavar="PARQUET",
    ),
    Setting(
        "target",
        Kind.TEXT,
        "the subjective-score column the models are judged against",
        example=TARGET_COLUMN,
        default=TARGET_COLUMN,
        metavar="NAME",
    ),
    Setting(
        "input-name",
        Kind.TEXT,
        "the graph input to feed when a model has several and nothing describes them",
        example="features",
        default_text="auto-detect",
        metavar="NAME",
    ),
    Setting(
        "model-timeout",
        Kind.NUMBER,
        "seconds of inference after which a model is stopped and skipped",
        example=f"{DEFAULT_MODEL_TIMEOUT:g}",
        default=DEFAULT_MODEL_TIMEOUT,
        metavar="SECONDS",
        bounds=Range(0.0, low_open=True),
    ),
    Setting(
        "row-id",
        Kind.TEXT,
        "the column that names a row, for the culprit's worst rows",
        example="clip",
        metavar="COLUMN",
        commands=frozenset({Command.RUN}),
    ),
    Setting(
        "pool-by",
        Kind.TEXT,
        "rows sharing a value of this column are one rated item: predictions averaged per"
        " group, metrics over groups",
        example="clip",
        metavar="COLUMN",
    ),
    Setting(
        "slice-by",
        Kind.LIST,
        "also compute every metric per value of this string column, for each model (repeatable)",
        example="encoder",
        metavar="COLUMN",
        commands=frozenset({Command.RUN}),
    ),
    Setting(
        "gate-slices",
        Kind.SWITCH,
        "with slice-by: every min/max gate must also hold on each slice of at least"
        " min-slice-rows rated items",
        example="true",
        default=False,
        commands=frozenset({Command.RUN}),
    ),
    Setting(
        "min-slice-rows",
        Kind.INTEGER,
        "slices with fewer rated items than this are reported but never gated",
        example=str(DEFAULT_MIN_SLICE_ROWS),
        default=DEFAULT_MIN_SLICE_ROWS,
        metavar="N",
        bounds=Range(1.0),
        commands=frozenset({Command.RUN}),
    ),
    Setting(
        "mapping",
        Kind.CHOICE,
        "none, linear, cubic or logistic, fitted before PLCC and RMSE",
        example=MappingName.LINEAR.value,
        default=MappingName.NONE.value,
        choices=tuple(m.value for m in MappingName),
    ),
    Setting(
        "direction",
        Kind.CHOICE,
        "which scores mean better quality; lower negates them before anything else"
        " (a timeline entry's direction wins)",
        example=Direction.LOWER_IS_BETTER.value,
        default=Direction.HIGHER_IS_BETTER.value,
        choices=tuple(d.value for d in Direction),
    ),
    Setting(
        "significance",
        Kind.NUMBER,
        "with max-drop gates: a drop counts only when significant at this level",
        example="0.05",
        metavar="ALPHA",
        bounds=Range(0.0, 1.0, low_open=True, high_open=True),
    ),
    Setting(
        "scan",
        Kind.SWITCH,
        "evaluate every model instead of bisecting, and check the timeline's order",
        example="true",
        default=False,
        commands=frozenset({Command.RUN}),
    ),
    Setting(
        "jobs",
        Kind.INTEGER,
        "models probed in parallel per round, clamped to min(models, 4 x CPUs, 32)",
        example="1",
        default=1,
        metavar="N",
        bounds=Range(1.0),
        commands=frozenset({Command.RUN}),
    ),
    Setting(
        "executor",
        Kind.CHOICE,
        "where a round's probes run: local threads, or Ray tasks (pip install 'model-bisect[ray]')",
        example=ExecutorKind.RAY.value,
        default=ExecutorKind.LOCAL.value,
        choices=tuple(kind.value for kind in ExecutorKind),
        commands=frozenset({Command.RUN}),
    ),
    Setting(
        "ray-address",
        Kind.TEXT,
        "the Ray cluster to join with executor ray (auto: the one on this machine)",
        example="auto",
        default_text="start a local Ray",
        metavar="ADDRESS",
        commands=frozenset({Command.RUN}),
    ),
)


def setting_named(name: str) -> Setting:
    """The record of one setting (KeyError for a name none has)."""
    for setting in SETTINGS:
        if setting.name == name:
            return setting
    raise KeyError(name)


def config_keys() -> tuple[str, ...]:
    """Every key `[tool.model-bisect]` accepts: the timeline sources and their options, the
    catalogue's gates, the settings above, and the sticky comment's two. Read when asked, so
    a metric added to the catalogue is a key at once."""
    return (
        *(source.config_key for source in SOURCES),
        *(option.flag.removeprefix("--") for source in SOURCES for option in source.options),
        *(spec.flag.removeprefix("--") for spec in CATALOGUE),
        "max-drop",
        *(setting.name for setting in SETTINGS),
        "marker",
        "tracker-issue",
    )
