"""`model-bisect publish`: keep the one sticky comment on the tracking issue current."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "main"]


def add_parser(sub: Any) -> None:
    sub.add_parser("publish", help="update the sticky comment on a tracking issue")


def main(args: argparse.Namespace) -> int:
    raise NotImplementedError
