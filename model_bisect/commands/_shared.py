"""The command-line pieces the subcommands share: gate, data and cache flags, ``--config``,
``--marker``, and turning the parsed flags into gates and a cache.

One home, so `run`, `judge` and `publish` spell and default a flag alike and none imports
another subcommand. Light at import time (argparse and the catalogue): the gates and the
cache are imported when a command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ..catalogue import CATALOGUE, Direction, MappingName
from ..errors import UsageError
from ..evaluation.features import TARGET_COLUMN
from ..publishing.marker import DEFAULT_MARKER

if TYPE_CHECKING:
    from ..evaluation.cache import EvalCache
    from ..report import GateSpec

__all__ = [
    "DEFAULT_MARKER",
    "DEFAULT_MODEL_TIMEOUT",
    "TARGET_COLUMN",
    "add_cache_arguments",
    "add_config_flag",
    "add_data_arguments",
    "add_gate_arguments",
    "add_marker_flag",
    "cache_from",
    "check_gate_arguments",
    "check_timeout_argument",
    "gates_from",
    "issue_number",
]

# Seconds of inference one model may take before it is stopped and skipped: far above what a
# quality model needs on a million rows, far below a night.
DEFAULT_MODEL_TIMEOUT = 600.0
MAX_ISSUE = 2**31 - 1  # GitHub's issue numbers are 32-bit


def issue_number(text: str) -> int:
    """An issue or pull-request number as GitHub numbers them (`publish`, `nightly`)."""
    digits = text.isascii() and text.isdigit() and len(text) <= len(str(MAX_ISSUE))
    if not digits or not 1 <= int(text) <= MAX_ISSUE:
        shown = repr(text) if len(text) <= 40 else repr(text[:37]) + "..."
        raise argparse.ArgumentTypeError(f"issue must be a positive number, not {shown}")
    return int(text)


def add_gate_arguments(parser: argparse.ArgumentParser, anchor: str) -> None:
    """The gate flags `run` and `judge` share; ``anchor`` names what --max-drop compares with.
    --mapping has no default here: `run` fills it from [tool.model-bisect], else `none`."""
    gates = parser.add_argument_group("gates (at least one; a model is good when all hold)")
    for spec in CATALOGUE:
        gates.add_argument(spec.flag, dest=spec.dest, type=float, metavar="X")
    gates.add_argument(
        "--max-drop",
        action="append",
        default=[],
        metavar="METRIC=DELTA",
        help=f"largest allowed drop relative to {anchor} (repeatable)",
    )
    gates.add_argument(
        "--mapping",
        choices=[m.value for m in MappingName],
        help="fit a P.1401-style mapping before PLCC and RMSE (default: none)",
    )
    gates.add_argument(
        "--direction",
        choices=[d.value for d in Direction],
        default=Direction.HIGHER_IS_BETTER.value,
        help="which scores mean better quality; lower negates them before anything else"
        " (default: higher; a timeline entry's direction wins)",
    )
    gates.add_argument(
        "--significance",
        type=float,
        metavar="ALPHA",
        help="with --max-drop: a drop counts only when significant at this level",
    )


def check_gate_arguments(args: argparse.Namespace, where: str) -> None:
    """The rules of the flags ``add_gate_arguments`` adds, for `run` and `judge` alike."""
    if args.significance is None:
        return
    if not 0.0 < args.significance < 1.0:
        raise UsageError(
            f"--significance must be between 0 and 1, not {args.significance}",
            where,
            "use e.g. --significance 0.05",
        )
    if not args.max_drop:
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


def add_data_arguments(parser: argparse.ArgumentParser, *, features_required: bool) -> None:
    """--features, --target and --input-name: what the models are evaluated on."""
    data = parser.add_argument_group("data")
    data.add_argument(
        "--features", type=Path, required=features_required, help="feature cache (parquet)"
    )
    data.add_argument(
        "--target", default=TARGET_COLUMN, help=f"target column (default: {TARGET_COLUMN})"
    )
    data.add_argument("--input-name", help="model input to feed (default: auto-detect)")
    data.add_argument(
        "--model-timeout",
        type=float,
        default=DEFAULT_MODEL_TIMEOUT,
        metavar="SECONDS",
        help=f"skip a model whose inference takes longer (default: {DEFAULT_MODEL_TIMEOUT:g})",
    )


def check_timeout_argument(args: argparse.Namespace, where: str) -> None:
    """--model-timeout is a positive, finite number of seconds."""
    if not 0 < args.model_timeout < float("inf"):
        raise UsageError(
            f"--model-timeout must be a positive number of seconds, not {args.model_timeout:g}",
            where,
            f"use e.g. --model-timeout {DEFAULT_MODEL_TIMEOUT:g}",
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
