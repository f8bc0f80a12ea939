"""One table of run settings (`model_bisect/settings.py`): `[tool.model-bisect]`, the action's
inputs and the flags follow it, and every key the table accepts reaches the run.

Each run here happens in a temporary project folder with its own pyproject.toml, never the
repository's, and evaluates real ONNX models with ONNX Runtime on real parquet.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from model_bisect.catalogue import CATALOGUE
from model_bisect.cli import build_parser
from model_bisect.config import read_config
from model_bisect.errors import InputError
from model_bisect.exitcodes import ExitCode
from model_bisect.settings import SETTINGS, Command, Kind, Setting, config_keys
from tests.clirun import REPO_ROOT, call_main, run_module
from tests.conftest import FIXTURE_DIR
from tests.culpritkit import features as culprit_features
from tests.culpritkit import timeline as culprit_timeline
from tests.hostilekit import loop_forever_model
from tests.modelkit import default_weights, features_parquet, linear_model, timeline_dir
from tests.repokit import git

ACTION = REPO_ROOT / "action.yml"


def _help(command: Command) -> str:
    """What `model-bisect COMMAND --help` prints, on one line per flag's help (unwrapped)."""
    ran = call_main("model_bisect", command.value, "--help")
    assert ran.code == 0
    return " ".join(ran.out.split())


def settings_problems(
    settings: Sequence[Setting],
    action: Mapping[str, Any],
    helps: Mapping[Command, str],
    keys: Sequence[str],
) -> list[str]:
    """Where the action, the config keys or ``--help`` are out of step with the table.

    Checked, not generated: GitHub reads action.yml as committed, so a test holds it to the
    records rather than a build step writing it."""
    inputs = action.get("inputs") or {}
    (run,) = [s for s in action["runs"]["steps"] if s.get("id") == "run"]
    env, script = run.get("env") or {}, run.get("run", "")
    problems = []
    for s in settings:
        if s.name not in keys:
            problems.append(f"{s.name}: not a [tool.model-bisect] key")
        if s.name not in inputs:
            problems.append(f"{s.name}: no action input")
        elif inputs[s.name].get("description") != s.action_help:
            problems.append(f"{s.name}: the input's description is not the setting's help")
        if env.get(s.env) != f"${{{{ inputs.{s.name} }}}}":
            problems.append(f"{s.name}: the run step has no {s.env}")
        passed = (
            f'if [ "${s.env}" = "true" ]; then args+=({s.flag}); fi'
            if s.kind is Kind.SWITCH
            else f'option {s.flag} "${s.env}"'
        )
        if s.kind is Kind.LIST:  # one value per line, each its own flag
            passed = (
                f'if [ -n "${{line// /}}" ]; then args+=({s.flag} "$line"); fi\ndone <<< "${s.env}"'
            )
        if passed not in script:
            problems.append(f"{s.name}: the run step does not pass {s.flag}")
        for command, text in helps.items():
            shown = f"{s.flag} " in text and " ".join(s.flag_help.split()) in text
            if (command in s.commands) != shown:
                problems.append(f"{s.name}: `{command} --help` is wrong about {s.flag}")
    return problems


def _action() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    return loaded


def test_the_action_the_config_keys_and_help_follow_the_settings_table() -> None:
    helps = {command: _help(command) for command in Command}
    assert settings_problems(SETTINGS, _action(), helps, config_keys()) == []


def test_a_setting_added_to_the_table_is_missed_until_action_and_flag_follow() -> None:
    new = Setting("shard-by", Kind.TEXT, "the column rows are sharded by", example="encoder")
    helps = {command: _help(command) for command in Command}
    assert settings_problems([*SETTINGS, new], _action(), helps, config_keys()) == [
        "shard-by: not a [tool.model-bisect] key",
        "shard-by: no action input",
        "shard-by: the run step has no MB_SHARD_BY",
        "shard-by: the run step does not pass --shard-by",
        "shard-by: `run --help` is wrong about --shard-by",
        "shard-by: `judge --help` is wrong about --shard-by",
    ]


def test_every_gate_flag_has_help_naming_its_metric() -> None:
    parser = build_parser()
    for command in ("run", "judge"):
        sub = parser._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
        by_flag = {a.option_strings[0]: a for a in sub._actions if a.option_strings}
        for flag in [spec.flag for spec in CATALOGUE] + ["--max-drop"]:
            assert by_flag[flag].help, f"{command} {flag} has no help"
        for spec in CATALOGUE:
            assert spec.label in str(by_flag[spec.flag].help)


# --- each key of the table reaches the run -----------------------------------------------


def _project(root: Path, body: str, *, fixture: bool = True) -> Path:
    """A project folder with (by default) a copy of the fixture and its own pyproject.toml."""
    root.mkdir(parents=True, exist_ok=True)
    if fixture:
        shutil.copytree(FIXTURE_DIR, root / "data")
        body = 'models = "data/models"\nfeatures = "data/features.parquet"\n' + body
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "p"\n\n[tool.model-bisect]\n{body}', encoding="utf-8"
    )
    return root


def _run_here(
    monkeypatch: pytest.MonkeyPatch, project: Path, *extra: str
) -> tuple[int, dict[str, Any], str]:
    """`model-bisect run` from ``project``: its exit code, its report and its stderr."""
    monkeypatch.chdir(project)
    out = project / "report.json"
    ran = call_main("model_bisect", "run", "--quiet", "--no-cache", "--json", out, *extra)
    report = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    return ran.code, report, ran.err


def test_config_target_names_the_score_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, good = features_parquet(tmp_path / "p" / "f.parquet", target="score")
    timeline_dir(tmp_path / "p" / "models", 3, None, weights=list(good))
    body = 'models = "models"\nfeatures = "f.parquet"\nmin-plcc = 0.9\ntarget = "score"\n'
    code, report, err = _run_here(monkeypatch, _project(tmp_path / "p", body, fixture=False))
    assert code == ExitCode.OK, err  # without the key: no column 'mos', exit 3
    assert report["settings"]["target"] == "score"


def test_config_input_name_chooses_the_graph_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "p"
    features_parquet(root / "f.parquet")
    for i in range(2):
        linear_model(root / "models" / f"m{i}.onnx", default_weights(6), input_name="x")
    base = 'models = "models"\nfeatures = "f.parquet"\nmin-plcc = 0.9\n'
    code, _, err = _run_here(
        monkeypatch, _project(root, base + 'input-name = "nosuch"\n', fixture=False)
    )
    assert code == ExitCode.INPUT  # every model skipped: none has an input 'nosuch'
    assert "nosuch" in err
    code, report, err = _run_here(
        monkeypatch, _project(root, base + 'input-name = "x"\n', fixture=False)
    )
    assert code == ExitCode.OK, err
    assert {s["status"] for s in report["steps"]} == {"good"}


def test_config_significance_tests_the_files_drop_gates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = "max-drop = { plcc = 0.5 }\nsignificance = 0.05\n"
    code, report, err = _run_here(monkeypatch, _project(tmp_path / "p", body))
    assert code == ExitCode.OK, err
    assert report["settings"]["significance"] == 0.05
    assert all(s["p_values"] for s in report["steps"] if s["index"] != 0)


def test_config_jobs_probes_in_parallel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, report, err = _run_here(
        monkeypatch, _project(tmp_path / "p", "min-plcc = 0.85\njobs = 2\n")
    )
    assert code == ExitCode.OK, err
    assert report["settings"]["jobs"] == 2


def test_config_scan_evaluates_every_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, report, err = _run_here(
        monkeypatch, _project(tmp_path / "p", "min-plcc = 0.85\nscan = true\n")
    )
    assert code == ExitCode.OK, err
    assert report["scan"] == {"monotone": True, "violations": []}
    assert len(report["steps"]) == len(report["timeline"])


def test_config_direction_lower_negates_the_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = 'min-plcc = 0.85\ndirection = "lower"\n'
    code, report, err = _run_here(monkeypatch, _project(tmp_path / "p", body))
    assert code == ExitCode.REGRESSION, err  # the fixture's scores rise with quality
    assert {m["direction"] for m in report["timeline"]} == {"lower"}
    assert report["steps"][-1]["metrics"]["plcc"] < 0


def test_config_rev_range_starts_the_git_timeline_at_its_good_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "p"
    (root / "models").mkdir(parents=True)
    _, good = features_parquet(root / "f.parquet")
    git(root, "init", "-q")
    commits = []
    for i in range(4):
        linear_model(root / "models" / "m.onnx", [w * (1 + i / 10) for w in good])
        git(root, "add", "models")
        git(root, "commit", "-q", "-m", f"step {i}")
        commits.append(git(root, "rev-parse", "HEAD").strip())
    body = (
        f'git-path = "models/m.onnx"\nrev-range = "{commits[1]}..HEAD"\n'
        'features = "f.parquet"\nmin-plcc = 0.9\n'
    )
    code, report, err = _run_here(monkeypatch, _project(root, body, fixture=False), "--scan")
    assert code == ExitCode.OK, err
    assert [m["commit"] for m in report["timeline"]] == commits[1:]


def test_config_rev_range_without_git_path_is_refused(tmp_path: Path) -> None:
    path = _project(tmp_path / "p", 'rev-range = "v1..HEAD"\n') / "pyproject.toml"
    with pytest.raises(InputError) as raised:
        read_config(path)
    assert "bad value rev-range = 'v1..HEAD'" in str(raised.value)
    assert "set git-path too" in str(raised.value)


def test_config_row_id_names_the_culprits_worst_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "p"
    root.mkdir()
    columns = culprit_features(root / "f.parquet")
    culprit_timeline(root / "models", first_bad=3)
    body = 'models = "models"\nfeatures = "f.parquet"\nmin-plcc = 0.97\nrow-id = "clip"\n'
    code, report, err = _run_here(monkeypatch, _project(root, body, fixture=False))
    assert code == ExitCode.OK, err
    rows = report["culprit"]["rows"]
    assert rows  # without the key, each row's id is null
    assert [r["id"] for r in rows] == [columns["clip"][r["row"]] for r in rows]


def test_config_model_timeout_stops_a_model_that_would_run_for_days(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    shutil.copytree(FIXTURE_DIR / "models", root / "models")
    shutil.copy(FIXTURE_DIR / "features.parquet", root / "f.parquet")
    width = len(pq.read_schema(root / "f.parquet").names) - 1  # every column but the target
    loop_forever_model(root / "models" / "model_03.onnx", width)
    body = 'models = "models"\nfeatures = "f.parquet"\nmin-plcc = 0.85\nmodel-timeout = 2\n'
    _project(root, body, fixture=False)
    out = root / "report.json"
    # A real process with a bound: if the key were ignored, the model would run for 600 s.
    ran = run_module(
        "model_bisect", "run", "--quiet", "--no-cache", "--scan", "--json", out,
        cwd=root, timeout=120,
    )  # fmt: skip
    assert ran.code == ExitCode.OK, ran.err
    (step,) = [s for s in json.loads(out.read_text())["steps"] if s["index"] == 3]
    assert "took longer than 2 s" in step["reason"]
