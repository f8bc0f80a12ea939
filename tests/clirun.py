"""Running the project's command lines from tests: in this process, or as a real process.

In-process runs are fast and see monkeypatched environment variables; a real process is how
CI and people call the tools (entry point, interpreter start-up, exit status).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["REPO_ROOT", "CliRun", "call_main", "run_bench", "run_module"]

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class CliRun:
    """What a command line ended with: exit code, standard output, standard error."""

    code: int
    out: str
    err: str


def call_main(package: str, *args: str | Path) -> CliRun:
    """`<package>.cli.main(args)` in this process, with stdout and stderr captured.

    ``package`` is `model_bisect` or `cache_builder`; an argparse exit (`--help`, `--version`)
    is returned as its code like any other.
    """
    main = importlib.import_module(f"{package}.cli").main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = int(main([str(arg) for arg in args]))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    return CliRun(code, out.getvalue(), err.getvalue())


def run_module(
    module: str,
    *args: str | Path,
    env: Mapping[str, str] | None = None,
    cwd: Path = REPO_ROOT,
    timeout: float = 300,
) -> CliRun:
    """`python -m <module> args` in a fresh interpreter (this one's), as CI runs it.

    ``module`` is `model_bisect`, `cache_builder` or `invoke`; ``env`` replaces the whole
    environment when given. Output is decoded as UTF-8 whatever the locale.
    """
    return _process([sys.executable, "-m", module, *map(str, args)], cwd, env, timeout)


def _process(argv: list[str], cwd: Path, env: Mapping[str, str] | None, timeout: float) -> CliRun:
    """One real process, its output decoded as UTF-8 whatever the locale."""
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )
    return CliRun(done.returncode, done.stdout, done.stderr)


def run_bench(*args: str | Path | float, timeout: float = 600) -> CliRun:
    """`python benchmarks/bench.py args` from the checkout, as `nox -s bench` runs it: the
    numbers docs/performance.md records come from this script, so its sections are tested."""
    return _process(
        [sys.executable, "benchmarks/bench.py", *map(str, args)], REPO_ROOT, None, timeout
    )
