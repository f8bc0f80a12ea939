"""Invoke owns the chain: regenerate, check, bisect, publish, nightly, test.

The nightly workflow runs `invoke nightly --publish`; `invoke nightly` on a laptop runs the same
chain and prints the comment instead of posting it. Tasks call the entry points CI calls (nox
sessions, `model-bisect`) and leave the GitHub token in the environment: it is never put on a
command line, in a log or in the output.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from model_bisect.config import TABLE, Config, read_config
from model_bisect.errors import BisectError
from model_bisect.exitcodes import ExitCode

ROOT = Path(__file__).resolve().parent
# The interpreter running invoke has the project and its dev extra installed, so `-m nox` and
# `-m model_bisect` work whether or not its venv is on PATH.
PY = shlex.quote(sys.executable)
NOX = f"{PY} -m nox --noxfile {shlex.quote(str(ROOT / 'noxfile.py'))} --reuse-venv=yes"
MODEL_BISECT = f"{PY} -m model_bisect"
# The nightly's gates, timeline, features and marker live in [tool.model-bisect] of this file.
CONFIG = ROOT / "pyproject.toml"
VERDICTS = {
    ExitCode.REGRESSION: "regression found (or the head model already fails)",
    ExitCode.INCONCLUSIVE: "inconclusive",
}
# The exit codes of `model-bisect run` that carry a verdict worth publishing.
VERDICT_CODES = (ExitCode.OK, *VERDICTS)
OUTPUTS = ("check.json", "check.log", "bisect.log", "result.json", "result.md", "comment.md")


def _q(path: Path) -> str:
    return shlex.quote(str(path))


def _out(out: str | None) -> Path:
    return Path(out or os.environ.get("BISECT_OUT") or ROOT / "bisect-out").resolve()


def _unusable_out(out_dir: Path, outputs: tuple[str, ...] = ()) -> str | None:
    """Why ``out_dir`` cannot take the chain's files, in one line, or None once it exists and
    last night's ``outputs`` are gone (a stale result.json must never be published as
    tonight's). A file where the folder belongs, a folder under a file, /proc, or an output
    name that is a directory are the operator's to fix, never a traceback."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in outputs:
            path = out_dir / name
            if path.is_dir() and not path.is_symlink():
                return f"output {path} is a directory, not a file"
            path.unlink(missing_ok=True)
    except OSError as exc:
        if isinstance(exc, FileExistsError) or out_dir.is_file():
            return f"output folder {out_dir} is a file, not a folder"
        if isinstance(exc, NotADirectoryError):
            return f"output folder {out_dir} is below a file, not a folder"
        return f"output folder {out_dir} is unusable ({exc.strerror or exc.__class__.__name__})"
    return None


def _made_out(out: str | None) -> Path:
    """The output folder, made; exit 3 with one line when it cannot be."""
    out_dir = _out(out)
    problem = _unusable_out(out_dir)
    if problem is not None:
        raise Exit(f"error: {problem}: pass --out DIR or set BISECT_OUT", code=ExitCode.INPUT)
    return out_dir


def _chosen_fixture(fixture: str | None) -> Path | None:
    """The fixture folder asked for by option or variable; None means the default one."""
    chosen = fixture or os.environ.get("BISECT_FIXTURE_DIR")
    return Path(chosen).resolve() if chosen else None


def _fixture(fixture: str | None) -> Path:
    return _chosen_fixture(fixture) or ROOT / "testdata" / "bisect"


def _config() -> Config:
    try:
        return read_config(CONFIG)
    except BisectError as exc:
        raise Exit(f"error: {exc}", code=exc.exit_code) from None


def _issue(issue: str | None) -> str:
    chosen = issue or os.environ.get("BISECT_TRACKER_ISSUE", "").strip()
    if not chosen and _config().tracker_issue is not None:
        chosen = str(_config().tracker_issue)
    if not chosen:
        raise Exit(
            "error: no tracker issue: pass --issue N, set BISECT_TRACKER_ISSUE, or set "
            f"tracker-issue in [{TABLE}] of {CONFIG.name}",
            code=ExitCode.INPUT,
        )
    return chosen


def _check_cmd(fixture: Path, out: Path) -> str:
    return f"{NOX} -s drift -- --out {_q(fixture)} --json {_q(out / 'check.json')}"


def _bisect_cmd(
    fixture: Path | None, models: str | None, out: Path, reproduce: str | None = None
) -> str:
    """Gates, mapping and marker come from [tool.model-bisect]; so do the timeline and the
    features, unless another fixture or timeline was asked for. ``reproduce`` is what the
    report names as its command, when a chain wraps the run."""
    words = [f"{MODEL_BISECT} run"]
    if models:
        words.append(_q(Path(models).resolve()))
    elif fixture is not None:
        words.append(_q(fixture / "models"))
    if fixture is not None:
        words.append(f"--features {_q(fixture / 'features.parquet')}")
    words += [
        f"--config {_q(CONFIG)} --fail-on-first-bad",
        f"--json {_q(out / 'result.json')} --markdown {_q(out / 'result.md')}",
    ]
    if reproduce:
        words.append(f"--reproduce {shlex.quote(reproduce)}")
    return " ".join(words)


def _nightly_command(fixture: str | None, models: str | None, out: str | None) -> str:
    """`invoke nightly` with the folders it was given: the laptop's way to rerun this night
    (never with --publish: a reproduction must not post to the tracker issue)."""
    words = ["invoke", "nightly"]
    for flag, value in (("--fixture", fixture), ("--models", models), ("--out", out)):
        if value:
            words += [flag, value]
    return shlex.join(words)


def _logged(c: Context, command: str, log: Path) -> int:
    """Run with live output, keep it (stderr merged, in order) in `log`, return the exit code."""
    result = c.run(f"{command} 2>&1", warn=True, pty=False)
    log.write_text(f"$ {command}\n{result.stdout}", encoding="utf-8")
    return int(result.exited)


def _check_exit(code: int, log: Path) -> int:
    """nox exits 1 whatever failed; the check's own code (DRIFT or INPUT) is in its log."""
    found = re.search(r"cache_builder check .* failed with exit code (\d+)", log.read_text())
    return int(found.group(1)) if found else code


@task
def regenerate(c: Context) -> None:
    """Rewrite testdata/bisect under the pinned toolchain (nox -s regenerate)."""
    c.run(f"{NOX} -s regenerate", pty=False)


@task(help={"fixture": "fixture folder (default: $BISECT_FIXTURE_DIR or testdata/bisect)"})
def check(c: Context, fixture: str | None = None, out: str | None = None) -> None:
    """Drift-check the fixture under the pinned toolchain into bisect-out/check.json."""
    out_dir = _made_out(out)
    c.run(_check_cmd(_fixture(fixture), out_dir), pty=False)


@task(help={"models": "timeline to bisect (default: [tool.model-bisect] models)"})
def bisect(
    c: Context, fixture: str | None = None, models: str | None = None, out: str | None = None
) -> None:
    """Bisect with the [tool.model-bisect] settings into bisect-out/result.{json,md}."""
    out_dir = _made_out(out)
    c.run(_bisect_cmd(_chosen_fixture(fixture), models, out_dir), pty=False)


@task(help={"issue": "tracker issue (default: $BISECT_TRACKER_ISSUE)"})
def publish(
    c: Context, issue: str | None = None, report: str | None = None, out: str | None = None
) -> None:
    """Republish an existing bisect-out/result.json to the tracker issue's sticky comment."""
    path = Path(report).resolve() if report else _out(out) / "result.json"
    c.run(
        f"{MODEL_BISECT} publish --config {_q(CONFIG)} --issue {shlex.quote(_issue(issue))} "
        f"--report {_q(path)}"
    )


@task(
    help={
        "publish": "post the comment on the tracker issue (default: print it)",
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
    """The nightly chain: check -> bisect -> render -> publish; exits non-zero unless green."""
    target = f"--issue {shlex.quote(_issue(issue))}" if publish else "--dry-run"
    out_dir, fixture_dir = _out(out), _fixture(fixture)
    problem = _unusable_out(out_dir, OUTPUTS)
    if problem is not None:
        _output_broke(c, target, problem)

    check_log = out_dir / "check.log"
    code = _check_exit(_logged(c, _check_cmd(fixture_dir, out_dir), check_log), check_log)
    stage = "check" if code else None
    if stage is None:
        reproduce = _nightly_command(fixture, models, out)
        command = _bisect_cmd(_chosen_fixture(fixture), models, out_dir, reproduce)
        code = _logged(c, command, out_dir / "bisect.log")
        if code not in VERDICT_CODES or not (out_dir / "result.json").is_file():
            # a bisect that "succeeded" without its report left nothing usable to publish
            stage, code = "bisect", code or ExitCode.INPUT
    else:
        (out_dir / "bisect.log").write_text("not run: the drift check failed (see check.log)\n")

    body = (
        f"--report {_q(out_dir / 'result.json')}"
        if stage is None
        else f"--wiring-broke --error-log {_q(out_dir / f'{stage}.log')} --stage {stage}"
    )
    sent = c.run(
        f"{MODEL_BISECT} publish --config {_q(CONFIG)} {target} {body} "
        f"--body-out {_q(out_dir / 'comment.md')}",
        warn=True,
        pty=False,
    )
    final = code or int(sent.exited)  # the first failure's ExitCode is the nightly's
    if final:
        why = f"wiring broke ({stage})" if stage else VERDICTS.get(code, "publish failed")
        raise Exit(f"nightly: {why}; logs and comment body in {out_dir}", code=final)


def _output_broke(c: Context, target: str, problem: str) -> NoReturn:
    """The chain cannot even start (no folder for its files): the night is still a wiring
    broke comment, its log a temporary file, and the nightly exits 3."""
    with tempfile.TemporaryDirectory(prefix="model-bisect-nightly-") as scratch:
        log = Path(scratch) / "output.log"
        log.write_text(f"{problem}\n", encoding="utf-8")
        c.run(
            f"{MODEL_BISECT} publish --config {_q(CONFIG)} {target} "
            f"--wiring-broke --error-log {_q(log)} --stage output",
            warn=True,
            pty=False,
        )
    raise Exit(f"nightly: wiring broke (output): {problem}", code=ExitCode.INPUT)


@task
def test(c: Context) -> None:
    """Run the test suite; arguments after `--` go to pytest (invoke test -- -m 'not slow')."""
    with c.cd(ROOT):
        c.run(f"{PY} -m pytest {c.remainder}", pty=False)
