"""`model-bisect nightly`: the whole nightly chain in the package, so any repository can run it.

drift check (when there is a fixture) -> bisect -> publish; when a step before publish fails,
the comment says the wiring broke and quotes that step's log. Each step is a child process of
this interpreter (`-m cache_builder check`, `-m model_bisect run|publish`): cache_builder is a
higher layer than this package, a step that crashes cannot take the chain (and the wiring-broke
comment) down with it, and each log holds exactly what that step printed. A log keeps the
child's bytes (UTF-8, children are told so) and is shown live as it comes, decoded
incrementally, so a box-drawing character split across two reads stays whole.

The run settings (timeline, data, gates, search, marker, cache) are `run`'s own flags, parsed
here so a typo is refused before anything runs, and passed on to the bisect as given; the
composite action calls this command with them.
"""

from __future__ import annotations

import argparse
import codecs
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import TABLE, find_config, load_config
from ..errors import UsageError
from ..exitcodes import ExitCode
from ..files import write_bytes_atomic, write_text_atomic
from ..settings import Command, setting_named
from ..timeline.registry import SOURCES
from ._shared import (
    add_cache_arguments,
    add_config_flag,
    add_data_arguments,
    add_gate_arguments,
    add_marker_flag,
    add_setting,
    add_slice_arguments,
    add_timeline_arguments,
    issue_number,
)

__all__ = ["OUTPUTS", "add_parser", "main", "unusable_out"]

OUTPUTS = ("check.json", "check.log", "bisect.log", "result.json", "result.md", "comment.md")
# The exit codes of `model-bisect run` that carry a verdict worth publishing.
VERDICTS: dict[int, str] = {
    ExitCode.OK: "no regression",
    ExitCode.REGRESSION: "regression found (or the head model already fails)",
    ExitCode.INCONCLUSIVE: "inconclusive",
}
DEFAULT_FIXTURE = Path("testdata") / "bisect"  # cache_builder's default --out
FIXTURE_MANIFEST = "MANIFEST.json"  # what makes a folder a fixture (cache_builder's layout)
READ_CHUNK = 1 << 16


@dataclass(frozen=True)
class Plan:
    """What tonight runs, decided before anything runs: where the files go, which fixture is
    checked (None: none), which timeline and features are bisected, where the comment goes."""

    out: Path
    fixture: Path | None
    models: Path | None  # None: the config's timeline
    features: Path | None  # None: the config's features
    config: Path | None
    target: tuple[str, ...]  # `publish` flags: --dry-run, --issue N, --pr N
    reproduce: str
    run_flags: tuple[str, ...] = ()  # `run`'s flags given to the nightly, passed on as given
    run_models: tuple[str, ...] = ()  # its MODEL arguments, passed after `--`
    marker: str | None = None  # --marker, for the bisect and the comment alike
    fail_on_first_bad: bool = True


def run_flags_parser() -> argparse.ArgumentParser:
    """`run`'s settings as nightly flags (a parent parser, so `nightly --help` lists them and
    `forwarded` finds them again): the timeline sources, the data, the gates, the slices, the
    search, the marker and the cache. The MODEL arguments keep a dest of their own, as
    --models is ours."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("timeline to bisect instead of the config's (one of)")
    add_timeline_arguments(group, models_dest="run_models", models_help=", for run")
    add_data_arguments(parser, Command.RUN)
    add_gate_arguments(parser, "the timeline's first model", Command.RUN)
    add_slice_arguments(parser, Command.RUN)
    search = parser.add_argument_group("search (as for run)")
    for name in ("scan", "jobs", "executor", "ray-address"):
        add_setting(search, setting_named(name), Command.RUN)
    add_cache_arguments(search)
    add_marker_flag(search)
    return parser


def forwarded(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The `run` flags ``args`` holds, spelled again as given (the ones not given left out),
    and the MODEL arguments."""
    words: list[str] = []
    models: list[str] = []
    for action in run_flags_parser()._actions:
        value = getattr(args, action.dest, None)
        if not action.option_strings:
            models = [str(v) for v in value or ()]
            continue
        flag = action.option_strings[0]
        if value is None or value is False:
            continue
        if value is True:
            words.append(flag)
        else:
            for item in value if isinstance(value, list) else [value]:
                words += [flag, str(item)]
    return words, models


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "nightly",
        parents=[run_flags_parser()],
        help="drift check, bisect and sticky comment in one command",
        description=(
            "Run the nightly chain: check the fixture for drift (when there is one), bisect the "
            "timeline of [tool.model-bisect], and publish the verdict, or that the wiring broke, "
            "to the sticky comment. Without --publish the comment is printed, not sent. The "
            "logs, the report and the body go to --out. The run settings below are passed on "
            "to model-bisect run; the timeline ones replace the fixture's models."
        ),
    )
    parser.add_argument(
        "--publish", action="store_true", help="post the comment (default: print it)"
    )
    parser.add_argument(
        "--issue",
        type=issue_number,
        metavar="N",
        help="tracker issue (default: $BISECT_TRACKER_ISSUE, else tracker-issue)",
    )
    parser.add_argument(
        "--pr",
        type=issue_number,
        metavar="N",
        help="comment on this pull request (default inside Actions: the event's, if it is one)",
    )
    parser.add_argument(
        "--fixture",
        type=Path,
        metavar="DIR",
        help="fixture to check and bisect (default: $BISECT_FIXTURE_DIR; else testdata/bisect "
        "is checked when it exists, and the config's timeline bisected)",
    )
    parser.add_argument(
        "--models", type=Path, metavar="PATH", help="timeline to bisect instead of the config's"
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="output folder (default: $BISECT_OUT or bisect-out)"
    )
    parser.add_argument(
        "--fail-on-first-bad",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="exit 2 when a regression is found (a head that already fails always exits 2)",
    )
    add_config_flag(parser)


def unusable_out(out_dir: Path, outputs: Sequence[str] = ()) -> str | None:
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


def _issue_from_env(env: Mapping[str, str]) -> int | None:
    text = env.get("BISECT_TRACKER_ISSUE", "").strip()
    if not text:
        return None
    try:
        return issue_number(text)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(str(exc), "BISECT_TRACKER_ISSUE", "set it to the issue's number") from None


def _target(args: argparse.Namespace, env: Mapping[str, str], tracker: int | None) -> list[str]:
    """The `publish` flags that say where tonight's comment goes; refused before any work."""
    if not args.publish:
        return ["--dry-run"]
    from ..publishing.event import pull_request_number

    if args.pr is not None:
        return ["--pr", str(args.pr)]
    issue = args.issue or _issue_from_env(env) or tracker
    if pull_request_number(env) is not None:  # publish reads the event's number itself
        return [] if issue is None else ["--issue", str(issue)]
    if issue is None:
        raise UsageError(
            "no tracker issue",
            "nightly --publish",
            f"pass --issue N, set BISECT_TRACKER_ISSUE, or set tracker-issue in [{TABLE}]",
        )
    return ["--issue", str(issue)]


def _shown(path: Path, root: Path | None) -> str:
    """A path for the reproduce line: relative to the repository when inside it, so it runs
    from a fresh checkout (an absolute runner path would not)."""
    absolute = Path(os.path.abspath(path))
    if root is not None and absolute.is_relative_to(root):
        return absolute.relative_to(root).as_posix() or "."
    return str(absolute)


def plan(args: argparse.Namespace, env: Mapping[str, str], cwd: Path) -> Plan:
    """Tonight's plan from the flags, the environment and the settings file (pure but for
    reading the settings and looking for a fixture)."""
    from .provenance import repository_root

    config_path = args.config or find_config(cwd.resolve())
    config = load_config(args.config, cwd)
    out = Path(os.path.abspath(args.out or env.get("BISECT_OUT") or cwd / "bisect-out"))
    chosen = args.fixture or (
        Path(env["BISECT_FIXTURE_DIR"]) if env.get("BISECT_FIXTURE_DIR") else None
    )
    base = config_path.parent if config_path is not None else cwd
    default = base / DEFAULT_FIXTURE
    fixture = chosen or (default if (default / FIXTURE_MANIFEST).is_file() else None)
    models = args.models or (chosen / "models" if chosen else None)
    run_flags, run_models = forwarded(args)
    timeline_given = bool(run_models) or any(
        getattr(args, s.dest, None) for s in SOURCES if s.flag is not None
    )
    if args.models is not None and timeline_given:
        raise UsageError(
            "give the timeline exactly one way",
            "model-bisect nightly",
            "pass --models PATH or run's timeline flags (MODEL, --timeline, --git-path), not both",
        )
    if timeline_given:
        models = None  # the timeline asked for replaces the fixture's models
    root = repository_root(Path(os.path.abspath(cwd)))
    words = ["model-bisect", "nightly"]
    for flag, value in (("--fixture", chosen), ("--models", args.models)):
        if value is not None:
            words += [flag, _shown(value, root)]
    if args.config is not None:
        words += ["--config", _shown(args.config, root)]
    words += run_flags
    if not args.fail_on_first_bad:
        words.append("--no-fail-on-first-bad")
    if run_models:
        words += ["--", *run_models]
    return Plan(
        out=out,
        fixture=None if fixture is None else Path(os.path.abspath(fixture)),
        models=None if models is None else Path(os.path.abspath(models)),
        features=None if chosen is None else Path(os.path.abspath(chosen / "features.parquet")),
        config=None if config_path is None else Path(os.path.abspath(config_path)),
        target=tuple(_target(args, env, config.tracker_issue)),
        reproduce=shlex.join(words),  # never --publish: a rerun must not post
        run_flags=tuple(run_flags),
        run_models=tuple(run_models),
        marker=args.marker,
        fail_on_first_bad=args.fail_on_first_bad,
    )


def check_command(step: Plan) -> list[str]:
    assert step.fixture is not None
    return [
        sys.executable, "-m", "cache_builder", "check", "--require", "bytes",
        "--out", str(step.fixture), "--json", str(step.out / "check.json"),
    ]  # fmt: skip


def bisect_command(step: Plan) -> list[str]:
    words = [sys.executable, "-m", "model_bisect", "run"]
    if step.features is not None:
        words += ["--features", str(step.features)]
    if step.config is not None:
        words += ["--config", str(step.config)]
    words += step.run_flags  # after the fixture's --features: what was asked for wins
    if step.fail_on_first_bad:
        words.append("--fail-on-first-bad")
    words += [
        "--json", str(step.out / "result.json"),
        "--markdown", str(step.out / "result.md"),
        "--reproduce", step.reproduce,
    ]  # fmt: skip
    models = [str(step.models)] if step.models is not None else list(step.run_models)
    if models:
        words += ["--", *models]  # a name starting with `-` is still a path
    return words


def _publish_words(step: Plan, body: Sequence[str]) -> list[str]:
    """`publish` for this night: its target, ``body``, the marker and the config."""
    words = [sys.executable, "-m", "model_bisect", "publish", *step.target, *body]
    words += [] if step.marker is None else ["--marker", step.marker]
    if step.config is not None:
        words += ["--config", str(step.config)]
    return words


def publish_command(step: Plan, body: Sequence[str]) -> list[str]:
    return [*_publish_words(step, body), "--body-out", str(step.out / "comment.md")]


def _child_env(env: Mapping[str, str]) -> dict[str, str]:
    """The children speak UTF-8 whatever the locale: their logs are quoted in the comment."""
    return {**env, "PYTHONIOENCODING": "utf-8", "PYTHONUTF8": "1"}


TOKENS = ("GH_TOKEN", "GITHUB_TOKEN")  # what publish authenticates with


def without_tokens(env: Mapping[str, str]) -> dict[str, str]:
    """The check and the bisect never see the token: only publish talks to GitHub, so a model
    file or a fixture cannot make them print or send it."""
    return {k: v for k, v in env.items() if k not in TOKENS}


def _show(data: bytes, decoder: codecs.IncrementalDecoder, final: bool = False) -> None:
    """Bytes of a child's output on our stdout: raw where stdout takes bytes, else decoded
    without splitting a character across two reads."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is not None:
        sys.stdout.flush()
        buffer.write(data)
        buffer.flush()
    else:
        sys.stdout.write(decoder.decode(data, final))


def logged(command: Sequence[str], log: Path, env: Mapping[str, str]) -> int:
    """Run ``command`` with its output (stderr merged, in order) shown live and kept in
    ``log`` as the bytes it printed; its exit code."""
    kept = bytearray(f"$ {shlex.join(command)}\n".encode())
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    with subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=_child_env(env),
    ) as child:  # fmt: skip
        assert child.stdout is not None
        while chunk := os.read(child.stdout.fileno(), READ_CHUNK):
            kept += chunk
            _show(chunk, decoder)
        code = child.wait()
    _show(b"", decoder, final=True)
    write_bytes_atomic(log, bytes(kept))
    return code


def _publish(command: Sequence[str], env: Mapping[str, str]) -> int:
    sys.stdout.flush()
    done = subprocess.run(command, stdin=subprocess.DEVNULL, env=_child_env(env), check=False)
    return done.returncode


def _output_broke(step: Plan, problem: str, env: Mapping[str, str]) -> int:
    """No folder for the chain's files: the night is still a wiring-broke comment (its log a
    temporary file), and the nightly exits 3."""
    with tempfile.TemporaryDirectory(prefix="model-bisect-nightly-") as scratch:
        log = Path(scratch) / "output.log"
        log.write_text(f"{problem}\n", encoding="utf-8")
        body = ["--wiring-broke", "--error-log", str(log), "--stage", "output"]
        _publish(_publish_words(step, body), env)
    print(f"nightly: wiring broke (output): {problem}", file=sys.stderr)
    return ExitCode.INPUT


def main(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    step = plan(args, env, Path.cwd())
    problem = unusable_out(step.out, OUTPUTS)
    if problem is not None:
        return _output_broke(step, f"{problem}: pass --out DIR or set BISECT_OUT", env)
    check_log, bisect_log = step.out / "check.log", step.out / "bisect.log"
    stage: str | None = None
    if step.fixture is None:
        write_text_atomic(check_log, "not run: no fixture (testdata/bisect or --fixture DIR)\n")
        code: int = ExitCode.OK
    else:
        code = logged(check_command(step), check_log, without_tokens(env))
        stage = "check" if code else None
    if stage is None:
        code = logged(bisect_command(step), bisect_log, without_tokens(env))
        if code not in VERDICTS or not (step.out / "result.json").is_file():
            # a bisect that "succeeded" without its report left nothing usable to publish
            stage, code = "bisect", code or ExitCode.INPUT
    else:
        write_text_atomic(bisect_log, "not run: the drift check failed (see check.log)\n")
    body = (
        ["--report", str(step.out / "result.json")]
        if stage is None
        else ["--wiring-broke", "--error-log", str(step.out / f"{stage}.log"), "--stage", stage]
    )
    sent = _publish(publish_command(step, body), env)
    final = code or sent  # the first failure's code is the nightly's
    if final:
        why = f"wiring broke ({stage})" if stage else VERDICTS[code] if code else "publish failed"
        print(f"nightly: {why}; logs and comment body in {step.out}", file=sys.stderr)
    return int(final)
