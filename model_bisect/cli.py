"""`model-bisect` entry point: parse, dispatch, and turn project errors into exit codes.

Heavy modules (numpy, onnxruntime, ghapi) are imported by the subcommands only when they
run, so `--help` stays instant. The exit codes are `model_bisect.exitcodes.ExitCode`
(`judge` ends with `JudgeExit`, the statuses `git bisect run` reads).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .command_line import Parser, add_debug_flag, speak
from .commands import compare as compare_cmd
from .commands import judge as judge_cmd
from .commands import publish as publish_cmd
from .commands import run as run_cmd
from .errors import BisectError

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
    judge_cmd.add_parser(sub)
    compare_cmd.add_parser(sub)
    for command in sub.choices.values():
        add_debug_flag(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    def dispatch(words: list[str]) -> int:
        try:
            args = build_parser().parse_args(words)
        except BisectError as exc:  # a usage error must stop `git bisect run`, not blame
            if judge_cmd.requested(words):
                raise judge_cmd.abort(exc) from None
            raise
        args.argv = tuple(words)  # recorded in the report's invocation
        handlers = {"run": run_cmd.main, "publish": publish_cmd.main, "compare": compare_cmd.main}
        return handlers.get(args.command, judge_cmd.main)(args)

    return speak(dispatch, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
