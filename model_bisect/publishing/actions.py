"""Speaking to a GitHub Actions runner: job summary, step outputs and annotations.

Only when ``GITHUB_ACTIONS=true``; elsewhere the tools write none of it. The runner reads
outputs and the summary from files it names in ``GITHUB_OUTPUT`` and ``GITHUB_STEP_SUMMARY``,
and annotations from ``::error``/``::warning`` lines on stdout. A file that cannot be written
becomes a warning, never a failure: the exit code is the verdict CI acts on, and turning a
regression (2) into a write error (3) would hide it; the report file still holds everything.

The texts are built by pure functions; `deliver` is the one place that touches the files,
and it returns the lines for the CLI to print rather than printing them.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from ..outputs import file_identity
from ..safetext import own_command

if TYPE_CHECKING:
    from ..report import Report

__all__ = [
    "ANNOTATIONS_FILE",
    "CHECK_OUTPUTS",
    "PUBLISH_OUTPUTS",
    "RUN_OUTPUTS",
    "Annotation",
    "Level",
    "StepResult",
    "check_result",
    "deliver",
    "escape_data",
    "escape_property",
    "in_actions",
    "output_text",
    "publish_result",
    "run_result",
]

# What each entry point writes to $GITHUB_OUTPUT; action.yml maps its outputs from these.
RUN_OUTPUTS = (
    "verdict",
    "first_bad_index",
    "first_bad_label",
    "last_good_index",
    "evaluations",
    "report",
    "culprit_summary",
)
PUBLISH_OUTPUTS = ("comment_url",)
CHECK_OUTPUTS: tuple[str, ...] = ()

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
TITLE = "model-bisect"
TITLE_CB = "cache_builder check"


class Level(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTICE = "notice"


# Set by action.yml: where annotations go while the tool's output cannot issue commands.
ANNOTATIONS_FILE = "MODEL_BISECT_ANNOTATIONS_FILE"


def in_actions(env: Mapping[str, str]) -> bool:
    """GitHub sets GITHUB_ACTIONS=true in every step; nothing else counts."""
    return env.get("GITHUB_ACTIONS") == "true"


def escape_data(text: str) -> str:
    """A workflow command's message: one line, whatever the text held."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A property value (title, file): also ':' and ',', which separate properties."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


@dataclass(frozen=True)
class Annotation:
    """One ``::error``/``::warning`` line; the runner shows it on the run's page."""

    level: Level
    message: str
    title: str = TITLE

    def command(self) -> str:
        return f"::{self.level.value} title={escape_property(self.title)}::" + escape_data(
            self.message
        )


@dataclass(frozen=True)
class StepResult:
    """Everything one command tells the runner."""

    summary: str
    outputs: Mapping[str, str] = field(default_factory=dict)
    annotations: tuple[Annotation, ...] = ()


def output_text(outputs: Mapping[str, str], token: Callable[[], str] | None = None) -> str:
    """``$GITHUB_OUTPUT`` lines in the heredoc form, which carries any value (newlines too);
    the delimiter is random, and never a line of the value it closes."""
    make = token or (lambda: f"ghadelimiter_{secrets.token_hex(16)}")
    lines = []
    for name, value in outputs.items():
        if not _NAME.fullmatch(name):
            raise ValueError(f"invalid output name {name!r}")
        delimiter = make()
        while delimiter in value.splitlines() or not _NAME.fullmatch(delimiter):
            delimiter = make()
        lines += [f"{name}<<{delimiter}", value, delimiter]
    return "".join(line + "\n" for line in lines)


def _append(
    variable: str, text: str, env: Mapping[str, str], inputs: frozenset[tuple[object, ...]]
) -> str | None:
    """Append to the file the runner named; the problem, in one line, if that failed.

    A file that is one of the step's inputs (the features, a model, the report being
    published, a fixture's MANIFEST.json) is never appended to: the variable is wrong, and
    the step's result must not depend on it, so it is left out with a warning."""
    name = env.get(variable, "").strip()
    what = variable.split("_")[-1].lower()
    if not name:
        return f"{variable} is not set, so this step's {what} is lost"
    if file_identity(name) in inputs:
        return f"{variable} ({name!r}) is one of this step's inputs: left alone, its {what} is lost"
    try:  # non-blocking: a FIFO that nobody reads is a problem to report, not a hang
        fd = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o666)
        with os.fdopen(fd, "ab") as handle:
            handle.write(text.encode("utf-8", errors="replace"))
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        return f"cannot append to {variable} ({name!r}): {reason}"
    return None


def deliver(
    result: StepResult, env: Mapping[str, str], inputs: Iterable[str | Path] = ()
) -> list[str]:
    """Write the summary and outputs; return the workflow-command lines for stdout (the
    annotations, then a warning per file that could not be written, or that is one of the
    step's ``inputs`` and so is not written). Outside Actions: []."""
    if not in_actions(env):
        return []
    known = frozenset(file_identity(path) for path in inputs)
    problems = []
    if result.summary:
        summary = result.summary if result.summary.endswith("\n") else result.summary + "\n"
        problems.append(_append("GITHUB_STEP_SUMMARY", summary, env, known))
    if result.outputs:
        problems.append(_append("GITHUB_OUTPUT", output_text(result.outputs), env, known))
    warnings = [Annotation(Level.WARNING, p) for p in problems if p is not None]
    lines = [own_command(a.command()) for a in (*result.annotations, *warnings)]
    if lines and env.get(ANNOTATIONS_FILE, "").strip():
        # Inside action.yml's ::stop-commands:: window our annotations would be inert too;
        # the action replays this file once the window is closed.
        problem = _append(ANNOTATIONS_FILE, "".join(line + "\n" for line in lines), env, known)
        if problem is None:
            return []
        lines.append(own_command(Annotation(Level.WARNING, problem).command()))
    return lines


# --- what each command says ---------------------------------------------------------------


def _secrets(env: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(v for v in (env.get("GH_TOKEN", ""), env.get("GITHUB_TOKEN", "")) if v.strip())


def _plain(text: str, env: Mapping[str, str]) -> str:
    from .redact import redact

    return redact(text, _secrets(env))


def _culprit_summary(report: Report) -> str:
    """One line for ``culprit_summary``; empty without a localised regression."""
    if report.culprit is None:
        return ""
    from ..culprit.render import one_line

    return one_line(report.culprit)


def run_result(report: Report, report_path: Path | None, env: Mapping[str, str]) -> StepResult:
    """`model-bisect run`: the verdict block and the steps table of the comment as the summary
    (a git timeline's models linked to their commits, as in the comment), the verdict's numbers
    as outputs, and an annotation unless the timeline is green."""
    from ..report import VerdictKind
    from .comment import culprit_lines, steps_lines, summary_lines, verdict_lines
    from .event import commit_url_base
    from .redact import redact_report

    clean = redact_report(report, _secrets(env))
    verdict = clean.verdict
    labels = {ref.index: ref.label for ref in clean.timeline}

    def index(value: int | None) -> str:
        return "" if value is None else str(value)

    outputs = {
        "verdict": verdict.kind.value,
        "first_bad_index": index(verdict.first_bad_index),
        "first_bad_label": labels.get(verdict.first_bad_index, "")
        if verdict.first_bad_index is not None
        else "",
        "last_good_index": index(verdict.last_good_index),
        "evaluations": str(clean.evaluations),
        "report": "" if report_path is None else str(report_path),
        "culprit_summary": _culprit_summary(clean),
    }
    path = _plain(outputs["report"], env).replace("`", "")
    where = [f"Report: `{path}`", ""] if path else []
    summary = [*verdict_lines(clean), "", *summary_lines(clean), "", *where]
    summary += [*culprit_lines(clean), ""] if clean.culprit is not None else []
    steps = steps_lines(clean, commit_base=commit_url_base(env))  # the comment's rows and links
    summary += [*steps, ""] if steps else []
    message = _plain(verdict.message, env)
    annotations: tuple[Annotation, ...] = ()
    if verdict.kind is VerdictKind.REGRESSION:
        first = f"#{verdict.first_bad_index} {outputs['first_bad_label']}"
        annotations = (Annotation(Level.ERROR, f"regression at {first}: {message}"),)
    elif verdict.kind is VerdictKind.HEAD_BAD:
        annotations = (Annotation(Level.ERROR, f"the head model already fails: {message}"),)
    elif verdict.kind is VerdictKind.INCONCLUSIVE:
        annotations = (Annotation(Level.WARNING, f"inconclusive: {message}"),)
    return StepResult("\n".join(summary), outputs, annotations)


def _details(body: str) -> list[str]:
    return ["<details><summary>comment body</summary>", "", body.rstrip("\n"), "", "</details>"]


def publish_result(
    body: str, *, action: str, url: str | None, where: str, wiring_broke: bool
) -> StepResult:
    """`model-bisect publish`: where the comment went, and the body folded away beneath.
    ``action`` is what publish did (created, updated, unchanged), "rendered" on a dry run, or
    "failed" when GitHub was not reached or refused."""
    link = f"[{where}]({url})" if url else where
    head = f"### model-bisect publish: {action} the sticky comment on {link}"
    if action == "rendered":
        head = "### model-bisect publish: dry run, nothing sent"
    elif action == "failed":
        head = "### model-bisect publish: the comment was not sent (the step's log says why)"
    annotations: tuple[Annotation, ...] = ()
    if wiring_broke:
        told = {"rendered": "dry run, nothing sent", "failed": "and the comment was not sent"}.get(
            action, f"published to {where}"
        )
        annotations = (Annotation(Level.ERROR, f"the nightly's wiring broke ({told})"),)
    return StepResult(
        "\n".join([head, "", *_details(body), ""]), {"comment_url": url or ""}, annotations
    )


def check_result(
    fixture: str,
    rows: Sequence[tuple[str, str]],
    *,
    require: str,
    failed: bool,
    advice: Iterable[str] = (),
) -> StepResult:
    """`cache_builder check`: one row per artifact; content drift (or a missing or extra
    file) is an error, drift that only touches writer metadata a warning."""
    icon = {"identical": "✅", "metadata-only": "🟡"}
    table = ["| artifact | result |", "|---|---|"]
    table += [f"| `{path}` | {icon.get(kind, '❌')} {kind} |" for path, kind in rows]
    serious = [path for path, kind in rows if kind not in icon]
    metadata = [path for path, kind in rows if kind == "metadata-only"]
    if failed:
        verdict = f"❌ drift: `--require {require}` forbids the differences below"
    elif metadata:
        verdict = "🟡 match: only writer metadata differs, which `--require content` allows"
    else:
        verdict = "✅ match: every artifact is byte-identical"
    annotations = []
    if serious:
        annotations.append(
            Annotation(Level.ERROR, f"content drift in {fixture}: {', '.join(serious)}", TITLE_CB)
        )
    if metadata:
        level = f" (--require {require} fails on it)" if failed and not serious else ""
        annotations.append(
            Annotation(
                Level.WARNING,
                f"metadata-only drift in {fixture}{level}: {', '.join(metadata)}",
                TITLE_CB,
            )
        )
    lines = [f"### cache_builder check: `{fixture.replace('`', '')}`", "", verdict, "", *table]
    notes = [line for line in advice if line.strip()]
    if notes:
        lines += ["", *notes]
    return StepResult("\n".join([*lines, ""]), {}, tuple(annotations))
