"""`model-bisect` entry point: parse, dispatch, and turn project errors into exit codes.

Heavy modules (numpy, onnxruntime, ghapi) are imported by the subcommands only when they
run, so `--help` stays instant. The exit codes are `model_bisect.exitcodes.ExitCode`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .commands import publish as publish_cmd
from .commands import run as run_cmd
from .speaking import Parser, add_debug_flag, speak

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="model-bisect",
        description="Find the first model in a timeline of ONNX quality models that fails a gate.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_debug_flag(parser)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    run_cmd.add_parser(sub)
    publish_cmd.add_parser(sub)
    for command in sub.choices.values():
        add_debug_flag(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    def dispatch(words: list[str]) -> int:
        args = build_parser().parse_args(words)
        handler = run_cmd.main if args.command == "run" else publish_cmd.main
        return handler(args)

    return speak(dispatch, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
