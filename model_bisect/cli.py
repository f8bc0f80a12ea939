"""`model-bisect` entry point: parse, dispatch, and turn project errors into exit codes.

Heavy modules (numpy, onnxruntime, ghapi) are imported by the subcommands only when they
run, so `--help` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .commands import publish as publish_cmd
from .commands import run as run_cmd
from .speaking import Parser, speak

__all__ = ["EXIT_DRIFT", "EXIT_INCONCLUSIVE", "EXIT_INPUT", "EXIT_OK", "EXIT_REGRESSION", "main"]

EXIT_OK = 0
EXIT_DRIFT = 1
EXIT_REGRESSION = 2
EXIT_INPUT = 3
EXIT_INCONCLUSIVE = 4


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="model-bisect",
        description="Find the first model in a timeline of ONNX quality models that fails a gate.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    run_cmd.add_parser(sub)
    publish_cmd.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)

    def dispatch() -> int:
        args = build_parser().parse_args(args_list)
        handler = run_cmd.main if args.command == "run" else publish_cmd.main
        return handler(args)

    return speak(dispatch, args_list)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
