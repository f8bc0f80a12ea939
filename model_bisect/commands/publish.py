"""`model-bisect publish`: keep the one sticky comment on the tracking issue current.

ghapi and rich are imported inside `main`, so building the parser for `--help` stays instant.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError, UsageError
from ..exitcodes import ExitCode

if TYPE_CHECKING:
    from ..history import Run

__all__ = ["add_parser", "main"]

_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


def _issue_number(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"issue must be a positive number, not {text!r}")
    return int(text)


def _run_date(text: str) -> str:
    """An ISO date or date-time; without a zone it is taken as UTC."""
    from ..history import iso_date

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"date must be ISO 8601 like 2026-11-26T03:00:00Z, not {text!r}"
        ) from None
    return iso_date(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "publish",
        help="update the sticky comment on a tracking issue",
        description=(
            "Render a bisect report (or a 'wiring broke' log) and keep one comment on a GitHub "
            "issue up to date with it. The token comes from GH_TOKEN or GITHUB_TOKEN."
        ),
    )
    parser.add_argument("--issue", type=_issue_number, metavar="N", help="tracking issue number")
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
    parser.add_argument("--marker", default="nightly", metavar="KEY", help="sticky-comment key")
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


def _log_text(path: Path) -> str:
    """The error log; an unreadable one still yields a body, so the comment never goes stale."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        print(f"warning: cannot read the error log {path}: {exc.strerror}", file=sys.stderr)
        return f"(the error log {path} could not be read: {exc.strerror})"


Renderer = Callable[[Sequence["Run"]], str]  # the history to show (tonight last) -> body


def _prepare(
    args: argparse.Namespace, run_url: str | None, secrets: tuple[str, ...], date: str
) -> tuple[Run, Renderer]:
    """Tonight's history entry, and the body as a function of the history it will carry."""
    from ..comment import marker, render_markdown, render_wiring_broke
    from ..history import run_from_report, wiring_broke_run
    from ..redact import redact_report
    from ..report import read_report

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
    report = read_report(args.report)
    # The history keeps labels as they are, so they are redacted before they are stored.
    tonight = run_from_report(redact_report(report, secrets), date)
    return tonight, lambda runs: render_markdown(
        report, marker_key=args.marker, run_url=run_url, secrets=secrets, history=runs
    )


def _append_summary(path: str, body: str) -> None:
    """GitHub's job summary is appended to by every step, so append rather than replace."""
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(body if body.endswith("\n") else body + "\n")
    except OSError as exc:
        raise InputError(
            f"cannot append to the job summary ({exc.strerror})",
            path,
            "check GITHUB_STEP_SUMMARY",
        ) from None


def main(args: argparse.Namespace) -> int:
    from ..comment import run_url_from_env
    from ..files import write_text_atomic
    from ..history import append_run, iso_date, read_history
    from ..publish import resolve_token

    env = os.environ
    token = resolve_token(env)
    # A log or a label could carry the token; it must reach neither GitHub nor a file.
    secrets = (token,) if token else ()
    date = args.date or iso_date(datetime.now(UTC))
    tonight, render = _prepare(args, run_url_from_env(env), secrets, date)
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
        body = render(history.runs)
        if token:  # belt and braces: the renderers already redacted before escaping
            body = body.replace(token, "***")
        composed.append(body)
        return body

    def save_outputs() -> None:
        """The body sent, or (publish failed first) the one a new comment would get."""
        body = composed[-1] if composed else compose(None)
        if args.body_out is not None:
            write_text_atomic(args.body_out, body)
        if env.get("GITHUB_STEP_SUMMARY"):
            _append_summary(env["GITHUB_STEP_SUMMARY"], body)

    if args.dry_run:  # no comment is read: the history shown holds tonight alone
        save_outputs()
        sys.stdout.write(composed[-1])
        return ExitCode.OK
    try:
        return _publish(args, env, token, compose)
    finally:
        save_outputs()


def _publish(
    args: argparse.Namespace,
    env: Mapping[str, str],
    token: str | None,
    compose: Callable[[str | None], str],
) -> int:
    from ..publish import DEFAULT_API_URL, publish_comment

    if token is None:
        raise UsageError(
            "no GitHub token",
            "the environment (GH_TOKEN, GITHUB_TOKEN)",
            "set GH_TOKEN to a token with `issues: write`, or pass --dry-run",
        )
    repo = args.repo or env.get("GITHUB_REPOSITORY", "").strip()
    if not repo:
        raise UsageError(
            "no repository", "publish", "pass --repo OWNER/NAME or set GITHUB_REPOSITORY"
        )
    if not _REPO.fullmatch(repo):
        raise UsageError(f"invalid repository {repo!r}", "--repo", "use OWNER/NAME")
    if args.issue is None:
        raise UsageError("no tracking issue", "publish", "pass --issue N (or --dry-run)")
    api_url = args.api_url or env.get("GITHUB_API_URL", "").strip() or DEFAULT_API_URL
    result = publish_comment(
        compose,
        repo=repo,
        issue=args.issue,
        token=token,
        api_url=api_url,
        marker_key=args.marker,
        author=args.author,
    )
    removed = f"; removed {len(result.deleted)} duplicate(s)" if result.deleted else ""
    where = result.url or f"{repo}#{args.issue} comment {result.comment_id}"
    print(f"{result.action} the sticky comment: {where}{removed}")
    return ExitCode.OK
