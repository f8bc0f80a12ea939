"""`model-bisect run`: evaluate a timeline and localise the first bad model."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "main"]


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("run", help="bisect a timeline of models")
    parser.add_argument("models", nargs="*", metavar="MODEL")


def main(args: argparse.Namespace) -> int:
    raise NotImplementedError
