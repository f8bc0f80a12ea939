"""The sticky comment's Markdown body: a report's verdict, or the log of a broken nightly.

Everything is derived from a `Report` alone, so a saved report can be re-rendered or
published later by another process. Every string that came from outside (model labels,
reasons, log lines) is escaped here, because a model named ``a|b`` or ``<!--`` must not
break the table, the chart or the marker that publish relies on to find the comment.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import quote

from ..catalogue import CATALOGUE, GateKind, fixed
from ..errors import UsageError
from ..report import GateSpec, Report, Status, Step, VerdictKind, negated_phrase, short_identity
from .history import WIRING_BROKE, Run, encode_history
from .marker import DEFAULT_MARKER, marker
from .redact import redact, redact_report
from .slices import shown_slice, slice_sentence

__all__ = [
    "GITHUB_COMMENT_LIMIT",
    "marker",
    "render_markdown",
    "render_wiring_broke",
    "run_url_from_env",
    "summary_lines",
    "verdict_lines",
]

GITHUB_COMMENT_LIMIT = 65536  # GitHub answers 422 above this many characters
REPRODUCE = "reproduce locally: `model-bisect nightly`"  # the wiring-broke body: only the nightly
LOG_TAIL_LINES = 200
LOG_TAIL_CHARS = 20000
CHART_MAX_POINTS = 400  # beyond this the chart costs more characters than it explains

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]")
# Bidirectional overrides can make rendered text lie about its order (CVE-2021-42574).
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f]")
_CELL_ENTITIES = {
    "|": "&#124;",
    "`": "&#96;",
    "*": "&#42;",
    "_": "&#95;",
    "[": "&#91;",
    "]": "&#93;",
    "\\": "&#92;",
    "~": "&#126;",
    "@": "@&#8203;",  # a zero-width space after @ stops @mentions from pinging anyone
}
_STATUS_ICON = {Status.GOOD: "✅ good", Status.BAD: "❌ bad", Status.SKIP: "⏭️ skip"}
# One symbol per night in "Recent runs"; the legend lists only those that occur.
_NIGHT = {
    VerdictKind.NO_REGRESSION.value: ("✅", "no regression"),
    VerdictKind.REGRESSION.value: ("🔴", "regression"),
    VerdictKind.HEAD_BAD.value: ("⛔", "head bad"),
    VerdictKind.INCONCLUSIVE.value: ("🟡", "inconclusive"),
    WIRING_BROKE: ("🛠️", "wiring broke"),
}
_NIGHT_OTHER = ("❔", "verdict unknown to this version")
_RED = {VerdictKind.REGRESSION.value, VerdictKind.HEAD_BAD.value}


def run_url_from_env(env: Mapping[str, str]) -> str | None:
    """The Actions run page, when the three variables GitHub sets are all present."""
    server, repo, run_id = (
        env.get(k, "").strip() for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    if not (server and repo and run_id):
        return None
    return f"{server.rstrip('/')}/{repo}/actions/runs/{run_id}"


def _text(value: object, cap: int = 300) -> str:
    """Escape untrusted text for a single Markdown line (table cells included)."""
    text = _BIDI.sub("", str(value))
    text = "".join(" " if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in text)
    text = " ".join(text.split())
    if len(text) > cap:
        text = text[: cap - 1] + "…"
    text = html.escape(text, quote=True)
    return "".join(_CELL_ENTITIES.get(c, c) for c in text)


def _code(value: object, cap: int = 120) -> str:
    """A label shown as code; the <code> tag also keeps #refs and mentions inert."""
    return f"<code>{_text(value, cap)}</code>"


def _link(url: str) -> str:
    safe = quote(url, safe=":/?&=#%~.-_+!$,;'")
    return f"[workflow run]({safe})" if re.match(r"https?://", safe) else _text(url)


def _footer(run_url: str | None, reproduce: str | None = REPRODUCE) -> list[str]:
    lines = [f"🔗 {_link(run_url)}  "] if run_url else []
    return [*lines, f"🔁 {reproduce}"] if reproduce else lines


def _reproduce(report: Report) -> str | None:
    """The command that produced the report, and where it ran; None for a report written
    before commands were recorded (naming some other command would be a guess)."""
    invoked = report.invocation
    if invoked is None:
        return None
    if not invoked.in_repository:
        where = f" (in {_code(invoked.cwd, 300)})"
    elif invoked.cwd in ("", "."):
        where = " (from the repository root)"
    else:
        where = f" (from {_code(invoked.cwd, 300)} in the repository)"
    at = f" at {_code(invoked.head[:12])}" if invoked.head else ""
    settings = f", settings from {_code(invoked.config, 300)}" if invoked.config else ""
    return f"reproduce locally: {_code(invoked.command(), 2000)}{where}{at}{settings}"


def _number(value: float, digits: int = 4) -> str:
    return fixed(value, digits) if math.isfinite(value) else "—"


def _label_of(report: Report, index: int | None) -> str:
    if index is None:
        return "?"
    for ref in report.timeline:
        if ref.index == index:
            return ref.label
    for step in report.steps:
        if step.index == index:
            return step.label
    return "?"


def _model(report: Report, index: int | None) -> str:
    return f"#{index} {_code(_label_of(report, index))}"


def verdict_lines(report: Report) -> list[str]:
    """The headline and its evidence: what a reader of the issue must see first."""
    v = report.verdict
    skipped = sum(1 for s in report.steps if s.status is Status.SKIP)
    if v.kind is VerdictKind.NO_REGRESSION:
        # Name the newest model that was evaluated and passed, never a skipped one.
        good = v.last_good_index if v.last_good_index is not None else _newest(report)
        if skipped:
            untested = f"{skipped} skipped model{'s' if skipped > 1 else ''} could not be tested"
            head = f"### ✅ No regression: {_model(report, good)} passes every gate; {untested}"
        else:
            head = f"### ✅ No regression: every gate holds up to {_model(report, good)}"
    elif v.kind is VerdictKind.REGRESSION:
        label = _code(_label_of(report, v.first_bad_index))
        head = f"### 🔴 Regression at index {v.first_bad_index}: {label}"
    elif v.kind is VerdictKind.HEAD_BAD:
        first = v.first_bad_index if v.first_bad_index is not None else _oldest(report)
        head = f"### 🔴 Head bad: the first model {_model(report, first)} already fails the gates"
    elif not v.candidates and v.last_good_index is None:
        head = "### 🟡 Inconclusive: no model could be evaluated"
    elif not _bad_seen(report):
        head = "### 🟡 Inconclusive: no tested model failed, but skipped models were not tested"
    else:
        head = "### 🟡 Inconclusive: skipped models hide where the first bad model is"
    lines = [head, ""]
    if v.kind is VerdictKind.REGRESSION and v.last_good_index is not None:
        lines.append(f"Last good model: {_model(report, v.last_good_index)}.  ")
    if v.kind is VerdictKind.INCONCLUSIVE and v.candidates:
        shown = ", ".join(_model(report, i) for i in v.candidates[:20])
        more = f" and {len(v.candidates) - 20} more" if len(v.candidates) > 20 else ""
        title = "Candidates for the first bad model" if _bad_seen(report) else "Not tested"
        lines.append(f"{title}: {shown}{more}.  ")
    if v.message:
        lines.append(_text(v.message, 1000))
    return lines


def _bad_seen(report: Report) -> bool:
    return any(s.status is Status.BAD for s in report.steps)


def _newest(report: Report) -> int | None:
    return report.timeline[-1].index if report.timeline else None


def _oldest(report: Report) -> int | None:
    return report.timeline[0].index if report.timeline else None


def summary_lines(report: Report) -> list[str]:
    """Gates, model counts, features and the scan under the headline; the job summary too."""
    gates = " · ".join(_text(g.describe()) for g in report.gates) or "none"
    mapping = report.settings.get("mapping")
    lines = [
        f"**Gates:** {gates}"
        + (f" (mapping: {_text(mapping)})" if mapping not in (None, "none") else ""),
        f"**Models:** {len(report.timeline)} in the timeline · {report.evaluations} evaluated"
        f" · {len(report.steps)} visited" + _skipped_note(report) + _negated_note(report),
        f"**Features:** {_code(report.features.path.rsplit('/', 1)[-1])}"
        f" · {report.features.rows} rows · target {_text(report.settings.get('target', 'mos'))}",
    ]
    shown = shown_slice(report)
    if shown is not None:  # the label is capped: the line stays within the summary's budget
        step, piece = shown
        sentence = slice_sentence(report, step, piece).removeprefix("worst slice of ")
        lines.append(f"**Worst slice:** {_text(sentence, 400)}")
    if report.scan is not None:
        if report.scan.monotone:
            shape = report.scan.shape(report.steps)
            lines.append(f"**Scan:** the timeline is monotone ({shape}).")
        else:
            bad = ", ".join(_model(report, i) for i in report.scan.violations[:20])
            lines.append(f"**Scan:** not monotone: good models follow a bad one at {bad}.")
    return [line + "  " for line in lines[:-1]] + lines[-1:]


def _negated_note(report: Report) -> str:
    phrase = negated_phrase(report, "…")
    return f" · {phrase}" if phrase else ""


def _skipped_note(report: Report) -> str:
    skipped = sum(1 for s in report.steps if s.status is Status.SKIP)
    return f" · {skipped} skipped" if skipped else ""


def _has_p(steps: Sequence[Step]) -> bool:
    return any(s.p_values for s in steps)


def _table_head(with_p: bool) -> list[str]:
    p_head, p_rule = (" p-values |", "---|") if with_p else ("", "")
    labels = "".join(f" {spec.label} |" for spec in CATALOGUE)
    rules = "---:|" * len(CATALOGUE)
    return [
        f"| # | model | id | status |{labels}{p_head} reason |",
        f"|---:|---|---|---|{rules}{p_rule}---|",
    ]


_SHA = re.compile(r"[0-9a-f]{7,64}")
SUMMARY_ROWS = 200  # rows of the steps table in a job summary


def commit_link(base: str | None, commit: str | None) -> str | None:
    """The commit's page (``base`` is ``$GITHUB_SERVER_URL/<repo>/commit/``), or None; a
    report's ``commit`` is untrusted, so only a hexadecimal SHA is linked."""
    if not base or not commit or not _SHA.fullmatch(commit):
        return None
    url = quote(base + commit, safe=":/?&=#%~.-_+!$,;'")
    return url if re.match(r"https?://", url) else None


def _row(step: Step, with_p: bool, identity: str, url: str | None = None) -> str:
    m = step.metrics
    values = ["—" if m is None else spec.show(m.value(spec.name)) for spec in CATALOGUE]
    p_cell = ""
    if with_p:
        p = ", ".join(f"{_text(k, 20)} {v:.3g}" for k, v in sorted(step.p_values.items()))
        p_cell = f" {p or '—'} |"
    model = f"[{_code(step.label)}]({url})" if url else _code(step.label)
    return (
        f"| {step.index} | {model} | {_code(identity)} | {_STATUS_ICON[step.status]} | "
        f"{' | '.join(values)} |{p_cell} {_text(step.reason, 200) or '—'} |"
    )


def _step_rows(report: Report, commit_base: str | None) -> dict[int, str]:
    """Each visited model's table row by index, a git timeline's linked to its commit."""
    with_p = _has_p(report.steps)
    commits = {ref.index: commit_link(commit_base, ref.commit) for ref in report.timeline}
    return {
        s.index: _row(s, with_p, short_identity(report, s.index), commits.get(s.index))
        for s in report.steps
    }


def steps_lines(
    report: Report, *, commit_base: str | None = None, max_rows: int = SUMMARY_ROWS
) -> list[str]:
    """The comment's steps table for `run`'s job summary: the same rows and commit links,
    the ``max_rows`` nearest the verdict's boundary kept (a scan of thousands of models must
    not fill the summary's 1 MiB)."""
    if not report.steps:
        return []
    rows = _step_rows(report, commit_base)
    kept = sorted(s.index for s in _row_order(report)[:max_rows])
    lines = ["#### Steps", "", *_table_head(_has_p(report.steps)), *(rows[i] for i in kept)]
    cut = len(report.steps) - len(kept)
    if cut:
        lines += ["", f"_{cut} of {len(report.steps)} rows cut; the report JSON has them all._"]
    return lines


def _row_order(report: Report) -> list[Step]:
    """Rows nearest the verdict's boundary first: those are kept when the table is cut."""
    v = report.verdict
    focus = {i for i in (v.first_bad_index, v.last_good_index) if i is not None}
    focus |= set(v.candidates)
    if not focus and report.steps:
        focus = {report.steps[0].index, report.steps[-1].index}
    return sorted(report.steps, key=lambda s: (min(abs(s.index - f) for f in focus), s.index))


def _chart(report: Report) -> list[str]:
    """A Mermaid xychart of the gated metric along the visited indices, with the threshold."""
    threshold_gate = next((g for g in report.gates if g.kind in (GateKind.MIN, GateKind.MAX)), None)
    gate = threshold_gate or (report.gates[0] if report.gates else None)
    metric = gate.metric if gate is not None else "plcc"
    points: list[tuple[int, float]] = []
    for step in report.steps:
        if step.metrics is None:
            continue
        try:
            value = step.metrics.value(metric)
        except KeyError:
            return []
        if math.isfinite(value):
            points.append((step.index, value))
    if not points or len(points) > CHART_MAX_POINTS:
        return []
    values = [v for _, v in points]
    bounds = [*values]
    if threshold_gate is not None and math.isfinite(threshold_gate.threshold):
        bounds.append(threshold_gate.threshold)
    pad = (max(bounds) - min(bounds)) * 0.1 or 0.05
    lo, hi = min(bounds) - pad, max(bounds) + pad
    name = re.sub(r"[^A-Za-z0-9_]", "", metric) or "metric"
    lines = [
        f"#### {name.upper()} along the visited models"
        + (f" (threshold {threshold_gate.threshold:g})" if threshold_gate else ""),
        "",
        "```mermaid",
        "xychart-beta",
        f'    title "{name} by model index"',
        f'    x-axis "model index" [{", ".join(f"{chr(34)}{i}{chr(34)}" for i, _ in points)}]',
        f'    y-axis "{name}" {_number(lo)} --> {_number(hi)}',
        f"    line [{', '.join(_number(v) for v in values)}]",
    ]
    if threshold_gate is not None and math.isfinite(threshold_gate.threshold):
        lines.append(f"    line [{', '.join([_number(threshold_gate.threshold)] * len(points))}]")
    return [*lines, "```"]


def _toolchain(report: Report) -> list[str]:
    parts = [f"model-bisect {_text(report.tool_version, 40)}"]
    parts += [f"{_text(k, 40)} {_text(v, 40)}" for k, v in sorted(report.toolchain.items())]
    return [f"**Toolchain:** {' · '.join(parts)}"]


def _night(run: Run) -> tuple[str, str]:
    return _NIGHT.get(run.verdict, _NIGHT_OTHER)


def _day(run: Run) -> str:
    return run.date[:10]


def _recent_runs(runs: Sequence[Run], gate: GateSpec | None) -> list[str]:
    """The nights the comment remembers, so a maintainer sees when a slide began."""
    if not runs:
        return []
    present = {_night(r) for r in runs}
    legend = " · ".join(
        f"{sym} {name}" for sym, name in (*_NIGHT.values(), _NIGHT_OTHER) if (sym, name) in present
    )
    count = f"{len(runs)} night{'' if len(runs) == 1 else 's'}"
    lines = [
        "#### Recent runs",
        "",
        f"{''.join(_night(r)[0] for r in runs)}  ",
        f"_{count}, oldest first, {_day(runs[0])} to {_day(runs[-1])}. {legend}._",
    ]
    streak = _red_streak(runs)
    return [*lines, *(["", streak] if streak else []), *_night_chart(runs, gate)]


def _red_streak(runs: Sequence[Run]) -> str | None:
    """When tonight is red: since which night, and what the night before it was."""
    if runs[-1].verdict not in _RED:
        return None
    start = len(runs) - 1
    while start > 0 and runs[start - 1].verdict in _RED:
        start -= 1
    first = runs[start]
    nights = len(runs) - start
    text = f"Red for {nights} night{'' if nights == 1 else 's'}, since {_day(first)}"
    if first.first_bad_index is not None:
        label = _code(first.first_bad_label or "?")
        text += f" (first bad then: #{first.first_bad_index} {label})"
    if start == 0:
        return text + "; no earlier night is remembered."
    before = runs[start - 1]
    return text + f"; the night before, {_day(before)}, was {_night(before)[1]}."


def _night_chart(runs: Sequence[Run], gate: GateSpec | None) -> list[str]:
    """The first gate's metric of each night's newest evaluated model, with its threshold."""
    if gate is None:
        return []
    points = [(r, r.metrics[gate.metric]) for r in runs if gate.metric in r.metrics]
    if not points:
        return []
    ticks = [r.date[5:10] for r, _ in points]
    if len(set(ticks)) < len(ticks):  # two runs on one day: tell them apart by the time
        ticks = [r.date[5:16].replace("T", " ") for r, _ in points]
    limit = gate.threshold if gate.kind in (GateKind.MIN, GateKind.MAX) else None
    threshold = limit if limit is not None and math.isfinite(limit) else None
    values = [v for _, v in points]
    bounds = [*values, *([] if threshold is None else [threshold])]
    pad = (max(bounds) - min(bounds)) * 0.1 or 0.05
    name = re.sub(r"[^A-Za-z0-9_]", "", gate.metric) or "metric"
    lines = [
        "",
        f"{name.upper()} night by night (the first gate's metric, {_text(gate.describe())};"
        " the newest evaluated model of each night):",
        "",
        "```mermaid",
        "xychart-beta",
        f'    title "{name} night by night"',
        f'    x-axis "night" [{", ".join(f"{chr(34)}{t}{chr(34)}" for t in ticks)}]',
        f'    y-axis "{name}" {_number(min(bounds) - pad)} --> {_number(max(bounds) + pad)}',
        f"    line [{', '.join(_number(v) for v in values)}]",
    ]
    if threshold is not None:
        lines.append(f"    line [{', '.join([_number(threshold)] * len(points))}]")
    return [*lines, "```"]


def culprit_lines(report: Report) -> list[str]:
    """The collapsed culprit block (comment and job summary); none without a culprit."""
    if report.culprit is None:
        return []
    from ..culprit.render import details_lines

    labels = {ref.index: ref.label for ref in report.timeline}
    return details_lines(report.culprit, labels, _text)


def _history_blocks(
    runs: Sequence[Run], nights: int, gate: GateSpec | None
) -> tuple[list[str], list[str]]:
    """The newest ``nights`` runs as the "Recent runs" section and the hidden history line."""
    kept = tuple(runs[len(runs) - nights :]) if nights > 0 else ()
    if not kept:
        return [], []
    return _recent_runs(kept, gate), [encode_history(kept)]


def _join(blocks: Iterable[Sequence[str]]) -> str:
    return "\n\n".join("\n".join(b) for b in blocks if b) + "\n"


def render_markdown(
    report: Report,
    *,
    marker_key: str = DEFAULT_MARKER,
    run_url: str | None = None,
    limit: int = GITHUB_COMMENT_LIMIT,
    secrets: Iterable[str] = (),
    history: Sequence[Run] = (),
    commit_base: str | None = None,
) -> str:
    """The sticky comment body: verdict first, then the evidence, cut to fit ``limit``.

    ``commit_base`` (``$GITHUB_SERVER_URL/<repo>/commit/``) links each model of a git
    timeline to its commit.

    ``secrets`` (the token) and anything shaped like a GitHub token are replaced by ``***``
    before escaping, which would otherwise disguise them from a later search-and-replace.
    ``history`` (tonight last) becomes "Recent runs" and the body's hidden last line; to fit
    ``limit`` its oldest nights go first, before any table row or the verdict.
    """
    report = redact_report(report, secrets)
    head = [marker(marker_key), *verdict_lines(report)]
    summary = summary_lines(report)
    ordered = _row_order(report)
    with_p = _has_p(report.steps)
    rows = _step_rows(report, commit_base)
    table_head = ["#### Steps", "", *_table_head(with_p)]
    optional = [_chart(report), _toolchain(report), culprit_lines(report)]
    footer = _footer(run_url, _reproduce(report))
    runs = tuple(history)
    gate = report.gates[0] if report.gates else None

    def build(kept: int, extras: Sequence[Sequence[str]], nights: int = 0) -> str:
        recent, line = _history_blocks(runs, nights, gate)
        keep = sorted(s.index for s in ordered[:kept])
        table = [*table_head, *(rows[i] for i in keep)]
        cut = len(ordered) - kept
        note = (
            [
                f"_{cut} of {len(ordered)} rows cut to stay under {limit:,} characters;"
                " the report JSON has them all._"
            ]
            if cut
            else []
        )
        return _join([head, summary, recent, table, note, *extras, footer, line])

    for nights in range(len(runs), -1, -1):  # the history yields first, oldest night first
        body = build(len(ordered), optional, nights)
        if len(body) <= limit:
            return body
    for extras in (optional, optional[1:], []):
        if len(build(0, extras)) > limit:
            continue
        lo, hi = 0, len(ordered) - 1  # the most rows that fit: length grows with rows kept
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if len(build(mid, extras)) <= limit else (lo, mid - 1)
        return build(lo, extras)
    raise UsageError(f"a limit of {limit} characters cannot hold the verdict", "render", "raise it")


def _clean_log(text: str, secrets: Iterable[str] = ()) -> str:
    text = _ANSI.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = "".join(c for c in text if c in "\n\t" or not (ord(c) < 32 or ord(c) == 127))
    return redact(text, secrets)


def _fence(text: str) -> str:
    """A backtick fence longer than any run of backticks inside, so the log cannot close it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def render_wiring_broke(
    log_text: str,
    *,
    marker_key: str = DEFAULT_MARKER,
    run_url: str | None = None,
    stage: str | None = None,
    limit: int = GITHUB_COMMENT_LIMIT,
    secrets: Iterable[str] = (),
    history: Sequence[Run] = (),
) -> str:
    """The body for a nightly that failed before a verdict: red, with the log's tail.

    ``secrets`` and GitHub token shapes in the log are replaced by ``***``. ``history`` is
    shown as in `render_markdown` (without a chart: no gates are known), trimmed before the log.
    """
    secrets = tuple(secrets)
    where = f" in stage {_code(redact(stage, secrets), 60)}" if stage else ""
    head = [
        marker(marker_key),
        f"### 🛠️ Wiring broke{where}: the nightly produced no verdict",
        "",
        "The check or the bisect itself failed, so the verdict previously shown here is no"
        " longer current. Fix the failure below; the next nightly replaces this comment.",
    ]
    footer = _footer(run_url)
    all_lines = _clean_log(log_text, secrets).rstrip("\n").split("\n")
    lines = all_lines[-LOG_TAIL_LINES:]
    tail = "\n".join(lines)
    runs = tuple(history)
    for nights in range(len(runs), -1, -1):  # the oldest nights yield before the log does
        recent, line = _history_blocks(runs, nights, None)
        fixed = len(_join([head, recent, ["x" * 200], footer, line]))
        budget = min(LOG_TAIL_CHARS, limit - fixed - 20)
        if budget >= min(LOG_TAIL_CHARS, len(tail)):
            break
    if len(tail) > max(budget, 0):
        tail = tail[len(tail) - max(budget, 0) :]
        tail = tail.split("\n", 1)[1] if "\n" in tail else tail
    shown = tail.count("\n") + 1 if tail else 0
    if not tail.strip():
        log_block = ["_The error log is empty._"]
    else:
        fence = _fence(tail)
        log_block = [
            f"**Log tail** (last {shown} of {len(all_lines)} lines):",
            "",
            f"{fence}text",
            tail,
            fence,
        ]
    body = _join([head, log_block, recent, footer, line])
    if len(body) > limit:
        raise UsageError(
            f"a limit of {limit} characters cannot hold the body", "render", "raise it"
        )
    return body
