"""`model-bisect judge`: one model, one verdict, in the exit status `git bisect run` reads.

    git bisect run model-bisect judge models/m.onnx --features /data/f.parquet --min-plcc 0.85

Every way the run itself can fail (a bad flag, unusable features, an anchor that cannot be
evaluated) ends with JudgeExit.ABORT, never with a code git would read as "bad commit"; a model
that cannot be evaluated at this commit (missing, corrupt, no usable input) is a SKIP.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalogue import CATALOGUE, Direction, MappingName
from ..errors import BisectError, UsageError, first_line
from ..exitcodes import JudgeExit
from ..safetext import printable, unicode_safe
from ..settings import Command
from ._shared import (
    add_cache_arguments,
    add_data_arguments,
    add_gate_arguments,
    cache_from,
    check_gate_arguments,
    gates_from,
)

if TYPE_CHECKING:
    from ..report import Step
    from ..timeline.entry import TimelineEntry

__all__ = ["COMMAND", "JudgeAbort", "abort", "add_parser", "main", "requested", "verdict_line"]

COMMAND = "judge"
_STATUS_EXIT = {"good": JudgeExit.GOOD, "bad": JudgeExit.BAD, "skip": JudgeExit.SKIP}


class JudgeAbort(BisectError):
    """Any project error met by `judge`: git must stop the bisect, not blame the commit."""

    exit_code = JudgeExit.ABORT  # type: ignore[assignment]


def requested(words: Sequence[str]) -> bool:
    """Whether a command line asks for `judge` (the first word that is not an option)."""
    return next((w for w in words if not w.startswith("-")), None) == COMMAND


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        COMMAND,
        help="judge one model for `git bisect run` (exit 0 good, 1 bad, 125 skip, 128 abort)",
        description=(
            "Evaluate one ONNX model on a feature cache and exit as `git bisect run` expects: "
            "0 when every gate holds, 1 when one fails, 125 when the model cannot be evaluated "
            "(git skips the commit), 128 when the run cannot proceed (git stops)."
        ),
    )
    parser.add_argument("model", type=Path, metavar="MODEL", help="the model file to judge")
    parser.add_argument(
        "--anchor",
        type=Path,
        metavar="MODEL",
        help="reference model for --max-drop (keep it outside the repository being bisected)",
    )
    add_data_arguments(parser, Command.JUDGE)
    add_gate_arguments(parser, "the --anchor model", Command.JUDGE)
    add_cache_arguments(parser.add_argument_group("cache"))


def _validate(args: argparse.Namespace) -> None:
    if args.max_drop and args.anchor is None:
        raise UsageError(
            "--max-drop needs a model to compare with",
            "model-bisect judge",
            "add --anchor MODEL (a copy of the known-good model outside the repository)",
        )
    check_gate_arguments(args, "model-bisect judge")
    if args.model.is_dir():
        raise UsageError("MODEL is a folder", str(args.model), "pass one .onnx file")


def _not_a_file(path: Path) -> str | None:
    """Why ``path`` is not a regular file to read ("not found", "is a FIFO, not a regular
    file"), or None. Only stat is asked: a FIFO is never opened, so nothing blocks."""
    from ..files import special_file_kind

    try:
        kind = special_file_kind(os.stat(path))
    except FileNotFoundError:
        return "not found"
    except (OSError, ValueError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return f"cannot be opened ({unicode_safe(problem)})"
    return None if kind is None else f"is {kind}, not a regular file"


def _entry(path: Path) -> TimelineEntry:
    from ..timeline.arguments import from_arguments

    return from_arguments([str(path)])[0]


def verdict_line(step: Step, anchor: Step | None) -> str:
    """`good|bad|skip: LABEL: metrics; reason`, one line whatever the reason held, with escape
    sequences and controls a hostile file name could carry removed."""
    parts = [f"{step.status.value}: {step.label}"]
    if step.metrics is not None:
        m = step.metrics
        parts.append(" ".join(f"{s.name} {s.show(m.value(s.name))}" for s in CATALOGUE))
    if anchor is not None and anchor.metrics is not None:
        a = anchor.metrics
        shown = " ".join(f"{s.name} {s.show(a.value(s.name))}" for s in CATALOGUE)
        parts.append(f"anchor {shown}")
    if step.reason:
        # The gates word a drop for a timeline ("vs first model"); here it is the anchor.
        parts.append(step.reason.replace("vs first model", "vs anchor"))
    return " ".join(printable("; ".join(parts)).split())


def abort(exc: BisectError) -> JudgeAbort:
    """The same message, with the exit status that stops `git bisect run`."""
    return exc if isinstance(exc, JudgeAbort) else JudgeAbort(exc.problem, exc.where, exc.fix)


def main(args: argparse.Namespace) -> int:
    try:
        return _judge(args)
    except BisectError as exc:
        raise abort(exc) from exc
    except Exception as exc:  # a last net: a traceback exits 1, which git reads as "bad"
        raise JudgeAbort(
            f"unexpected {exc.__class__.__name__} ({unicode_safe(first_line(exc))})",
            f"model-bisect judge {unicode_safe(str(args.model))}",
            "rerun with --debug for the traceback and report it",
        ) from exc


def _judge(args: argparse.Namespace) -> int:
    _validate(args)
    from ..engine import RunOptions, judge_model
    from ..report import Status, Step

    gates = gates_from(args)
    anchor = None
    if args.anchor is not None:
        problem = _not_a_file(args.anchor)
        if problem is not None:
            raise UsageError(
                f"anchor model {problem}", str(args.anchor), "pass an existing .onnx file"
            )
        anchor = _entry(args.anchor)
    problem = _not_a_file(args.features)  # checked before the model: no features, no bisect
    if problem is not None:
        raise UsageError(
            f"feature cache {problem}", str(args.features), "pass an existing parquet file"
        )
    if not args.model.exists():  # not at this commit: git should skip it, not stop
        step = Step(0, args.model.name, Status.SKIP, None, "model file not found", 0.0)
        print(verdict_line(step, None))
        return int(JudgeExit.SKIP)
    cache = cache_from(args)
    options = RunOptions(
        gates=gates,
        target=args.target,
        mapping=args.mapping or MappingName.NONE.value,
        alpha=args.significance,
        input_name=args.input_name,
        cache=cache,
        direction=Direction(args.direction),
        model_timeout=args.model_timeout,
        pool_by=args.pool_by,
    )
    judged = judge_model(_entry(args.model), args.features, options, anchor=anchor)
    print(verdict_line(judged.step, judged.anchor))
    return int(_STATUS_EXIT[judged.step.status.value])
