"""The composite action (action.yml): its wiring held to rules, and its scripts run for real.

`action_problems` is a policy over the action's text, so a test shows both that the committed
action passes and that a crafted bad one is caught. `run_composite` plays the runner's part
for the shell steps (expressions in `env:`, $GITHUB_OUTPUT between steps) and runs each script
with bash as GitHub does; only the Python set-up and the pip install are stood in for.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from model_bisect.catalogue import CATALOGUE
from model_bisect.publishing.actions import PUBLISH_OUTPUTS, RUN_OUTPUTS
from tests.cachesteps import eval_cache_problems
from tests.conftest import FIXTURE_DIR, REPO_ROOT
from tests.fake_github import FakeGitHub
from tests.metrickit import add_metric
from tests.modelkit import bad_weights, linear_model

ACTION = REPO_ROOT / "action.yml"
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
REPO, ISSUE = "acme/models", 1
BASH = shutil.which("bash")
needs_bash = pytest.mark.skipif(BASH is None, reason="bash is not installed")

_INPUT = re.compile(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}")
_STEP_OUTPUT = re.compile(r"\$\{\{\s*steps\.([\w-]+)\.outputs\.([\w-]+)\s*\}\}")
_EXPRESSION = re.compile(
    r"\$\{\{\s*(inputs|steps|github|runner)\.([\w-]+)(?:\.outputs\.([\w-]+))?\s*\}\}"
)
_PIN = re.compile(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}")
# Variables the tool itself reads from its environment (the token), not the script.
_READ_BY_THE_TOOL = frozenset({"GH_TOKEN"})
# What each entry point writes to $GITHUB_OUTPUT, by the subcommand a step calls (nightly's
# own steps, run and publish, write theirs).
_WRITES = {
    "run": set(RUN_OUTPUTS),
    "publish": set(PUBLISH_OUTPUTS),
    "nightly": set(RUN_OUTPUTS) | set(PUBLISH_OUTPUTS),
}


_NOTES = 'MODEL_BISECT_ANNOTATIONS_FILE="$notes" "$MODEL_BISECT"'


def _subcommand(script: str) -> str | None:
    found = re.search(r'"\$MODEL_BISECT" (\w+)', script)
    return found.group(1) if found else None


def _written(step: Mapping[str, Any]) -> set[str]:
    """The outputs a step sets: its entry point's, and its own `echo NAME=... >> $GITHUB_OUTPUT`."""
    script = step.get("run", "")
    names = set(re.findall(r'echo "([\w-]+)=[^"]*" >> "\$GITHUB_OUTPUT"', script))
    return names | _WRITES.get(_subcommand(script) or "", set())


def _window_problems(step: object, script: str) -> list[str]:
    """The tool runs inside a ::stop-commands:: window with a random token, and its own
    annotations are replayed from a file after the window closes."""
    opened = re.search(r'echo "::stop-commands::\$(\w+)"', script)
    call = script.find('"$MODEL_BISECT"')
    if opened is None or opened.start() > call:
        return [f"step {step}: the tool runs outside a ::stop-commands:: window"]
    token = opened.group(1)
    problems = []
    if not re.search(rf'{token}="\$\(od -An -N16 -tx1 /dev/urandom', script):
        problems.append(f"step {step}: the window's token is not random")
    closed = script.find(f'echo "::${token}::"')
    if closed < call:
        problems.append(f"step {step}: the window never closes after the tool")
    notes = re.search(r'MODEL_BISECT_ANNOTATIONS_FILE="\$(\w+)" "\$MODEL_BISECT"', script)
    if notes is None or script.find(f'cat "${notes.group(1)}"', closed) < 0:
        problems.append(f"step {step}: the tool's annotations are not replayed after the window")
    return problems


def action_problems(text: str) -> list[str]:
    """What is wrong with an action's text: required keys, inputs unused or spliced into a
    script, outputs no step sets, actions not pinned to a commit."""
    try:
        action = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [f"invalid YAML: {exc}"]
    if not isinstance(action, dict):
        return ["not a mapping"]
    problems = [f"no {key}" for key in ("name", "description", "inputs", "outputs", "runs")]
    problems = [p for p in problems if p[3:] not in action]
    runs = action.get("runs") or {}
    if runs.get("using") != "composite":
        problems.append(f"runs.using is {runs.get('using')!r}, not 'composite'")
    steps = runs.get("steps") or []
    ids = {step["id"]: step for step in steps if "id" in step}
    used: set[str] = set()
    for step in steps:
        script = step.get("run")
        if script is not None:
            if "${{" in script:
                problems.append(f"step {step.get('id')}: an expression inside run:")
            if "shell" not in step:
                problems.append(f"step {step.get('id')}: no shell")
        for name, value in {**step.get("env", {}), **step.get("with", {})}.items():
            inputs = _INPUT.findall(str(value))
            used.update(inputs)
            in_env = name in step.get("env", {})
            if name in _READ_BY_THE_TOOL:
                continue
            if inputs and in_env and not re.search(rf"\$\{{?{re.escape(name)}\b", script or ""):
                problems.append(f"step {step.get('id')}: env {name} is never read")
        if script is not None and _subcommand(script) is not None:
            problems += _window_problems(step.get("id"), script)
        uses = step.get("uses")
        if uses is not None and not uses.startswith("./") and not _PIN.fullmatch(uses):
            problems.append(f"not pinned to a commit: {uses}")
    for name in action.get("inputs") or {}:
        if name not in used:
            problems.append(f"input {name} is never used")
    for name, output in (action.get("outputs") or {}).items():
        found = _STEP_OUTPUT.fullmatch(str(output.get("value", "")).strip())
        if found is None:
            problems.append(f"output {name} is not a step's output")
        elif found.group(1) not in ids:
            problems.append(f"output {name}: no step {found.group(1)}")
        elif found.group(2) not in _written(ids[found.group(1)]):
            problems.append(f"output {name}: step {found.group(1)} never sets {found.group(2)}")
    return problems


def _action() -> dict[str, Any]:
    loaded = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_the_committed_action_passes_every_rule() -> None:
    assert action_problems(ACTION.read_text(encoding="utf-8")) == []


def _break(old: str, new: str) -> str:
    text = ACTION.read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("  token:\n", "  knob:\n    description: x\n  token:\n", "input knob is never used"),
        ("MB_MAPPING: ${{ inputs.mapping }}", "MB_MAPPING: x", "input mapping is never used"),
        ('option --mapping "$MB_MAPPING"', "true", "env MB_MAPPING is never read"),
        ('"$MB_PYTHON" -m venv', '"${{ inputs.python-version }}" -m venv', "inside run:"),
        ("steps.run.outputs.comment_url", "steps.post.outputs.comment_url", "no step post"),
        ("steps.run.outputs.verdict", "steps.run.outputs.verdikt", "never sets verdikt"),
        ("steps.run.outputs.report", "steps.install.outputs.report", "never sets report"),
        ("@a26af69be951a213d495a4c3e4e4022e16d87065", "@v5", "not pinned to a commit"),
        ("using: composite", "using: node20", "not 'composite'"),
        ("description: Find", "summary: Find", "no description"),
        ("shell: bash\n      env:\n        MB_PYTHON", "env:\n        MB_PYTHON", "no shell"),
        ("inputs:\n", "inputs: [\n", "invalid YAML"),
        (f'echo "::stop-commands::$window"\n        set +e\n        {_NOTES} nightly',
         f"set +e\n        {_NOTES} nightly", "outside a ::stop-commands:: window"),
        ('window="$(od -An -N16 -tx1 /dev/urandom | tr -d \' \\n\')"', 'window="fixed"',
         "token is not random"),
        ('        echo "::$window::"\n        cat "$notes"\n        exit "$code"',
         '        cat "$notes"\n        exit "$code"', "never closes"),
        (f"{_NOTES} nightly", '"$MODEL_BISECT" nightly', "annotations are not replayed"),
    ],
)  # fmt: skip
def test_a_broken_action_is_caught(old: str, new: str, problem: str) -> None:
    problems = action_problems(_break(old, new))
    assert any(problem in found for found in problems), problems


def test_the_inputs_cover_every_timeline_source_gate_and_publish_setting() -> None:
    inputs = set(_action()["inputs"])
    gates = {spec.flag.removeprefix("--") for spec in CATALOGUE} | {"max-drop"}
    assert gates <= inputs
    assert {"models", "timeline", "git-path", "features", "mapping"} <= inputs
    assert {"tracker-issue", "marker", "python-version", "token"} <= inputs
    assert _action()["inputs"]["token"]["default"] == "${{ github.token }}"


def gate_input_problems(action: Mapping[str, Any]) -> list[str]:
    """Where the action's threshold inputs are out of step with the catalogue: one input per
    gate flag (no more, no fewer), described with the metric's label, handed to the run step
    in its own variable and passed on as that flag; the mapping's description names exactly
    the metrics computed after the mapping. Checked, not generated: action.yml is read by
    GitHub as committed."""
    inputs = action.get("inputs") or {}
    (run,) = [s for s in action["runs"]["steps"] if s.get("id") == "run"]
    env, script = run.get("env") or {}, run.get("run", "")
    wanted = {spec.flag.removeprefix("--"): spec for spec in CATALOGUE}
    present = {k for k in inputs if re.fullmatch(r"(min|max)-[a-z]\w*", k) and k != "max-drop"}
    problems = [
        f"input {k}: no catalogue metric has this flag" for k in sorted(present - set(wanted))
    ]
    for key, spec in wanted.items():
        if key not in inputs:
            problems.append(f"no input {key} for {spec.flag}")
            continue
        if spec.label not in str(inputs[key].get("description", "")):
            problems.append(f"input {key}: the description does not name {spec.label}")
        variable = "MB_" + key.upper().replace("-", "_")
        if env.get(variable) != f"${{{{ inputs.{key} }}}}":
            problems.append(f"input {key}: the run step has no {variable} for it")
        if f'option {spec.flag} "${variable}"' not in script:
            problems.append(f"input {key}: the run step does not pass {spec.flag}")
    mapping = str((inputs.get("mapping") or {}).get("description", ""))
    for spec in CATALOGUE:
        if (spec.label in mapping) is not spec.mapped:
            problems.append(f"input mapping: its description is wrong about {spec.label}")
    return problems


def test_the_actions_gate_inputs_are_in_step_with_the_catalogue() -> None:
    assert gate_input_problems(_action()) == []


def test_a_metric_added_to_the_catalogue_is_missed_in_the_action_until_it_gets_an_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_metric(monkeypatch)
    assert gate_input_problems(_action()) == [
        "no input max-mae for --max-mae",
        "input mapping: its description is wrong about MAE",
    ]
    action = _action()
    del action["inputs"]["min-srocc"]
    action["inputs"]["min-plcc"]["description"] = "Gate."
    action["inputs"]["max-rnse"] = {"description": "typo"}
    monkeypatch.undo()
    assert gate_input_problems(action) == [
        "input max-rnse: no catalogue metric has this flag",
        "input min-plcc: the description does not name PLCC",
        "no input min-srocc for --min-srocc",
    ]


def test_the_outputs_are_the_verdict_and_the_comment() -> None:
    outputs = set(_action()["outputs"])
    assert {"verdict", "first_bad_index", "comment_url"} <= outputs
    assert outputs <= set(RUN_OUTPUTS) | set(PUBLISH_OUTPUTS)


def test_the_action_sets_up_python_with_the_pin_the_workflows_use() -> None:
    (setup,) = [s for s in _action()["runs"]["steps"] if "setup-python" in s.get("uses", "")]
    pins = {
        match
        for path in WORKFLOWS.glob("*.yml")
        for match in re.findall(r"actions/setup-python@[0-9a-f]{40}", path.read_text("utf-8"))
    }
    assert pins == {setup["uses"]}
    assert setup["with"]["python-version"] == "${{ inputs.python-version }}"


def test_the_action_installs_itself_from_its_own_checkout_with_the_constraints() -> None:
    (install,) = [s for s in _action()["runs"]["steps"] if "pip install" in s.get("run", "")]
    command = " ".join(install["run"].replace("\\\n", " ").split())
    constrained = r'pip install [^>]*-c "\$GITHUB_ACTION_PATH/constraints/toolchain\.txt"'
    assert re.search(constrained + r' "\$GITHUB_ACTION_PATH"(\s|$)', command), command
    assert (REPO_ROOT / "constraints" / "toolchain.txt").is_file()


def test_the_actions_steps_run_model_bisect_nightly_and_never_run_or_publish_themselves() -> None:
    """One chain, the one a developer runs: the action calls `model-bisect nightly`, whose
    own steps (check, run, publish) do the rest."""
    scripts = [step.get("run", "") for step in _action()["runs"]["steps"]]
    called = [_subcommand(script) for script in scripts if _subcommand(script) is not None]
    assert called == ["nightly"]
    (script,) = [s for s in scripts if _subcommand(s) == "nightly"]
    assert 'args+=(-- "${models[@]}")' in script  # models after `--`, still
    assert not re.search(r"(model-bisect|\$MODEL_BISECT\"?) (run|publish)\b", "\n".join(scripts))


def test_a_workflow_in_the_repository_uses_the_action() -> None:
    users = [
        path.name
        for path in WORKFLOWS.glob("*.yml")
        if any(
            step.get("uses") == "./"
            for job in yaml.safe_load(path.read_text("utf-8"))["jobs"].values()
            for step in job.get("steps", ())
        )
    ]
    assert users


# --- the scripts, run -------------------------------------------------------------------


def _parse_outputs(text: str) -> dict[str, str]:
    """$GITHUB_OUTPUT as the runner reads it: `NAME=VALUE` or the heredoc form."""
    found, lines = {}, iter(text.splitlines())
    for line in lines:
        if "<<" in line:
            name, delimiter = line.split("<<", 1)
            value = []
            for item in lines:
                if item == delimiter:
                    break
                value.append(item)
            found[name] = "\n".join(value)
        elif "=" in line:
            name, value_text = line.split("=", 1)
            found[name] = value_text
    return found


def run_composite(
    inputs: Mapping[str, str], env: Mapping[str, str], temp: Path, model_bisect: Path
) -> dict[str, tuple[int, dict[str, str]]]:
    """The action's shell steps in order, each with bash as GitHub runs it; the set-up steps
    are stood in for by this interpreter's environment. Returns each step's exit code and
    outputs. A step runs after a failure only when its `if:` asks for it."""
    action = _action()
    given = {n: inputs.get(n, str(spec.get("default", ""))) for n, spec in action["inputs"].items()}
    done: dict[str, tuple[int, dict[str, str]]] = {
        "python": (0, {"python-path": sys.executable}),
        "install": (0, {"model-bisect": str(model_bisect)}),
    }
    failed = False
    for step in action["runs"]["steps"]:
        if step["id"] in done or "uses" in step:  # actions (the cache) are not run here
            continue
        if failed and "!cancelled()" not in str(step.get("if", "")):
            continue

        def value(match: re.Match[str]) -> str:
            kind, name, output = match.groups()
            if kind == "inputs":
                return given[name]
            if kind == "github":
                return env.get("GITHUB_TOKEN_FOR_TEST", "")
            if kind == "runner":  # runner.temp
                return str(temp)
            return done.get(name, (0, {}))[1].get(output, "")

        given["token"] = _EXPRESSION.sub(value, given["token"])  # its default is an expression
        step_env = {k: _EXPRESSION.sub(value, str(v)) for k, v in step.get("env", {}).items()}
        output_file = temp / f"{step['id']}.output"
        output_file.touch()
        assert BASH is not None
        proc = subprocess.run(
            [BASH, "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            env={**env, **step_env, "GITHUB_OUTPUT": str(output_file), "RUNNER_TEMP": str(temp)},
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        outputs = _parse_outputs(output_file.read_text(encoding="utf-8"))
        done[step["id"]] = (proc.returncode, {**outputs, "_log": proc.stdout + proc.stderr})
        failed = failed or proc.returncode != 0
    return done


def _runner_env(github: FakeGitHub, summary: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GH_", "GITHUB_"))}
    return {
        **env,
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": github.url,
        "GITHUB_TOKEN_FOR_TEST": github.token,  # what ${{ github.token }} stands for
    }


def _model_bisect() -> Path:
    script = Path(sys.executable).parent / "model-bisect"
    if not script.is_file():
        pytest.skip("the model-bisect script is not installed beside this interpreter")
    return script


@needs_bash
def test_the_action_bisects_the_configured_fixture_and_publishes_the_comment(
    tmp_path: Path, fake_github: FakeGitHub
) -> None:
    summary = tmp_path / "summary.md"
    done = run_composite(
        {"tracker-issue": str(ISSUE)},
        _runner_env(fake_github, summary),
        tmp_path,
        _model_bisect(),
    )
    run_code, run = done["run"]
    assert run_code == 0, run["_log"]
    # timeline, features and gate all came from [tool.model-bisect] in pyproject.toml
    assert (run["verdict"], run["first_bad_index"], run["last_good_index"]) == (
        "no_regression",
        "",
        "7",
    )
    report = json.loads(Path(run["report"]).read_text(encoding="utf-8"))
    assert [g["threshold"] for g in report["gates"]] == [0.85]
    # the chain drift-checked the workspace's fixture before bisecting it
    assert json.loads((Path(run["report"]).parent / "check.json").read_text())["result"] == "match"
    (comment,) = fake_github.comments(REPO, ISSUE)
    assert run["comment_url"] == comment["html_url"]
    assert fake_github.token not in summary.read_text("utf-8") + run["_log"]


@needs_bash
def test_a_regression_fails_the_step_yet_the_comment_and_outputs_still_come(
    tmp_path: Path, fake_github: FakeGitHub
) -> None:
    models = tmp_path / "models"
    shutil.copytree(FIXTURE_DIR / "models", models)
    for i in range(5, 8):
        linear_model(models / f"model_{i:02d}.onnx", bad_weights(6, seed=100 + i))
    inputs = {"models": f"{models}/model_0[0-4].onnx\n{models}/model_0[5-7].onnx\n"}
    inputs |= {"tracker-issue": str(ISSUE), "min-srocc": "0.8", "marker": "selftest"}
    done = run_composite(
        inputs, _runner_env(fake_github, tmp_path / "summary.md"), tmp_path, _model_bisect()
    )
    run_code, run = done["run"]
    assert run_code == 2, run["_log"]
    assert (run["verdict"], run["first_bad_index"], run["first_bad_label"]) == (
        "regression",
        "5",
        "model_05.onnx",
    )
    assert "::error title=model-bisect::regression at #5 model_05.onnx" in run["_log"]
    report = json.loads(Path(run["report"]).read_text(encoding="utf-8"))
    assert [(g["metric"], g["threshold"]) for g in report["gates"]] == [("srocc", 0.8)]
    (comment,) = fake_github.comments(REPO, ISSUE)
    assert run["comment_url"] == comment["html_url"]
    assert comment["body"].startswith("<!-- model-bisect:selftest -->")
    assert "Regression at index 5" in comment["body"]


@needs_bash
def test_a_bisect_that_breaks_publishes_wiring_broke_with_its_log(
    tmp_path: Path, fake_github: FakeGitHub
) -> None:
    inputs = {"features": str(tmp_path / "gone.parquet"), "tracker-issue": str(ISSUE)}
    done = run_composite(
        inputs, _runner_env(fake_github, tmp_path / "summary.md"), tmp_path, _model_bisect()
    )
    run_code, run = done["run"]
    assert run_code == 3, run["_log"]
    assert run.get("verdict", "") == ""
    # replayed after the window, so the runner obeys it
    assert (
        "::error title=model-bisect::the nightly's wiring broke" in obeyed_commands(run["_log"])[0]
    )
    (comment,) = fake_github.comments(REPO, ISSUE)
    assert "Wiring broke in stage <code>bisect</code>" in comment["body"]
    assert "gone.parquet" in comment["body"]
    assert run["comment_url"] == comment["html_url"]


def obeyed_commands(log: str) -> list[str]:
    """The workflow commands a runner acts on in a step's log: lines beginning with `::`
    after leading whitespace, none between `::stop-commands::T` and `::T::`."""
    obeyed, stopped_by = [], None
    for line in log.replace("\r", "\n").split("\n"):
        text = line.lstrip()
        if not text.startswith("::"):
            continue
        if stopped_by is not None:
            if text == f"::{stopped_by}::":
                stopped_by = None
            continue
        if text.startswith("::stop-commands::"):
            stopped_by = text.removeprefix("::stop-commands::")
            continue
        obeyed.append(text)
    return obeyed


@needs_bash
def test_forged_commands_in_the_tools_output_are_inert_and_ours_still_count(
    tmp_path: Path, fake_github: FakeGitHub
) -> None:
    from tests.test_hostile_run import _forged_node_model

    models = tmp_path / "models"
    shutil.copytree(FIXTURE_DIR / "models", models)
    for i in range(5, 8):
        linear_model(models / f"model_{i:02d}.onnx", bad_weights(6, seed=100 + i))
    _forged_node_model(models / "model_06.onnx", 6)
    labelled = models / "model_05 ::error title=forged::injected.onnx"
    (models / "model_05.onnx").rename(labelled)
    inputs = {"models": f"{models}\n", "tracker-issue": str(ISSUE), "min-srocc": "0.8"}
    done = run_composite(
        inputs, _runner_env(fake_github, tmp_path / "summary.md"), tmp_path, _model_bisect()
    )
    run_code, run = done["run"]
    assert run_code == 2, run["_log"]
    obeyed = obeyed_commands(run["_log"])
    assert obeyed, run["_log"]
    assert all(
        c.startswith(("::error title=model-bisect::", "::warning title=model-bisect::"))
        for c in obeyed
    ), obeyed
    assert not any("forged" in c.split("::", 2)[1] for c in obeyed)


@needs_bash
def test_a_models_line_starting_with_a_dash_is_a_file_name_not_an_option(
    tmp_path: Path, fake_github: FakeGitHub
) -> None:
    inputs = {"models": f"{FIXTURE_DIR}/models\n--scan\n", "tracker-issue": str(ISSUE)}
    done = run_composite(
        inputs, _runner_env(fake_github, tmp_path / "summary.md"), tmp_path, _model_bisect()
    )
    run_code, run = done["run"]
    assert run_code == 3, run["_log"]  # `--scan` named no file, so the run stops...
    assert "model not found in --scan" in run["_log"]  # ...rather than switching on a scan


# --- the evaluation cache carries over between runs ---------------------------------------


def test_the_action_restores_and_saves_the_evaluation_cache() -> None:
    assert eval_cache_problems(_action()["runs"]["steps"]) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("        restore-keys: |\n", "        lookup-only: false\n        unused: |\n",
         "no restore-keys"),
        ("-${{ github.run_id }}-${{ github.run_attempt }}", "", "does not change every run"),
        ("    - id: save-eval-cache\n      if: ${{ !cancelled() && steps.install.outcome"
         " == 'success' }}\n", "    - id: save-eval-cache\n", "saved only when the job succeeds"),
        ("        MODEL_BISECT_CACHE_DIR: ${{ runner.temp }}/model-bisect-cache\n",
         "        MODEL_BISECT_CACHE_DIR: ${{ runner.temp }}/elsewhere\n", "not the bisect's"),
        ("key: ${{ steps.eval-cache.outputs.cache-primary-key }}", "key: fixed",
         "primary key"),
    ],
)  # fmt: skip
def test_a_broken_cache_step_in_the_action_is_caught(old: str, new: str, problem: str) -> None:
    broken = yaml.safe_load(_break(old, new))
    problems = eval_cache_problems(broken["runs"]["steps"])
    assert any(problem in found for found in problems), problems
