"""`model-bisect publish`: keep the one sticky comment on the tracking issue current.

ghapi and rich are imported inside `main`, so building the parser for `--help` stays instant.

Inputs are untrusted and outputs must not clobber: the report and the error log are read only
when they are regular files, and boundedly; `--body-out` and the job summary are checked
before anything is rendered or sent, and may never be the report or the log themselves.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import TABLE, load_config
from ..errors import BisectError, InputError, UsageError, first_line
from ..exitcodes import ExitCode
from ..files import special_file_kind
from ..outputs import STDOUT, check_writable, refuse_inputs  # --body-out - is standard output
from ._shared import DEFAULT_MARKER, add_config_flag, add_marker_flag, issue_number

if TYPE_CHECKING:
    from ..publishing.history import Run
    from ..report import Report

__all__ = ["MAX_LOG_BYTES", "MAX_REPORT_BYTES", "STDOUT", "add_parser", "main"]

MAX_REPORT_BYTES = 64 << 20  # a report of 10,000 models is about 5 MB
MAX_LOG_BYTES = 4 << 20  # only the log's tail is shown; its last 4 MiB are plenty


def _run_date(text: str) -> str:
    """An ISO date or date-time; without a zone it is taken as UTC."""
    from ..publishing.history import iso_date

    try:
        moment = datetime.fromisoformat(text)
        # At the calendar's edges the shift to UTC leaves it (9999-12-31T23:59-01:00).
        return iso_date(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    except (ValueError, OverflowError):
        shown = repr(text) if len(text) <= 40 else repr(text[:37]) + "..."
        raise argparse.ArgumentTypeError(
            f"date must be ISO 8601 like 2026-11-26T03:00:00Z, not {shown}"
        ) from None


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "publish",
        help="update the sticky comment on a tracking issue",
        description=(
            "Render a bisect report (or a 'wiring broke' log) and keep one comment on a GitHub "
            "issue up to date with it. The token comes from GH_TOKEN or GITHUB_TOKEN."
        ),
    )
    parser.add_argument("--issue", type=issue_number, metavar="N", help="tracking issue number")
    parser.add_argument(
        "--pr",
        type=issue_number,
        metavar="N",
        help="comment on this pull request (default inside Actions: the event's, if it is one)",
    )
    parser.add_argument("--repo", metavar="OWNER/NAME", help="default: $GITHUB_REPOSITORY")
    body = parser.add_mutually_exclusive_group(required=True)
    body.add_argument("--report", type=Path, metavar="FILE", help="report JSON of `run --json`")
    body.add_argument(
        "--wiring-broke",
        action="store_true",
        help="publish that the nightly itself failed, with the tail of --error-log",
    )
    parser.add_argument("--error-log", type=Path, metavar="FILE", help="with --wiring-broke")
    parser.add_argument("--stage", metavar="NAME", help="with --wiring-broke: the stage that broke")
    parser.add_argument(
        "--api-url", metavar="URL", help="default: $GITHUB_API_URL or https://api.github.com"
    )
    add_marker_flag(parser)
    parser.add_argument(
        "--author", metavar="LOGIN", help="whose marker comments to edit (default: the token's)"
    )
    parser.add_argument(
        "--date",
        type=_run_date,
        metavar="ISO",
        help="the run's date in the comment's history (UTC; default: now)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the body (its history holds tonight only), send nothing",
    )
    parser.add_argument("--body-out", type=Path, metavar="FILE", help="also save the body here")
    add_config_flag(parser)


def _shown(path: Path | str) -> str:
    """A path fit for a one-line message: undecodable bytes and control characters escaped."""
    text = repr(str(path))[1:-1]
    return text if len(text) <= 200 else text[:197] + "..."


def _log_text(path: Path) -> str:
    """The error log's tail (at most MAX_LOG_BYTES); an unreadable or special one still
    yields a body, so the comment never goes stale."""
    try:
        kind = special_file_kind(os.stat(path))
        if kind is not None:
            problem = f"it is {kind}, not a regular file"
        else:
            with path.open("rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                handle.seek(max(size - MAX_LOG_BYTES, 0))
                return handle.read(MAX_LOG_BYTES).decode("utf-8", errors="replace")
    except (OSError, ValueError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else first_line(exc)
    print(f"warning: cannot read the error log {_shown(path)}: {problem}", file=sys.stderr)
    return f"(the error log {_shown(path)} could not be read: {problem})"


def _read_report(path: Path) -> Report:
    """``read_report``, after making sure the file is regular and of a sane size, with every
    way a hostile file can fail (nesting 100,000 deep, odd types) turned into one line."""
    from ..report import read_report

    fix = "pass the JSON written by `model-bisect run --json`"
    try:
        kind = special_file_kind(os.stat(path))
        size = path.stat().st_size
    except FileNotFoundError:
        kind, size = None, 0  # read_report names it
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the report ({first_line(exc)})", _shown(path), fix) from None
    if kind is not None:
        raise InputError(f"the report is {kind}, not a regular file", _shown(path), fix)
    if size > MAX_REPORT_BYTES:
        raise InputError(
            f"the report has {size:,} bytes, more than the {MAX_REPORT_BYTES:,} allowed",
            _shown(path),
            fix,
        )
    try:
        report = read_report(path)
    except BisectError as exc:
        raise InputError(first_line(str(exc)), None, None) from None
    except (RecursionError, AttributeError, OverflowError, UnicodeError, ValueError) as exc:
        raise InputError(
            f"not a model-bisect report ({exc.__class__.__name__}: {first_line(exc)})",
            _shown(path),
            fix,
        ) from None
    # Lone surrogates (labels from file names that are not UTF-8) could not be encoded into
    # the body, the history line or the request: they become "?" here, once, for all three.
    data = report.to_json()
    clean = _valid_unicode(data)
    return report if clean == data else type(report).from_json(clean)


def _valid_unicode(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", errors="replace").decode("utf-8")
    if isinstance(value, dict):
        return {_valid_unicode(k): _valid_unicode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_valid_unicode(item) for item in value]
    return value


def _check_outputs(outputs: Sequence[tuple[str, Path]], inputs: Iterable[Path | str]) -> None:
    """Refuse an output that cannot be written, or that is one of the inputs: the body must
    never replace the report (or the log, or a file the report names) it came from."""
    files = [(flag, path) for flag, path in outputs if (flag, str(path)) != ("--body-out", STDOUT)]
    for flag, path in files:
        check_writable(flag, path)
    refuse_inputs(files, inputs, noun="the input", fix="write the body to another file")


Renderer = Callable[[Sequence["Run"]], str]  # the history to show (tonight last) -> body


def _prepare(
    args: argparse.Namespace,
    run_url: str | None,
    secrets: tuple[str, ...],
    date: str,
    commit_base: str | None = None,
) -> tuple[Run, Renderer]:
    """Tonight's history entry, and the body as a function of the history it will carry."""
    from ..publishing.comment import marker, render_markdown, render_wiring_broke
    from ..publishing.history import run_from_report, wiring_broke_run
    from ..publishing.redact import redact_report

    marker(args.marker)  # a bad key is a usage error before any file is read
    if args.wiring_broke:
        if args.error_log is None:
            raise UsageError("--wiring-broke needs --error-log", "publish", "add --error-log FILE")
        log = _log_text(args.error_log)
        return wiring_broke_run(date), lambda runs: render_wiring_broke(
            log,
            marker_key=args.marker,
            run_url=run_url,
            stage=args.stage,
            secrets=secrets,
            history=runs,
        )
    if args.error_log is not None or args.stage is not None:
        raise UsageError(
            "--error-log and --stage go with --wiring-broke", "publish", "drop them or add it"
        )
    report = _read_report(args.report)
    named = [report.features.path, *(entry.path for entry in report.timeline)]
    outputs = [("--body-out", args.body_out)] if args.body_out is not None else []
    _check_outputs(outputs, named)  # the features and models the report was computed from
    # The history keeps labels as they are, so they are redacted before they are stored.
    tonight = run_from_report(redact_report(report, secrets), date)
    return tonight, lambda runs: render_markdown(
        report,
        marker_key=args.marker,
        run_url=run_url,
        secrets=secrets,
        history=runs,
        commit_base=commit_base,
    )


def _tell_actions(
    body: str,
    *,
    action: str,
    url: str | None,
    where: str,
    wiring_broke: bool,
    to_stdout: bool,
    inputs: Sequence[Path],
) -> None:
    """Inside GitHub Actions: a summary with the body folded away, `comment_url`, and an
    error annotation when the nightly's own wiring broke. With `--body-out -` standard output
    holds the body alone, so the annotations go to stderr (the runner reads both)."""
    from ..publishing import actions as github_actions

    result = github_actions.publish_result(
        body, action=action, url=url, where=where, wiring_broke=wiring_broke
    )
    for line in github_actions.deliver(result, os.environ, inputs):
        print(line, file=sys.stderr if to_stdout else sys.stdout)


def _plain(body: str) -> str:
    """The body as valid UTF-8: a lone surrogate (a file name that is not UTF-8, a hostile
    label) would make every write and the HTTP request fail."""
    return body.encode("utf-8", errors="replace").decode("utf-8")


def main(args: argparse.Namespace) -> int:
    from ..files import write_text_atomic
    from ..publishing.comment import run_url_from_env
    from ..publishing.event import commit_url_base
    from ..publishing.github import resolve_token
    from ..publishing.history import append_run, iso_date, read_history
    from ..publishing.redact import redact_body

    env = os.environ
    config = load_config(args.config, Path.cwd())
    if args.marker is None:  # an empty --marker '' stays empty, to be refused, not defaulted
        args.marker = config.marker or DEFAULT_MARKER
    if args.issue is None:
        args.issue = config.tracker_issue
    token = resolve_token(env)
    # A log or a label could carry the token; it must reach neither GitHub nor a file.
    secrets = (token,) if token else ()
    # The job summary is not checked here: one that names an input is left alone by
    # `deliver` with a warning, and publishing goes on (a bad variable changes no result).
    outputs = [("--body-out", args.body_out)] if args.body_out is not None else []
    inputs = [path for path in (args.report, args.error_log) if path is not None]
    _check_outputs(outputs, inputs)  # before anything is read, rendered or sent
    to_stdout = args.body_out is not None and str(args.body_out) == STDOUT
    date = args.date or iso_date(datetime.now(UTC))
    tonight, render = _prepare(args, run_url_from_env(env), secrets, date, commit_url_base(env))
    composed: list[str] = []

    def compose(current: str | None) -> str:
        """Tonight appended to the history read from our own comment (None: a new one)."""
        history = append_run(read_history(current), tonight)
        if current is not None and history.restarted in ("corrupt", "too large"):
            print(
                f"warning: the sticky comment's history line is {history.restarted};"
                " starting a new history",
                file=sys.stderr,
            )
        # Belt and braces: the renderers already redacted before escaping.
        body = _plain(redact_body(render(history.runs), secrets))
        composed.append(body)
        return body

    # (action, url, issue) once publish_comment returned; empty when it never did
    sent: list[tuple[str, str | None, str]] = []

    def save_outputs() -> None:
        """The body sent, or (publish failed first) the one a new comment would get."""
        body = composed[-1] if composed else compose(None)
        if to_stdout:
            sys.stdout.write(body)
        elif args.body_out is not None:
            _write_body(args.body_out, body, write_text_atomic)
        action, url, where = sent[-1] if sent else ("failed", None, "the issue")
        if args.dry_run:
            action, where = "rendered", "dry run"
        _tell_actions(
            body,
            action=action,
            url=url,
            where=where,
            wiring_broke=args.wiring_broke,
            to_stdout=to_stdout,
            inputs=[*inputs, *(p for _, p in outputs if str(p) != STDOUT)],
        )

    if args.dry_run:  # no comment is read: the history shown holds tonight alone
        body = compose(None)
        if not to_stdout:
            sys.stdout.write(body)
        save_outputs()
        return ExitCode.OK
    try:
        return _publish(args, env, token, compose, to_stdout, sent)
    finally:
        save_outputs()


def _write_body(path: Path, body: str, write: Callable[[Path, str], None]) -> None:
    try:
        write(path, body)
    except (OSError, ValueError) as exc:  # a full disk, an I/O error
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise InputError(
            f"cannot write --body-out ({first_line(str(problem))})",
            _shown(path),
            "pass a file path you can write",
        ) from None


def _publish(
    args: argparse.Namespace,
    env: Mapping[str, str],
    token: str | None,
    compose: Callable[[str | None], str],
    to_stdout: bool,
    sent: list[tuple[str, str | None, str]],
) -> int:
    from ..publishing.github import (
        DEFAULT_API_URL,
        check_api_url,
        check_repo,
        check_token,
        publish_comment,
    )

    if token is None:
        raise UsageError(
            "no GitHub token",
            "the environment (GH_TOKEN, GITHUB_TOKEN)",
            "set GH_TOKEN to a token with `issues: write`, or pass --dry-run",
        )
    check_token(token)
    repo = args.repo or env.get("GITHUB_REPOSITORY", "").strip()
    if not repo:
        raise UsageError(
            "no repository", "publish", "pass --repo OWNER/NAME or set GITHUB_REPOSITORY"
        )
    check_repo(repo, "--repo" if args.repo else "GITHUB_REPOSITORY")
    from ..publishing.event import pull_request_number

    # A pull request's run comments on the pull request (GitHub numbers both alike).
    number = args.pr or pull_request_number(env) or args.issue
    if number is None:
        raise UsageError(
            "no tracking issue",
            "publish",
            f"pass --issue N, set tracker-issue in [{TABLE}], or pass --dry-run",
        )
    from_env = env.get("GITHUB_API_URL", "").strip()
    api_url = check_api_url(
        args.api_url or from_env or DEFAULT_API_URL,
        "--api-url" if args.api_url else "GITHUB_API_URL",
    )
    result = publish_comment(
        compose,
        repo=repo,
        issue=number,
        token=token,
        api_url=api_url,
        marker_key=args.marker,
        author=args.author,
    )
    removed = f"; removed {len(result.deleted)} duplicate(s)" if result.deleted else ""
    where = result.url or f"{repo}#{number} comment {result.comment_id}"
    # With --body-out - standard output holds the body alone, so the status line moves aside.
    status = sys.stderr if to_stdout else sys.stdout
    print(f"{result.action} the sticky comment: {where}{removed}", file=status)
    sent.append((result.action, result.url, f"{repo}#{number}"))
    return ExitCode.OK
