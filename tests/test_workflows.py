"""The GitHub workflows, held to policies rather than to their current text.

Each policy is a function returning the problems it finds, so a test can show both that the
committed workflows pass and that a workflow breaking the rule is caught.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import nox
import pytest
import yaml
from invoke.tasks import Task

from tests.cachesteps import eval_cache_problems
from tests.repokit import load_root_module

from .conftest import FIXTURE_DIR, REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
NIGHTLY = WORKFLOWS / "nightly-bisect.yml"
CI = WORKFLOWS / "ci.yml"
DRIFT_MATRIX = WORKFLOWS / "drift-matrix.yml"
ALL = sorted(path.name for path in WORKFLOWS.glob("*.yml"))
ACTIONLINT = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which(
    "actionlint"
)
needs_actionlint = pytest.mark.skipif(ACTIONLINT is None, reason="actionlint is not installed")

# The only write grants any workflow needs, and why: the nightly edits its sticky comment.
WRITE_NEEDS: Mapping[str, frozenset[str]] = {"nightly-bisect.yml": frozenset({"issues"})}


def _load_text(text: str) -> dict[Any, Any]:
    loaded = yaml.safe_load(text)
    assert isinstance(loaded, dict)
    return loaded


def _load(path: Path) -> dict[Any, Any]:
    return _load_text(path.read_text(encoding="utf-8"))


def _triggers(workflow: Mapping[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    triggers = workflow.get("on", workflow.get(True))
    assert isinstance(triggers, dict)
    return triggers


def _steps(workflow: Mapping[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", ())]


def test_the_three_workflows_exist() -> None:
    assert {NIGHTLY.name, CI.name, DRIFT_MATRIX.name} <= set(ALL)


# --- policy: every action pinned to a commit ----------------------------------------------

_SHA_PIN = re.compile(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}")
# The version a pin stands for, as a comment on the same line, so a reviewer can read it.
_VERSION_COMMENT = re.compile(r"@[0-9a-f]{40}\s+# v\d+(\.\d+){0,2}\s*$")


def unpinned_actions(text: str) -> list[str]:
    """Every `uses:` (step or reusable-workflow job) not pinned to a full 40-hex commit SHA
    with its version in a comment; local actions (`./...`) are part of the commit already."""
    workflow = _load_text(text)
    used = [step["uses"] for step in _steps(workflow) if "uses" in step]
    used += [job["uses"] for job in workflow["jobs"].values() if "uses" in job]
    problems = [use for use in used if not use.startswith("./") and not _SHA_PIN.fullmatch(use)]
    for line in text.splitlines():
        if re.match(r"\s*(- )?uses:\s*[^.\s]", line) and not _VERSION_COMMENT.search(line):
            problems.append(f"no version comment: {line.strip()}")
    return problems


@pytest.mark.parametrize("name", ALL)
def test_every_action_is_pinned_to_a_commit_sha_with_its_version(name: str) -> None:
    text = (WORKFLOWS / name).read_text(encoding="utf-8")
    assert "uses:" in text
    assert unpinned_actions(text) == []


def test_a_tag_a_short_sha_or_a_missing_version_comment_is_not_a_pin() -> None:
    sha = "34e114876b0b11c390a56381ad16ebd13914f8d5"
    text = (
        "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n"
        f"      - uses: actions/checkout@{sha} # v4.3.1\n"
        "      - uses: actions/setup-python@v5\n"
        f"      - uses: actions/cache@{sha[:12]} # v4.2.4\n"
        f"      - uses: actions/upload-artifact@{sha}\n"
        "      - uses: ./local-action\n"
        "  reuse:\n    uses: octo/flows/.github/workflows/x.yml@main\n"
    )
    problems = unpinned_actions(text)
    assert "actions/setup-python@v5" in problems
    assert f"actions/cache@{sha[:12]}" in problems
    assert "octo/flows/.github/workflows/x.yml@main" in problems
    assert f"no version comment: - uses: actions/upload-artifact@{sha}" in problems
    assert not any("checkout" in problem or "local-action" in problem for problem in problems)


# --- policy: least-privilege token ---------------------------------------------------------


def _writes(grants: Any) -> set[str]:
    if grants == "write-all":
        return {"*"}
    if isinstance(grants, dict):
        return {scope for scope, level in grants.items() if level == "write"}
    return set()


def permission_problems(name: str, workflow: Mapping[Any, Any]) -> list[str]:
    """Top-level permissions must be declared (the default token may write everywhere) and
    grant no write, except in a one-job workflow, where they are that job's grant; a write
    anywhere must be one the workflow needs (WRITE_NEEDS)."""
    problems = []
    needed = WRITE_NEEDS.get(name, frozenset())
    jobs = workflow["jobs"]
    if "permissions" not in workflow:
        problems.append("no top-level permissions")
    top = _writes(workflow.get("permissions"))
    if top and len(jobs) > 1:
        problems.append(f"top-level write for every job: {sorted(top)}")
    granted = [("top level", top)] + [
        (f"job {job_id}", _writes(job.get("permissions"))) for job_id, job in jobs.items()
    ]
    for where, writes in granted:
        if writes - needed:
            problems.append(f"{where} writes {sorted(writes - needed)} that nothing needs")
    return problems


@pytest.mark.parametrize("name", ALL)
def test_every_workflow_token_has_least_privilege(name: str) -> None:
    assert permission_problems(name, _load(WORKFLOWS / name)) == []


def test_the_nightly_can_write_the_issue_it_publishes_to() -> None:
    workflow = _load(NIGHTLY)
    grants = [workflow.get("permissions")] + [
        job.get("permissions") for job in workflow["jobs"].values()
    ]
    assert any("issues" in _writes(grant) for grant in grants)


@pytest.mark.parametrize(
    ("name", "permissions", "problem"),
    [
        ("ci.yml", None, "no top-level permissions"),
        ("ci.yml", "write-all", "top level writes ['*'] that nothing needs"),
        ("ci.yml", {"contents": "write"}, "top level writes ['contents'] that nothing needs"),
        ("nightly-bisect.yml", {"pull-requests": "write"}, "writes ['pull-requests']"),
    ],
)
def test_a_workflow_granting_more_than_it_needs_is_rejected(
    name: str, permissions: Any, problem: str
) -> None:
    workflow: dict[str, Any] = {"jobs": {"one": {"runs-on": "ubuntu-latest", "steps": []}}}
    if permissions is not None:
        workflow["permissions"] = permissions
    assert any(problem in found for found in permission_problems(name, workflow))


def test_a_write_shared_by_several_jobs_is_rejected_even_when_one_needs_it() -> None:
    job = {"runs-on": "ubuntu-latest", "steps": []}
    workflow = {"permissions": {"issues": "write"}, "jobs": {"a": job, "b": job}}
    assert permission_problems("nightly-bisect.yml", workflow) == [
        "top-level write for every job: ['issues']"
    ]
    workflow = {"permissions": {}, "jobs": {"a": {**job, "permissions": {"issues": "write"}}}}
    assert permission_problems("nightly-bisect.yml", workflow) == []


# --- policy: one entry point per job ------------------------------------------------------


@functools.cache
def _module(name: str) -> ModuleType:
    """Load tasks.py or noxfile.py from the repository root (loading the noxfile registers its
    sessions with nox, and sets its options)."""
    return load_root_module(f"{name}.py", f"{name}_for_workflows")


def _tasks() -> set[str]:
    return {task.name for task in vars(_module("tasks")).values() if isinstance(task, Task)}


def _sessions() -> set[str]:
    _module("noxfile")
    return set(nox.registry.get())


def _is_install(command: str) -> bool:
    return bool(re.search(r"\bpip install\b", command))


def entry_point_problems(
    workflow: Mapping[Any, Any], tasks: set[str], sessions: set[str]
) -> list[str]:
    """Each job's commands, installs aside, are one call to an entry point a developer runs
    too (`.ci/run`, `invoke TASK`, `nox -s SESSION...`, or this repository's action, `uses:
    ./`, which runs `model-bisect` itself), never the tools spelled out again."""
    problems = []
    for job_id, job in workflow["jobs"].items():
        commands = [step["run"].strip() for step in job.get("steps", ()) if "run" in step]
        entries = [command for command in commands if not _is_install(command)]
        actions = [step for step in job.get("steps", ()) if step.get("uses") == "./"]
        if len(entries) + len(actions) != 1:
            problems.append(f"job {job_id} has {len(entries)} entry points: {entries}")
        for command in entries:
            if re.search(r"&&|\|\||;|\n", command):
                problems.append(f"more than one command: {command}")
                continue
            words = shlex.split(command)
            if words[:1] in (["./.ci/run"], [".ci/run"]):
                continue
            if words[:1] == ["invoke"] and len(words) > 1 and words[1] in tasks:
                continue
            if words[:2] == ["nox", "-s"]:
                options = [i for i, word in enumerate(words) if i > 1 and word.startswith("-")]
                named = words[2 : min(options, default=len(words))]
                if named and set(named) <= sessions:
                    continue
            problems.append(f"not an entry point: {command}")
    return problems


@pytest.fixture(scope="module")
def entry_points() -> tuple[set[str], set[str]]:
    return _tasks(), _sessions()


@pytest.mark.parametrize("name", ALL)
def test_every_job_calls_one_entry_point(
    name: str, entry_points: tuple[set[str], set[str]]
) -> None:
    assert entry_point_problems(_load(WORKFLOWS / name), *entry_points) == []


@pytest.mark.parametrize(
    "run",
    [
        "pytest -q",
        "ruff check . && nox -s tests",
        "python -m cache_builder check --require bytes",
        "model-bisect run models --features f.parquet --min-plcc 0.85",
        "invoke no-such-task",
        "nox -s no_such_session",
    ],
)
def test_a_job_spelling_commands_out_is_rejected(
    run: str, entry_points: tuple[set[str], set[str]]
) -> None:
    workflow = {"jobs": {"j": {"steps": [{"run": "python -m pip install -e ."}, {"run": run}]}}}
    assert entry_point_problems(workflow, *entry_points) != []


def test_ci_runs_what_a_developer_runs_by_default(entry_points: tuple[set[str], set[str]]) -> None:
    (command,) = (
        step["run"].strip()
        for step in _steps(_load(CI))
        if "run" in step and not _is_install(step["run"])
    )
    words = shlex.split(command)
    if words[0].endswith(".ci/run") or words[:2] == ["invoke", "test"]:
        return  # both run the default test suite
    _module("noxfile")
    assert words[:2] == ["nox", "-s"]
    assert set(words[2:]) >= set(nox.options.sessions or ())


def test_the_nightly_is_invoke_nightly_and_only_it_sees_the_token() -> None:
    steps = _steps(_load(NIGHTLY))
    (chain,) = (step for step in steps if "run" in step and not _is_install(step["run"]))
    assert shlex.split(chain["run"])[:2] == ["invoke", "nightly"]
    assert "--publish" in shlex.split(chain["run"])
    assert "secrets.GITHUB_TOKEN" in chain["env"]["GH_TOKEN"]
    for step in steps:  # the token reaches that step only
        if step is not chain:
            assert "secrets." not in str(step), step


# --- policy: schedules are valid cron -----------------------------------------------------

_CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day", 1, 31),
    ("month", 1, 12),
    ("weekday", 0, 6),
)
_NAMES = {
    "month": {
        n: i + 1
        for i, n in enumerate(
            ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
        )
    },
    "weekday": {n: i for i, n in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))},
}


def cron_values(expression: str) -> tuple[frozenset[int], ...]:
    """The minutes, hours, days, months and weekdays a POSIX cron line fires on (what
    GitHub's `schedule` accepts); ValueError names the field that is wrong."""
    fields = expression.split()
    if len(fields) != len(_CRON_FIELDS):
        raise ValueError(f"{expression!r}: {len(fields)} fields, cron has 5")
    values = []
    for text, (name, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        names = _NAMES.get(name, {})

        def number(word: str, name: str = name, names: dict[str, int] = names) -> int:
            if word.lower() in names:
                return names[word.lower()]
            if not word.isdigit():
                raise ValueError(f"{expression!r}: {name} {word!r} is not a number")
            return int(word)

        found: set[int] = set()
        for part in text.split(","):
            span, _, step_text = part.partition("/")
            step = number(step_text) if step_text else 1
            if span == "*":
                start, stop = low, high
            elif "-" in span:
                start, stop = map(number, span.split("-", 1))
            else:
                start = stop = number(span)
                if step_text:
                    stop = high
            if step < 1 or not low <= start <= stop <= high:
                raise ValueError(f"{expression!r}: {name} {part!r} outside {low}-{high}")
            found.update(range(start, stop + 1, step))
        values.append(frozenset(found))
    return tuple(values)


def _schedules() -> Iterator[tuple[str, str]]:
    for name in ALL:
        for entry in _triggers(_load(WORKFLOWS / name)).get("schedule", ()):
            yield name, entry["cron"]


def test_every_schedule_is_a_valid_cron() -> None:
    schedules = list(_schedules())
    assert {name for name, _ in schedules} >= {NIGHTLY.name, DRIFT_MATRIX.name}
    for _, cron in schedules:
        cron_values(cron)


@pytest.mark.parametrize(
    "cron",
    ["37 25 * * *", "60 4 * * *", "37 4 * *", "37 4 * * 7", "*/0 4 * * *", "5-1 4 * * *",
     "37 4 0 * *", "37 4 * foo *", "x 4 * * *"],
)  # fmt: skip
def test_an_invalid_cron_is_rejected(cron: str) -> None:
    with pytest.raises(ValueError, match=r"cron|outside|not a number"):
        cron_values(cron)


def _fires_once_a_day(cron: str) -> bool:
    minutes, hours, days, months, weekdays = cron_values(cron)
    everything = cron_values("* * * * *")[2:]
    return len(minutes) == len(hours) == 1 and (days, months, weekdays) == everything


def _fires_once_a_week(cron: str) -> bool:
    minutes, hours, days, months, weekdays = cron_values(cron)
    every_day, every_month, _ = cron_values("* * * * *")[2:]
    singles = len(minutes) == len(hours) == len(weekdays) == 1
    return singles and (days, months) == (every_day, every_month)


def test_the_nightly_fires_once_a_day_and_can_be_dispatched() -> None:
    triggers = _triggers(_load(NIGHTLY))
    assert "workflow_dispatch" in triggers
    assert [_fires_once_a_day(entry["cron"]) for entry in triggers["schedule"]] == [True]


def test_the_drift_matrix_fires_once_a_week_and_can_be_dispatched() -> None:
    triggers = _triggers(_load(DRIFT_MATRIX))
    assert "workflow_dispatch" in triggers
    assert [_fires_once_a_week(entry["cron"]) for entry in triggers["schedule"]] == [True]


def test_the_schedule_checks_tell_daily_weekly_and_hourly_apart() -> None:
    assert _fires_once_a_day("0 3 * * *")
    assert not _fires_once_a_day("0 3 * * 1")
    assert not _fires_once_a_day("0 * * * *")
    assert _fires_once_a_week("15 2 * * MON")
    assert not _fires_once_a_week("15 2 * * 1-5")
    assert not _fires_once_a_week("15 2 1 * 1")


# --- policy: installs use the constraints --------------------------------------------------


def install_problems(commands: list[str]) -> list[str]:
    """Every pip install is held by a constraints file that exists, so CI and the nightly
    resolve the same versions a developer's `pip install -c ...` does."""
    problems = []
    for command in commands:
        for line in re.split(r"\n|&&|;", command.replace("\\\n", " ")):
            if not _is_install(line):
                continue
            words = shlex.split(line)
            constraints = [words[i + 1] for i, word in enumerate(words[:-1]) if word == "-c"]
            if not constraints:
                problems.append(f"unconstrained: {line.strip()}")
            for path in constraints:
                # the action's own checkout is this repository
                if not (REPO_ROOT / path.removeprefix("$GITHUB_ACTION_PATH/")).is_file():
                    problems.append(f"no such constraints file {path}: {line.strip()}")
    return problems


@pytest.mark.parametrize("name", ALL)
def test_every_workflow_install_uses_the_constraints(name: str) -> None:
    steps = _steps(_load(WORKFLOWS / name))
    if any(step.get("uses") == "./" for step in steps):  # the action installs the tool
        steps += _load(REPO_ROOT / "action.yml")["runs"]["steps"]
    commands = [step["run"] for step in steps if "run" in step]
    assert any(_is_install(command) for command in commands)
    assert install_problems(commands) == []


def test_the_ci_script_installs_with_the_constraints() -> None:
    script = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert _is_install(script)
    assert install_problems([script]) == []


@pytest.mark.parametrize(
    "command",
    [
        "python -m pip install -e '.[dev]'",
        "pip install -r constraints/toolchain.txt .",
        "python -m pip install -c constraints/nope.txt -e .",
        "python3 -m venv .venv && pip install -e .",
    ],
)
def test_an_unconstrained_install_is_rejected(command: str) -> None:
    assert install_problems([command]) != []


def test_jobs_that_check_the_fixture_bytes_use_the_python_it_was_made_with() -> None:
    made_with = json.loads((FIXTURE_DIR / "MANIFEST.json").read_text(encoding="utf-8"))["python"]
    minor = ".".join(made_with.split(".")[:2])
    for path in (NIGHTLY, CI):
        setup = [
            s for s in _steps(_load(path)) if s.get("uses", "").startswith("actions/setup-python@")
        ]
        assert [str(step["with"]["python-version"]) for step in setup] == [minor], path.name


def test_the_drift_matrix_workflow_runs_the_pythons_the_noxfile_names() -> None:
    noxfile = _module("noxfile")
    (job,) = _load(DRIFT_MATRIX)["jobs"].values()
    assert job["strategy"]["matrix"]["python"] == noxfile.MATRIX_PYTHONS
    assert job["strategy"]["fail-fast"] is False  # one broken combination hides no other


# --- what the policies above do not cover -------------------------------------------------


def _actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    assert ACTIONLINT is not None
    return subprocess.run(
        [ACTIONLINT, "-no-color", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@needs_actionlint
@pytest.mark.parametrize("name", ALL)
def test_actionlint_passes_on_workflow(name: str) -> None:
    result = _actionlint(WORKFLOWS / name)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_actionlint
def test_actionlint_flags_a_broken_copy_of_the_nightly(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "nightly-bisect.yml"
    broken.parent.mkdir(parents=True)
    text = NIGHTLY.read_text(encoding="utf-8")
    text, count = re.subn(r'cron: "[^"]*"', 'cron: "37 25 * * *"', text)
    assert count == 1
    broken.write_text(text, encoding="utf-8")
    result = _actionlint(broken)
    assert result.returncode != 0
    assert "cron" in result.stdout
    assert "nightly-bisect.yml" in result.stdout


@pytest.mark.parametrize("name", ALL)
def test_checkout_does_not_persist_credentials(name: str) -> None:
    checkouts = [
        step
        for step in _steps(_load(WORKFLOWS / name))
        if step.get("uses", "").startswith("actions/checkout@")
    ]
    assert checkouts
    for step in checkouts:
        assert step["with"]["persist-credentials"] is False


def test_nightlies_never_overlap_and_each_has_a_timeout() -> None:
    workflow = _load(NIGHTLY)
    concurrency = workflow["concurrency"]
    assert "${{" not in concurrency["group"]  # one group for every ref: one sticky comment
    assert concurrency["cancel-in-progress"] is False
    for job in workflow["jobs"].values():
        assert 0 < job["timeout-minutes"] <= 90


def test_the_nightly_uploads_its_outputs_even_when_the_chain_fails() -> None:
    steps = _steps(_load(NIGHTLY))
    uploads = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert len(uploads) == 1
    upload = uploads[0]
    assert upload["if"] == "always()"
    assert upload["with"]["path"].rstrip("/") == "bisect-out"
    chain = max(i for i, s in enumerate(steps) if "invoke" in s.get("run", ""))
    assert steps.index(upload) > chain


def test_the_drift_matrix_uploads_its_summary_even_when_a_combination_fails() -> None:
    (job,) = _load(DRIFT_MATRIX)["jobs"].values()
    uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert uploads[0]["if"] == "always()"
    assert "drift-matrix.json" in uploads[0]["with"]["path"]


# --- policy: the evaluation cache carries over between nights -----------------------------


def test_the_nightly_restores_and_saves_the_evaluation_cache() -> None:
    assert eval_cache_problems(_steps(_load(NIGHTLY))) == []


def test_a_nightly_whose_cache_is_saved_under_one_fixed_key_is_caught() -> None:
    text = NIGHTLY.read_text(encoding="utf-8")
    old = "-${{ github.run_id }}-${{ github.run_attempt }}"
    assert old in text
    problems = eval_cache_problems(_steps(_load_text(text.replace(old, "", 1))))
    assert any("does not change every run" in p for p in problems), problems
    no_prefix = text.replace("          restore-keys: |\n", "          unused: |\n", 1)
    problems = eval_cache_problems(_steps(_load_text(no_prefix)))
    assert any("no restore-keys" in p for p in problems), problems
