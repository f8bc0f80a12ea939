"""`python -m cache_builder regenerate|check|frames|matrix`: parse, run, speak, exit codes.

The exit codes are the project's `ExitCode`: OK when the fixture (or every matrix combination)
matches, DRIFT when a difference the required level forbids was found, INPUT for unusable input
or usage; argparse's own 2 would read as "regression found" in CI.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from model_bisect import __version__
from model_bisect.command_line import Parser, Terminated, add_debug_flag, speak, terminations_unwind
from model_bisect.errors import InputError, UsageError
from model_bisect.evaluation.features import TARGET_COLUMN
from model_bisect.exitcodes import ExitCode
from model_bisect.files import write_text_atomic
from model_bisect.outputs import check_writable, refuse_inputs

from .layout import DEFAULT_OUT, IMAGES_OUT, FixtureKind

if TYPE_CHECKING:
    from .drift import DriftReport

__all__ = ["build_parser", "main"]

_STYLE = {
    "identical": "green",
    "metadata-only": "yellow",
    "content": "red",
    "missing": "red",
    "extra": "red",
}


# The console script installed by the wheel; `python -m cache_builder` is the other way in.
SCRIPT = "cache-builder"


def _prog() -> str:
    """The name the user typed, so usage lines can be pasted back."""
    return SCRIPT if Path(sys.argv[0]).name == SCRIPT else "python -m cache_builder"


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument(
        "--out", type=Path, help=f"fixture folder (default {DEFAULT_OUT}; {IMAGES_OUT} for images)"
    )
    parser = Parser(
        prog=_prog(),
        description="Make the golden feature cache reproducibly, and check it for drift.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_debug_flag(parser)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    regen = sub.add_parser(
        "regenerate", parents=[common], help="write the fixture (atomically) into --out"
    )
    regen.add_argument(
        "--kind",
        choices=[kind.value for kind in FixtureKind],
        default=FixtureKind.FEATURES.value,
        help="features: the feature cache and linear models; images: tensor caches and CNNs",
    )
    regen.add_argument(
        "--source-features", type=Path, metavar="PARQUET", help="real MOS/DMOS feature parquet"
    )
    regen.add_argument(
        "--target-column", metavar="NAME", help="target column (default: mos, dmos, target, score)"
    )
    chk = sub.add_parser(
        "check", parents=[common], help="regenerate into a temporary folder and compare"
    )
    chk.add_argument(
        "--require",
        choices=("bytes", "content"),
        default="bytes",
        help="bytes: any difference fails (pinned toolchain); content: only content drift fails",
    )
    chk.add_argument("--json", type=Path, metavar="FILE", help="write the findings as JSON")
    chk.add_argument(
        "--source-features", type=Path, metavar="PARQUET", help="the source the fixture came from"
    )
    frames = sub.add_parser(
        "frames",
        help="build a tensor cache from a folder of images and a CSV of scores",
        description=(
            "Decode, convert and resize each image the CSV names (Pillow) into a parquet "
            "tensor cache: a uint8 fixed-shape tensor column `frame` ([C, H, W]), or `ref` "
            "and `dist` for pairs, with `mos`, `file` and optionally `clip`."
        ),
    )
    frames.add_argument("images", type=Path, help="folder the CSV's file names are relative to")
    frames.add_argument("--scores", type=Path, required=True, metavar="CSV", help="CSV of scores")
    frames.add_argument("--out", type=Path, required=True, metavar="PARQUET", help="the cache")
    frames.add_argument("--size", required=True, metavar="WxH", help="resize to, e.g. 224x224")
    frames.add_argument("--mode", choices=("grey", "rgb"), default="grey", help="channels")
    frames.add_argument(
        "--resample",
        choices=("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos"),
        default="bicubic",
        help="Pillow's resampling filter",
    )
    frames.add_argument("--file-column", default="file", metavar="NAME", help="image file names")
    frames.add_argument("--score-column", default="score", metavar="NAME", help="the scores")
    frames.add_argument("--clip-column", metavar="NAME", help="clip ids, written as `clip`")
    frames.add_argument(
        "--reference-column", metavar="NAME", help="reference images: full-reference pairs"
    )
    summary = sub.add_parser(
        "matrix",
        help="summarise the drift matrix from its `check --json` result files",
        description=(
            "Tabulate the drift matrix and write its summary JSON; fails only on content drift "
            "or a missing, extra or unreadable artifact."
        ),
    )
    summary.add_argument("results", type=Path, help="folder of py<X.Y>-<combination>.json files")
    summary.add_argument(
        "--out", type=Path, default=Path("drift-matrix.json"), metavar="FILE", help="summary JSON"
    )
    summary.add_argument(
        "--combos", nargs="*", default=[], metavar="NAME", help="the matrix, in order"
    )
    for command in sub.choices.values():
        add_debug_flag(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        with terminations_unwind():
            return _main(argv)
    except Terminated as stop:
        print(f"error: terminated by {stop}", file=sys.stderr)
        return ExitCode.signalled(stop.signum)


def _main(argv: Sequence[str] | None = None) -> int:
    def dispatch(words: list[str]) -> int:
        args = build_parser().parse_args(words)
        if args.command == "check":
            args.out = args.out or Path(DEFAULT_OUT)
            return _check(args)
        if args.command == "matrix":
            return _matrix(args)
        if args.command == "frames":
            return _frames(args)
        if args.target_column is not None and args.source_features is None:
            raise UsageError("--target-column needs --source-features", None, "add it")
        kind = FixtureKind(args.kind)
        if kind is FixtureKind.IMAGES and args.source_features is not None:
            raise UsageError(
                "--source-features makes a feature fixture", None, "drop --kind images"
            )
        args.out = args.out or Path(kind.default_out)
        return _regenerate(args, kind)

    return speak(dispatch, argv)


@contextlib.contextmanager
def _progress(message: str) -> Iterator[None]:
    """A spinner on stderr for a person watching; nothing in logs or pipes."""
    if sys.stderr.isatty():
        with Console(stderr=True).status(message):
            yield
    else:
        yield


def _console(stream: TextIO) -> Console:
    return Console(file=stream, width=None if stream.isatty() else 120)


def _refuse_output(flag: str, path: Path, inputs: Sequence[Path]) -> None:
    """Before any work: a JSON target must be writable and must not be one of the files the
    command reads (an artifact of the fixture, its manifest, the source, a result file)."""
    fix = f"pass {flag} a new or regular file outside the inputs"
    check_writable(flag, path, fix)
    refuse_inputs([(flag, path)], inputs, noun="the input", fix=fix)


def _fixture_files(folder: Path) -> list[Path]:
    with contextlib.suppress(OSError):
        if folder.is_dir():
            return [p for p in folder.rglob("*") if p.is_file()]
    return []


def _write_json(path: Path, data: object, flag: str) -> None:
    try:
        write_text_atomic(path, json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError(
            f"cannot write ({reason})", str(path), f"pass a writable {flag} FILE"
        ) from None


def _regenerate(args: argparse.Namespace, kind: FixtureKind) -> int:
    from .actions import regenerate, regenerate_images

    if not args.out.resolve().name:  # `/`: the fixture is replaced through a sibling folder
        raise InputError(
            "--out is the root of the file system",
            str(args.out),
            "pass a folder of its own, e.g. testdata/bisect",
        )
    console = _console(sys.stdout)
    if kind is FixtureKind.IMAGES:
        with _progress(f"regenerating {args.out}"):
            manifest = regenerate_images(args.out)
        artifacts = ", ".join(name for name in sorted(manifest.artifacts) if "/" not in name)
        console.print(
            f"wrote {args.out}: {artifacts}, {manifest.origin.models} models, MANIFEST.json",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        return ExitCode.OK
    with _progress(f"regenerating {args.out}"):
        manifest = regenerate(args.out, args.source_features, args.target_column)
    origin = manifest.origin
    console.print(
        f"wrote {args.out}: features.parquet ({origin.rows} rows), {origin.models} models, "
        "MANIFEST.json",
        highlight=False,
        markup=False,  # a path is text, never markup: `[/]x` would be a MarkupError
        soft_wrap=True,
    )
    if origin.source_path is not None:
        renamed = "" if origin.target_column == TARGET_COLUMN else f" renamed to {TARGET_COLUMN!r}"
        console.print(
            f"source {args.source_features}: target column {origin.target_column!r}{renamed}; "
            f"{origin.rows_read} rows read, {origin.dropped_rows} dropped (null, NaN or inf)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    return ExitCode.OK


def _check(args: argparse.Namespace) -> int:
    from .actions import check
    from .drift import Require

    require = Require(args.require)
    if args.json is not None:
        sources = [args.source_features] if args.source_features is not None else []
        _refuse_output("--json", args.json, [*_fixture_files(args.out), *sources])
    with _progress(f"regenerating and comparing {args.out}"):
        report = check(args.out, args.source_features)
    if args.json is not None:
        data = {"fixture": args.out.as_posix(), **report.to_json(require)}
        _write_json(args.json, data, "--json")

    console = _console(sys.stdout)
    # Every text from the fixture or the command line goes in as Text, never as markup: an
    # artifact path or a version like `[/]x` is shown as written.
    table = Table(title=Text(f"cache_builder check: {args.out} (--require {require.value})"))
    table.add_column("artifact", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("detail")
    for finding in report.findings:
        style = _STYLE[finding.kind.value]
        kind = Text(finding.kind.value, style=style)
        table.add_row(Text(finding.path), kind, Text("\n".join(finding.details)))
    console.print(table)
    if report.toolchain:
        changes = ", ".join(str(change) for change in report.toolchain)
        console.print(
            f"toolchain differs from MANIFEST.json: {changes}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    if report.drifted:
        console.print(report.advice(), highlight=False, markup=False, soft_wrap=True)
    failed = report.fails(require)
    if failed:
        console.print(f"[red]drift[/]: --require {require.value} forbids the differences above")
    elif report.drifted:
        console.print("[yellow]match[/]: only metadata differs, which --require content allows")
    else:
        console.print("[green]match[/]: every artifact is byte-identical")
    _tell_actions(args.out, report, require.value, failed)
    return ExitCode.DRIFT if failed else ExitCode.OK


def _tell_actions(out: Path, report: DriftReport, require: str, failed: bool) -> None:
    """Inside GitHub Actions: a summary table, and an annotation for any drift."""
    from model_bisect.publishing import actions as github_actions

    rows = [(finding.path, finding.kind.value) for finding in report.findings]
    advice = [report.advice()] if report.drifted else []
    result = github_actions.check_result(
        out.as_posix(), rows, require=require, failed=failed, advice=advice
    )
    # The fixture (its MANIFEST.json above all) is this step's input: never appended to.
    for line in github_actions.deliver(result, os.environ, _fixture_files(out)):
        print(line)


def _frames(args: argparse.Namespace) -> int:
    from .frames import FrameMode, FramesRequest, Resample, build_frames, parse_size

    if not args.images.is_dir():
        raise InputError("image folder not found", str(args.images), "pass a folder of images")
    _refuse_output("--out", args.out, [args.scores])
    request = FramesRequest(
        images=args.images,
        scores=args.scores,
        out=args.out,
        size=parse_size(args.size),
        mode=FrameMode(args.mode),
        resample=Resample(args.resample),
        file_column=args.file_column,
        score_column=args.score_column,
        clip_column=args.clip_column,
        reference_column=args.reference_column,
    )
    with _progress(f"building {args.out}"):
        rows = build_frames(request)
    width, height = request.size
    _console(sys.stdout).print(
        f"wrote {args.out}: {rows} rows of {request.mode.value} {width}x{height} "
        f"({request.resample.value})",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    return ExitCode.OK


def _matrix(args: argparse.Namespace) -> int:
    from . import matrix

    _refuse_output("--out", args.out, _fixture_files(args.results))
    rows = matrix.summarise(args.results, args.combos)
    if not rows:
        raise InputError(
            "no drift-matrix results", str(args.results), "run `nox -s drift_matrix` first"
        )
    Console(width=max(160, Console().width)).print(matrix.table(rows))
    _write_json(args.out, matrix.to_json(rows), "--out")
    failing = matrix.failing(rows)
    if failing:
        print(f"content drift in: {', '.join(failing)} (see {args.out})", file=sys.stderr)
        return ExitCode.DRIFT
    return ExitCode.OK
