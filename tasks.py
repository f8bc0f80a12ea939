"""Invoke tasks: thin names for the chain's commands (regenerate, check, bisect, publish,
nightly, test).

The chain itself is `model-bisect nightly` (in the package, so other repositories run it too);
`invoke nightly` runs it with this repository's settings, and the nightly workflow with
`--publish`. Tasks leave the GitHub token in the environment: it is never put on a command
line, in a log or in the output.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from model_bisect.commands.nightly import unusable_out
from model_bisect.exitcodes import ExitCode

ROOT = Path(__file__).resolve().parent
# The interpreter running invoke has the project and its dev extra installed, so `-m nox` and
# `-m model_bisect` work whether or not its venv is on PATH.
PY = shlex.quote(sys.executable)
NOX = f"{PY} -m nox --noxfile {shlex.quote(str(ROOT / 'noxfile.py'))} --reuse-venv=yes"
MODEL_BISECT = f"{PY} -m model_bisect"
# The nightly's gates, timeline, features and marker live in [tool.model-bisect] of this file.
CONFIG = ROOT / "pyproject.toml"


def _q(path: Path) -> str:
    return shlex.quote(str(path))


def _out(out: str | None) -> Path:
    return Path(out or os.environ.get("BISECT_OUT") or ROOT / "bisect-out").resolve()


def _made_out(out: str | None) -> Path:
    """The output folder, made; exit 3 with one line when it cannot be."""
    out_dir = _out(out)
    problem = unusable_out(out_dir)
    if problem is not None:
        raise Exit(f"error: {problem}: pass --out DIR or set BISECT_OUT", code=ExitCode.INPUT)
    return out_dir


def _fixture(fixture: str | None) -> Path:
    chosen = fixture or os.environ.get("BISECT_FIXTURE_DIR")
    return Path(chosen).resolve() if chosen else ROOT / "testdata" / "bisect"


def _delegate(c: Context, command: str) -> None:
    """Run a `model-bisect` command from the repository root; its exit code is the task's."""
    with c.cd(ROOT):
        result = c.run(command, warn=True, pty=False)
    if result.exited:
        raise Exit(code=int(result.exited))


@task
def regenerate(c: Context) -> None:
    """Rewrite testdata/bisect under the pinned toolchain (nox -s regenerate)."""
    c.run(f"{NOX} -s regenerate", pty=False)


@task(help={"fixture": "fixture folder (default: $BISECT_FIXTURE_DIR or testdata/bisect)"})
def check(c: Context, fixture: str | None = None, out: str | None = None) -> None:
    """Drift-check the fixture under the pinned toolchain into bisect-out/check.json."""
    out_dir = _made_out(out)
    c.run(f"{NOX} -s drift -- --out {_q(_fixture(fixture))} --json {_q(out_dir / 'check.json')}")


@task(help={"models": "timeline to bisect (default: [tool.model-bisect] models)"})
def bisect(
    c: Context, fixture: str | None = None, models: str | None = None, out: str | None = None
) -> None:
    """Bisect with the [tool.model-bisect] settings into bisect-out/result.{json,md}."""
    out_dir = _made_out(out)
    words = [f"{MODEL_BISECT} run --config {_q(CONFIG)} --fail-on-first-bad"]
    words.append(f"--json {_q(out_dir / 'result.json')} --markdown {_q(out_dir / 'result.md')}")
    if fixture:
        words.append(f"--features {_q(Path(fixture).resolve() / 'features.parquet')}")
    timeline = models or (fixture and str(Path(fixture) / "models"))
    if timeline:
        words.append(f"-- {_q(Path(timeline).resolve())}")
    _delegate(c, " ".join(words))


@task(help={"issue": "tracker issue (default: $BISECT_TRACKER_ISSUE)"})
def publish(
    c: Context, issue: str | None = None, report: str | None = None, out: str | None = None
) -> None:
    """Republish an existing bisect-out/result.json to the sticky comment (model-bisect publish)."""
    path = Path(report).resolve() if report else _out(out) / "result.json"
    chosen = issue or os.environ.get("BISECT_TRACKER_ISSUE", "").strip()
    target = f"--issue {shlex.quote(chosen)} " if chosen else ""
    _delegate(c, f"{MODEL_BISECT} publish --config {_q(CONFIG)} {target}--report {_q(path)}")


@task(
    help={
        "publish": "post the comment (default: print it)",
        "issue": "tracker issue (default: $BISECT_TRACKER_ISSUE)",
        "fixture": "fixture folder (default: $BISECT_FIXTURE_DIR or testdata/bisect)",
        "models": "timeline to bisect (default: [tool.model-bisect] models)",
        "out": "output folder (default: $BISECT_OUT or bisect-out)",
    }
)
def nightly(
    c: Context,
    publish: bool = False,
    issue: str | None = None,
    fixture: str | None = None,
    models: str | None = None,
    out: str | None = None,
) -> None:
    """The nightly chain (check, bisect, publish): `model-bisect nightly` with these options."""
    words = [f"{MODEL_BISECT} nightly --config {_q(CONFIG)}"]
    if publish:
        words.append("--publish")
    for flag, value in (("--issue", issue), ("--fixture", fixture), ("--models", models)):
        if value:
            words.append(f"{flag} {shlex.quote(value)}")
    if out:
        words.append(f"--out {_q(Path(out).resolve())}")
    _delegate(c, " ".join(words))


@task
def test(c: Context) -> None:
    """Run the test suite; arguments after `--` go to pytest (invoke test -- -m 'not slow')."""
    with c.cd(ROOT):
        c.run(f"{PY} -m pytest {c.remainder}", pty=False)
