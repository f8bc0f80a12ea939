"""The command-line pieces the subcommands share: gate, data and cache flags, ``--config``,
``--marker``, and turning the parsed flags into gates and a cache.

One home, so `run`, `judge` and `publish` spell and default a flag alike and none imports
another subcommand. Light at import time (argparse and the catalogue): the gates and the
cache are imported when a command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalogue import CATALOGUE, GateKind
from ..errors import UsageError
from ..evaluation.features import TARGET_COLUMN
from ..publishing.marker import DEFAULT_MARKER
from ..settings import Command, Kind, Setting, setting_named
from ..timeline.registry import SOURCES

if TYPE_CHECKING:
    from ..evaluation.cache import EvalCache
    from ..report import GateSpec

__all__ = [
    "DEFAULT_MARKER",
    "TARGET_COLUMN",
    "add_cache_arguments",
    "add_config_flag",
    "add_data_arguments",
    "add_gate_arguments",
    "add_marker_flag",
    "add_setting",
    "add_slice_arguments",
    "cache_from",
    "check_gate_arguments",
    "check_slice_arguments",
    "gates_from",
    "issue_number",
    "out_of_bounds",
]

_TYPES = {Kind.PATH: Path, Kind.TEXT: str, Kind.NUMBER: float, Kind.INTEGER: int}

MAX_ISSUE = 2**31 - 1  # GitHub's issue numbers are 32-bit


def issue_number(text: str) -> int:
    """An issue or pull-request number as GitHub numbers them (`publish`, `nightly`)."""
    digits = text.isascii() and text.isdigit() and len(text) <= len(str(MAX_ISSUE))
    if not digits or not 1 <= int(text) <= MAX_ISSUE:
        shown = repr(text) if len(text) <= 40 else repr(text[:37]) + "..."
        raise argparse.ArgumentTypeError(f"issue must be a positive number, not {shown}")
    return int(text)


def out_of_bounds(setting: Setting, value: float, where: str | None) -> UsageError | None:
    """The error that refuses ``value`` for ``setting``'s flag, None when its bounds hold it:
    ``--jobs must be at least 1, not 0 in model-bisect run: use e.g. --jobs 1``. The wording
    is the one `config.py` gives a key of the file (`Range.requirement`)."""
    if setting.bounds is None or value in setting.bounds:
        return None
    fix = f"use e.g. {setting.flag} {setting.example}"
    return UsageError(setting.bounds.refusal(setting.flag, value), where, fix)


class _InBounds(argparse.Action):
    """Stores a number flag's value once its setting's bounds hold it; else the UsageError of
    ``out_of_bounds``, naming the command being parsed (`nightly` parses `run`'s flags too).
    Raised as it is, not as an argparse error, so its fix is the setting's example."""

    setting: Setting

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        assert isinstance(values, int | float)  # the flag's type converted it
        refused = out_of_bounds(self.setting, values, parser.prog)
        if refused is not None:
            raise refused
        setattr(namespace, self.dest, values)


def _in_bounds(setting: Setting) -> type[argparse.Action]:
    """The store action of a bounded setting's flag."""
    return type(f"_InBounds_{setting.dest}", (_InBounds,), {"setting": setting})


def add_setting(
    group: argparse._ActionsContainer, setting: Setting, command: Command, *, required: bool = False
) -> None:
    """The flag of one `settings.py` record. For `run` it defaults to None, so that
    [tool.model-bisect] can fill it before the record's default does; `judge` reads no file and
    takes the default at once. A value outside the record's ``bounds`` is refused as the flag
    is parsed, in every command alike (``out_of_bounds``)."""
    if command not in setting.commands:
        raise ValueError(f"{setting.flag} is not a flag of {command}")
    default = None if command is Command.RUN else setting.default
    if setting.kind is Kind.SWITCH:
        group.add_argument(
            setting.flag, dest=setting.dest, action="store_true", default=default,
            help=setting.flag_help,
        )  # fmt: skip
        return
    if setting.kind is Kind.LIST:
        group.add_argument(
            setting.flag, dest=setting.dest, action="append", default=default,
            metavar=setting.metavar, help=setting.flag_help,
        )  # fmt: skip
        return
    group.add_argument(
        setting.flag,
        dest=setting.dest,
        action="store" if setting.bounds is None else _in_bounds(setting),
        type=_TYPES.get(setting.kind, str),
        choices=setting.choices or None,
        default=default,
        required=required,
        metavar=setting.metavar,
        help=setting.flag_help,
    )


def _gate_help(label: str, kind: GateKind, bounds: tuple[float, float]) -> str:
    sign = ">=" if kind is GateKind.MIN else "<="
    low, high = bounds
    return f"gate: a model is good only when its {label} {sign} X (X in [{low:g}, {high:g}])"


def add_gate_arguments(parser: argparse.ArgumentParser, anchor: str, command: Command) -> None:
    """The gate flags `run` and `judge` share; ``anchor`` names what --max-drop compares with.
    The mapping, the direction and the significance are settings (`settings.py`)."""
    gates = parser.add_argument_group("gates (at least one; a model is good when all hold)")
    for spec in CATALOGUE:
        gates.add_argument(
            spec.flag,
            dest=spec.dest,
            type=float,
            metavar="X",
            help=_gate_help(spec.label, spec.threshold_kind, spec.threshold_range),
        )
    gates.add_argument(
        "--max-drop",
        action="append",
        default=[],
        metavar="METRIC=DELTA",
        help=f"gate: largest allowed drop relative to {anchor} (repeatable)",
    )
    for name in ("mapping", "direction", "significance"):
        add_setting(gates, setting_named(name), command)


def check_gate_arguments(args: argparse.Namespace, where: str) -> None:
    """The rules of the flags ``add_gate_arguments`` adds, for `run` and `judge` alike."""
    if args.significance is not None and not args.max_drop:
        raise UsageError(
            "--significance applies to --max-drop gates, and none was given",
            where,
            "add --max-drop METRIC=DELTA or drop --significance",
        )


def gates_from(args: argparse.Namespace) -> tuple[GateSpec, ...]:
    """The gates the flags of ``add_gate_arguments`` ask for."""
    from ..gates import gate_specs

    thresholds = {spec.name: getattr(args, spec.dest) for spec in CATALOGUE}
    return gate_specs(thresholds, args.max_drop)


def add_timeline_arguments(
    group: argparse._ActionsContainer, models_dest: str | None = None, models_help: str = ""
) -> None:
    """One flag per timeline source (and the sources' options); the positional MODEL
    arguments go to ``models_dest`` (default: the source's own dest) with ``models_help``
    appended to their help."""
    for source in SOURCES:
        if source.flag is None:
            group.add_argument(
                models_dest or source.dest,
                nargs="*",
                metavar=source.metavar,
                help=source.help + models_help,
            )
        else:
            group.add_argument(
                source.flag, dest=source.dest, metavar=source.metavar, help=source.help
            )
        for option in source.options:
            group.add_argument(
                option.flag, dest=option.dest, metavar=option.metavar, help=option.help
            )


def add_data_arguments(parser: argparse.ArgumentParser, command: Command) -> None:
    """--features, --target, --input-name, --model-timeout, --pool-by (and `run`'s
    --row-id): the data and how it is read. `judge` requires --features; `run` may take
    it from [tool.model-bisect]."""
    data = parser.add_argument_group("data")
    for name in ("features", "target", "input-name", "model-timeout", "row-id", "pool-by"):
        setting = setting_named(name)
        if command in setting.commands:
            required = name == "features" and command is Command.JUDGE
            add_setting(data, setting, command, required=required)


def add_slice_arguments(parser: argparse.ArgumentParser, command: Command) -> None:
    """--slice-by, --gate-slices and --min-slice-rows: the metrics per value of a string
    column, and whether the gates hold on each slice too (`run`, and `nightly` for it)."""
    slices = parser.add_argument_group("slices")
    for name in ("slice-by", "gate-slices", "min-slice-rows"):
        add_setting(slices, setting_named(name), command)


def check_slice_arguments(args: argparse.Namespace, where: str) -> None:
    """--gate-slices and --min-slice-rows mean something only with --slice-by (the config's
    keys filled in already); a --slice-by value is a column name."""
    if any(not name for name in args.slice_by or ()):
        raise UsageError("an empty --slice-by column", where, "pass a string column's name")
    if args.slice_by:
        args.slice_by = list(dict.fromkeys(args.slice_by))  # each column sliced once
        if args.gate_slices and all(getattr(args, spec.dest) is None for spec in CATALOGUE):
            raise UsageError(  # --max-drop compares with the first model overall only
                "--gate-slices applies the --min-/--max- gates to each slice, and none was given",
                where,
                f"add a gate such as {CATALOGUE.specs[0].flag} X, or drop --gate-slices",
            )
        return
    default = setting_named("min-slice-rows").default
    if args.gate_slices or args.min_slice_rows != default:
        flag = "--gate-slices" if args.gate_slices else "--min-slice-rows"
        raise UsageError(
            f"{flag} applies to slices, and no --slice-by was given",
            where,
            f"add --slice-by COLUMN (a string column such as the encoder), or drop {flag}",
        )


def add_cache_arguments(group: argparse._ActionsContainer) -> None:
    """--no-cache and --cache-dir, in ``group`` (a parser or one of its groups)."""
    group.add_argument("--no-cache", action="store_true", help="ignore the evaluation cache")
    group.add_argument(
        "--cache-dir",
        type=Path,
        help="evaluation cache folder (default: $MODEL_BISECT_CACHE_DIR or ~/.cache/model-bisect)",
    )


def cache_from(args: argparse.Namespace) -> EvalCache | None:
    """The evaluation cache the flags of ``add_cache_arguments`` ask for (None: no cache)."""
    from ..evaluation.cache import EvalCache

    return None if args.no_cache else EvalCache(args.cache_dir or EvalCache.default_folder())


def add_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="settings file (default: the nearest pyproject.toml with [tool.model-bisect])",
    )


def add_marker_flag(group: argparse._ActionsContainer) -> None:
    group.add_argument(
        "--marker", metavar="KEY", help=f"sticky-comment key (default: {DEFAULT_MARKER})"
    )
