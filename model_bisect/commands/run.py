"""`model-bisect run`: evaluate a timeline and localise the first bad model.

Everything heavy (numpy, onnxruntime, scipy, rich) is imported inside `main`, so the
parser can be built for `--help` without loading it.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalogue import CATALOGUE, Direction
from ..config import TABLE, Config, load_config
from ..errors import BisectError, InputError, UsageError, first_line
from ..executors import Executor, ExecutorKind
from ..exitcodes import ExitCode
from ..outputs import STDOUT, check_outputs, refuse_inputs
from ..safetext import printable, unicode_safe
from ..settings import SETTINGS, Command, setting_named
from ..timeline.registry import SOURCES, TimelineSource
from ._shared import (
    DEFAULT_MARKER,
    add_cache_arguments,
    add_config_flag,
    add_data_arguments,
    add_gate_arguments,
    add_marker_flag,
    add_setting,
    add_slice_arguments,
    add_timeline_arguments,
    cache_from,
    check_gate_arguments,
    check_slice_arguments,
    gates_from,
)

if TYPE_CHECKING:
    from ..report import Invocation, Report, Step
    from ..timeline.entry import TimelineEntry

__all__ = ["add_parser", "exit_code_for", "main"]


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "run",
        help="bisect a timeline of models",
        description=(
            "Evaluate ONNX quality models on a feature cache and find the first one that fails "
            "the gates, in about log2(n) evaluations."
        ),
    )
    add_timeline_arguments(parser.add_argument_group("timeline (one of)"))

    add_data_arguments(parser, Command.RUN)  # [tool.model-bisect] may name the features

    add_gate_arguments(parser, "the timeline's first model", Command.RUN)
    add_slice_arguments(parser, Command.RUN)

    search = parser.add_argument_group("search")
    add_setting(search, setting_named("scan"), Command.RUN)
    add_setting(search, setting_named("jobs"), Command.RUN)
    search.add_argument(
        "--fail-on-first-bad", action="store_true", help="exit 2 when a regression is found"
    )
    add_setting(search, setting_named("executor"), Command.RUN)
    add_setting(search, setting_named("ray-address"), Command.RUN)
    add_cache_arguments(search)
    search.add_argument(
        "--cache-max-mb",
        type=float,
        metavar="MB",
        help="after the run, prune the evaluation cache's least recently used entries down to"
        " MB (default $MODEL_BISECT_CACHE_MAX_MB, else 2048)",
    )

    out = parser.add_argument_group("output")
    out.add_argument(
        "--json", type=Path, metavar="FILE", help="write the report (JSON); - for stdout"
    )
    out.add_argument(
        "--markdown", type=Path, metavar="FILE", help="write the comment body; - for stdout"
    )
    add_marker_flag(out)
    out.add_argument("--quiet", action="store_true", help="no table on stdout")
    out.add_argument(
        "--reproduce",
        metavar="COMMAND",
        help="the command the report says reproduces it (default: this command line)",
    )
    add_config_flag(parser)


def _cache_bound(args: argparse.Namespace) -> int:
    """The cache folder's bound in bytes: ``--cache-max-mb``, else the variable, else the
    default; a value that is not a positive number is a usage error naming where it came from."""
    from ..evaluation.cache import DEFAULT_MAX_MB

    where, text = "--cache-max-mb", args.cache_max_mb
    if text is None:
        where, text = "MODEL_BISECT_CACHE_MAX_MB", os.environ.get("MODEL_BISECT_CACHE_MAX_MB")
    if text is None or text == "":
        return DEFAULT_MAX_MB << 20
    try:
        megabytes = float(text)
    except ValueError:
        megabytes = math.nan
    if not (math.isfinite(megabytes) and megabytes > 0):
        raise UsageError(
            f"the evaluation cache bound must be a positive number of MB, not {text!r}",
            where,
            f"use a number such as {DEFAULT_MAX_MB}, or pass --no-cache",
        )
    return int(megabytes * (1 << 20))


def _executor_from(args: argparse.Namespace) -> Executor:
    """``--executor``/``--ray-address`` (the config's keys filled in already)."""
    kind = ExecutorKind(args.executor or ExecutorKind.LOCAL.value)
    if args.ray_address is not None and kind is not ExecutorKind.RAY:
        raise UsageError(
            "--ray-address needs --executor ray",
            "model-bisect run",
            "add --executor ray, or drop --ray-address",
        )
    if kind is ExecutorKind.RAY:
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise UsageError(
                "--executor ray needs Ray, which is not installed",
                "model-bisect run",
                "pip install 'model-bisect[ray]', or use --executor local",
            )
    return Executor(kind, args.ray_address or None)


def _apply_config(args: argparse.Namespace, config: Config) -> None:
    """Fill what the command line left out from the file: flags always win. The timeline and
    the gates are each one setting: any timeline source or gate flag replaces the file's."""
    if not any(_given(args, source) for source in SOURCES):
        for source in SOURCES:
            values = list(config.timelines.get(source.name, ()))
            setattr(args, source.dest, values if source.many else next(iter(values), None))
            for option in source.options:  # the file's rev-range refines the file's git-path
                if getattr(args, option.dest) is None:
                    setattr(args, option.dest, config.source_options.get(option.dest))
    gate_flags = any(getattr(args, spec.dest) is not None for spec in CATALOGUE) or args.max_drop
    if not gate_flags:
        for spec in CATALOGUE:
            setattr(args, spec.dest, config.thresholds.get(spec.name))
        args.max_drop = list(config.max_drop)
    for setting in SETTINGS:
        # a drop's significance belongs to the file's gates: gate flags replace both
        ours = not (gate_flags and setting.name == "significance")
        if ours and setting.name in config.values and getattr(args, setting.dest) is None:
            setattr(args, setting.dest, config.values[setting.name])
        elif getattr(args, setting.dest) is None:
            setattr(args, setting.dest, setting.default)
    if args.marker is None:  # an empty --marker '' stays empty, to be refused, not defaulted
        args.marker = config.marker or DEFAULT_MARKER


def _validate(args: argparse.Namespace) -> None:
    if args.features is None:
        raise UsageError(
            "no feature cache",
            "model-bisect run",
            f"pass --features PARQUET or set features in [{TABLE}]",
        )
    given = [source for source in SOURCES if _given(args, source)]
    if len(given) != 1:
        ways = ", or ".join(
            f"{s.metavar} arguments" if s.flag is None else s.spelled for s in SOURCES
        )
        raise UsageError(
            "give the timeline exactly one way",
            "model-bisect run",
            f"pass {ways} (or set one in [{TABLE}])",
        )
    for source in SOURCES:
        for option in source.options:
            if getattr(args, option.dest) and source is not given[0]:
                raise UsageError(
                    f"{option.flag} needs {source.flag or source.metavar}",
                    "model-bisect run",
                    f"add {source.spelled}",
                )
    value = getattr(args, given[0].dest)
    if any(isinstance(v, str) and not v for v in (value if isinstance(value, list) else [value])):
        raise UsageError(  # '' would silently mean the current folder
            f"an empty {given[0].metavar} argument",
            "model-bisect run",
            "pass a model file, folder or glob ('.' for the current folder)",
        )
    check_gate_arguments(args, "model-bisect run")
    check_slice_arguments(args, "model-bisect run")
    args.executor_spec = _executor_from(args)
    args.cache_bytes = _cache_bound(args)
    if not args.marker or args.markdown is not None:  # checked before any work, not at render
        from ..publishing.comment import marker

        marker(args.marker)


def _given(args: argparse.Namespace, source: TimelineSource) -> tuple[str, ...]:
    """The paths the command line (or the config, once applied) gives ``source``."""
    value = getattr(args, source.dest)
    if source.many:
        return tuple(value or ())
    return () if value is None else (str(value),)


def _chosen(args: argparse.Namespace) -> TimelineSource:
    """The one source given (``_validate`` made sure there is exactly one)."""
    return next(source for source in SOURCES if _given(args, source))


def _entries(args: argparse.Namespace, workdir: Path) -> list[TimelineEntry]:
    source = _chosen(args)
    options = {option.dest: getattr(args, option.dest) for option in source.options}
    return source.build(_given(args, source), options, workdir)


def _source_inputs(args: argparse.Namespace) -> list[Path]:
    """The files the timeline source itself names and reads (a timeline file, a tracked
    model): no output may replace them."""
    source = _chosen(args)
    return [Path(value) for value in _given(args, source)] if source.read_as_input else []


def exit_code_for(report: Report, *, fail_on_first_bad: bool) -> ExitCode:
    """A head that already fails is always REGRESSION (there is nothing good to bisect from); a
    localised regression is a finding, and an error only when the caller asks for one; skipped
    models that hide the boundary are INCONCLUSIVE."""
    from ..report import VerdictKind

    kind = report.verdict.kind
    if kind is VerdictKind.HEAD_BAD:
        return ExitCode.REGRESSION
    if kind is VerdictKind.REGRESSION:
        return ExitCode.REGRESSION if fail_on_first_bad else ExitCode.OK
    if kind is VerdictKind.INCONCLUSIVE:
        return ExitCode.INCONCLUSIVE
    return ExitCode.OK


def main(args: argparse.Namespace) -> int:
    config = load_config(args.config, Path.cwd())
    _apply_config(args, config)
    _validate(args)
    check_outputs(_outputs(args))
    args.config_source = config.source  # an input too: no output may replace it
    try:
        return _main(args)
    except BisectError:
        raise
    except Exception as exc:  # a last net: whatever a hostile input provokes, one line
        raise InputError(
            f"unexpected {exc.__class__.__name__} ({unicode_safe(first_line(exc))})",
            "model-bisect run",
            "rerun with --debug for the traceback and report it",
        ) from exc


def _outputs(args: argparse.Namespace) -> list[tuple[str, Path]]:
    return [
        (flag, path)
        for flag, path in (("--json", args.json), ("--markdown", args.markdown))
        if path is not None
    ]


def _main(args: argparse.Namespace) -> int:
    from ..engine import RunOptions
    from ..files import write_text_atomic
    from ..publishing.terminal import print_report
    from ..report import dumps
    from .provenance import invocation

    gates = gates_from(args)
    cache = cache_from(args)
    if cache is not None:
        cache.check_usable()
    options = RunOptions(
        gates=gates,
        target=args.target,
        mapping=args.mapping,
        alpha=args.significance,
        jobs=args.jobs,
        scan=args.scan,
        input_name=args.input_name,
        cache=cache,
        direction=Direction(args.direction),
        model_timeout=args.model_timeout,
        row_id=args.row_id,
        pool_by=args.pool_by,
        slice_by=tuple(args.slice_by or ()),
        gate_slices=bool(args.gate_slices),
        min_slice_rows=args.min_slice_rows,
        executor=args.executor_spec,
    )
    invoked = invocation(
        args.argv,  # set by cli.main: the words this command was given
        cwd=Path.cwd(),
        env=os.environ,
        reproduce=args.reproduce,
        config=args.config_source,
    )
    from ..publishing.redact import redact, redact_report
    from .provenance import TOKEN_VARIABLES

    # The token's value, whatever its shape, is masked in labels (so on the live terminal
    # too) and everywhere in the report, the comment body and the table.
    secrets = [os.environ.get(name, "") for name in TOKEN_VARIABLES]
    with tempfile.TemporaryDirectory(prefix="model-bisect-") as tmp:
        entries = [replace(e, label=redact(e.label, secrets)) for e in _entries(args, Path(tmp))]
        inputs = [args.features, *_source_inputs(args), args.config_source]
        inputs += [p for e in entries for p in (e.path, *e.companions)]
        read = [p for p in inputs if p is not None]
        refuse_inputs(_outputs(args), read)
        report = redact_report(
            _run_with_progress(entries, args.features, options, invoked), secrets
        )
    if cache is not None:  # the entries this run used stay, whatever their size
        cache.prune(args.cache_bytes)

    texts: dict[str, str] = {}
    if args.json is not None:
        texts["--json"] = dumps(report)
    if args.markdown is not None:
        from ..publishing.comment import render_markdown, run_url_from_env
        from ..publishing.event import commit_url_base

        texts["--markdown"] = render_markdown(
            report,
            marker_key=args.marker,
            run_url=run_url_from_env(os.environ),
            commit_base=commit_url_base(os.environ),
        )
    table_stream = sys.stdout
    for flag, path in _outputs(args):
        if str(path) == STDOUT:
            table_stream = sys.stderr  # stdout carries the document: `--json - | jq` works
            _to_stdout(texts[flag])
        else:
            _write(flag, path, texts[flag], write_text_atomic)
    if not args.quiet:
        from rich.console import Console

        print_report(report, Console(file=table_stream))
    # With `--json -` the report went to stdout: Actions gets one written under $RUNNER_TEMP,
    # and its lines go where the table went, so stdout stays one JSON document.
    written = [p for _, p in _outputs(args) if str(p) != STDOUT]
    _tell_actions(
        report, args.json if str(args.json) != STDOUT else None, table_stream, [*read, *written]
    )
    return exit_code_for(report, fail_on_first_bad=args.fail_on_first_bad)


def _to_stdout(text: str) -> None:
    """UTF-8 bytes whatever the locale; a plain text stream when stdout has no buffer."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        sys.stdout.write(text)
        return
    sys.stdout.flush()
    buffer.write(text.encode("utf-8"))
    buffer.flush()


def _write(flag: str, path: Path, text: str, write: Any) -> None:
    try:
        write(path, text)
    except OSError as exc:
        raise InputError(
            f"cannot write {flag} ({exc.strerror or exc.__class__.__name__})",
            unicode_safe(str(path)),
            "choose a writable file path",
        ) from None


def _tell_actions(
    report: Report, json_path: Path | None, stream: Any, inputs: Sequence[Path | str]
) -> None:
    """Inside GitHub Actions: summary, outputs, annotations. Without --json the report goes
    to a new file under $RUNNER_TEMP, so the `report` output always names one."""
    from ..files import write_text_atomic
    from ..publishing import actions as github_actions
    from ..report import dumps

    env = os.environ
    if not github_actions.in_actions(env):
        return
    path, problem = json_path, None
    if path is None:
        folder = Path(env.get("RUNNER_TEMP") or tempfile.gettempdir())
        try:
            handle, name = tempfile.mkstemp(prefix="model-bisect-", suffix=".json", dir=folder)
            os.close(handle)
            path = Path(name)
            write_text_atomic(path, dumps(report))
        except OSError as exc:
            problem = f"cannot write the report under {folder}: {exc.strerror or exc}"
    result = github_actions.run_result(report, path, env)
    for line in github_actions.deliver(result, env, inputs):
        print(line, file=stream)
    if problem is not None:
        print(
            github_actions.Annotation(github_actions.Level.WARNING, problem).command(),
            file=stream,
        )


def _watched_stderr() -> Any:
    """A rich console on stderr when a person is watching it, else None. Every setting that
    can make rich call stderr a terminal is checked first, so an unwatched run (CI, a pipe)
    never imports rich."""
    overrides = ("FORCE_TERMINAL", "TTY_COMPATIBLE", "FORCE_COLOR")
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        tty = bool(isatty and isatty())
    except ValueError:  # a closed stream
        tty = False
    if not tty and not any(name in os.environ for name in overrides):
        return None
    from rich.console import Console

    err = Console(stderr=True)
    return err if err.is_terminal else None


def _run_with_progress(
    entries: list[TimelineEntry], features: Path, options: Any, invoked: Invocation
) -> Report:
    """A progress line on stderr while models are evaluated, only when a person is watching."""
    from ..engine import run

    err = _watched_stderr()
    if err is None:
        return run(entries, features, options, invocation=invoked)
    from rich.markup import escape
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,  # gone once the run ends: the table is what stays on screen
    ) as progress:
        task = progress.add_task(f"bisecting {len(entries)} models", total=None)
        visited = 0

        def on_step(step: Step) -> None:
            nonlocal visited
            visited += 1
            label = escape(printable(step.label))  # the column reads rich markup: "[/]" fails
            progress.update(
                task,
                description=f"{visited} visited; #{step.index} {label}: {step.status.value}",
            )

        return run(entries, features, options, on_step=on_step, invocation=invoked)
