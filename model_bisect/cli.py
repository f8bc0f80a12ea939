"""`model-bisect` entry point: parse, dispatch, and turn project errors into exit codes.

Heavy modules (numpy, onnxruntime, ghapi) are imported by the subcommands only when they
run, so `--help` stays instant. The exit codes are `model_bisect.exitcodes.ExitCode`
(`judge` ends with `JudgeExit`, the statuses `git bisect run` reads).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .command_line import Parser, Terminated, add_debug_flag, speak, terminations_unwind
from .commands import compare as compare_cmd
from .commands import judge as judge_cmd
from .commands import nightly as nightly_cmd
from .commands import publish as publish_cmd
from .commands import run as run_cmd
from .errors import BisectError
from .exitcodes import ExitCode

__all__ = ["HANDLERS", "build_parser", "main"]

# Each subcommand's parser and handler; argparse refuses any other command word.
_COMMANDS = {
    "run": run_cmd,
    "publish": publish_cmd,
    judge_cmd.COMMAND: judge_cmd,
    "compare": compare_cmd,
    "nightly": nightly_cmd,
}
HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    name: module.main for name, module in _COMMANDS.items()
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="model-bisect",
        description="Find the first model in a timeline of ONNX quality models that fails a gate.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_debug_flag(parser)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in _COMMANDS.values():
        module.add_parser(sub)
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
        return HANDLERS[args.command](args)

    try:
        with terminations_unwind():  # a SIGTERM still removes run's temporary folder
            return speak(dispatch, argv)
    except Terminated as stop:
        print(f"error: terminated by {stop}", file=sys.stderr)
        return ExitCode.signalled(stop.signum)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
