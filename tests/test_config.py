"""`[tool.model-bisect]` in pyproject.toml: found from the working directory upwards, paths
relative to the file, flags win over it, and a wrong key or value is exit 3 naming it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from model_bisect.config import KEYS, MAX_CONFIG_BYTES, find_config, load_config, read_config
from model_bisect.errors import InputError
from model_bisect.exitcodes import ExitCode
from model_bisect.timeline.registry import SourceName
from tests.clirun import run_module
from tests.conftest import FIXTURE_DIR, REPO_ROOT
from tests.fake_github import FakeGitHub
from tests.metrickit import add_metric
from tests.repokit import git

REPO, ISSUE = "acme/models", 1


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project holding a copy of the fixture and a pyproject.toml that describes it."""
    root = tmp_path / "project"
    shutil.copytree(FIXTURE_DIR, root / "data")
    (root / "src" / "deep").mkdir(parents=True)
    write_table(
        root,
        'models = "data/models"\nfeatures = "data/features.parquet"\nmin-plcc = 0.85\n'
        'marker = "quality"\n',
    )
    return root


def write_table(root: Path, body: str) -> Path:
    path = root / "pyproject.toml"
    path.write_text(f'[project]\nname = "x"\n\n[tool.model-bisect]\n{body}', encoding="utf-8")
    return path


def run_in(folder: Path, *args: str | Path, env: dict[str, str] | None = None) -> Any:
    return run_module("model_bisect", *args, cwd=folder, env=env)


def gates_of(report: Path) -> list[tuple[str, str, float]]:
    data = json.loads(report.read_text(encoding="utf-8"))
    return [(g["metric"], g["kind"], g["threshold"]) for g in data["gates"]]


def test_run_from_a_subfolder_takes_timeline_features_and_gates_from_the_table(
    project: Path, tmp_path: Path
) -> None:
    report = tmp_path / "r.json"
    ran = run_in(project / "src" / "deep", "run", "--quiet", "--json", report)
    assert ran.code == ExitCode.OK, ran.err
    assert gates_of(report) == [("plcc", "min", 0.85)]
    data = json.loads(report.read_text(encoding="utf-8"))
    assert Path(data["timeline"][0]["path"]).parent == project / "data" / "models"


def test_a_gate_flag_replaces_the_files_gates(project: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    ran = run_in(project, "run", "--min-srocc", "0.8", "--quiet", "--json", report)
    assert ran.code == ExitCode.OK, ran.err
    assert gates_of(report) == [("srocc", "min", 0.8)]
    # the same metric from a flag: the flag's threshold decides (the head fails 0.999)
    ran = run_in(project, "run", "--min-plcc", "0.999", "--quiet", "--json", report)
    assert ran.code == ExitCode.REGRESSION
    assert gates_of(report) == [("plcc", "min", 0.999)]


def test_timeline_and_features_flags_win_over_the_file(project: Path, tmp_path: Path) -> None:
    write_table(project, 'models = "nowhere/*.onnx"\nfeatures = "gone.parquet"\nmin-plcc = 0.85\n')
    report = tmp_path / "r.json"
    models, features = project / "data" / "models", project / "data" / "features.parquet"
    ran = run_in(project, "run", models, "--features", features, "--quiet", "--json", report)
    assert ran.code == ExitCode.OK, ran.err
    ran = run_in(project, "run", models, "--quiet")  # the file's features, which are gone
    assert ran.code == ExitCode.INPUT
    assert f"features file not found in {project / 'gone.parquet'}" in ran.err
    ran = run_in(project, "run", "--features", features, "--quiet")  # the file's timeline
    assert ran.code == ExitCode.INPUT
    assert "nowhere/*.onnx" in ran.err


def test_publish_takes_the_marker_and_tracker_issue_from_the_table(
    project: Path, tmp_path: Path, fake_github: FakeGitHub
) -> None:
    report = tmp_path / "r.json"
    assert run_in(project, "run", "--quiet", "--json", report).code == ExitCode.OK
    write_table(project, f'marker = "quality"\ntracker-issue = {ISSUE}\n')
    env = {
        "PATH": "/usr/bin:/bin",
        "GH_TOKEN": fake_github.token,
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": fake_github.url,
    }
    ran = run_in(project, "publish", "--report", report, env=env)
    assert ran.code == ExitCode.OK, ran.err
    (comment,) = fake_github.comments(REPO, ISSUE)
    assert comment["body"].startswith("<!-- model-bisect:quality -->")
    ran = run_in(project, "publish", "--report", report, "--marker", "other", "--dry-run")
    assert ran.out.startswith("<!-- model-bisect:other -->")


def test_an_explicit_config_file_is_used_instead_of_the_nearest(
    project: Path, tmp_path: Path
) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text("[tool.model-bisect]\nmin-srocc = 0.5\n", encoding="utf-8")
    report = tmp_path / "r.json"
    ran = run_in(project, "run", "--config", other, "data/models", "--features",
                 "data/features.parquet", "--quiet", "--json", report)  # fmt: skip
    assert ran.code == ExitCode.OK, ran.err
    assert gates_of(report) == [("srocc", "min", 0.5)]


def test_the_nearest_pyproject_without_the_table_is_passed_over(project: Path) -> None:
    inner = project / "src"
    (inner / "pyproject.toml").write_text('[project]\nname = "inner"\n', encoding="utf-8")
    assert find_config(inner / "deep") == project / "pyproject.toml"
    assert load_config(None, inner / "deep").marker == "quality"
    assert find_config(Path("/")) is None


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("min-plc = 0.85\n", "unknown key 'min-plc'"),
        ("min_plcc = 0.85\n", "unknown key 'min_plcc'"),
        ("min-plcc = 1.5\n", "min-plcc = 1.5"),
        ('min-plcc = "high"\n', "min-plcc = 'high'"),
        ("min-plcc = true\n", "min-plcc = True"),
        ("max-rmse = -1\n", "max-rmse = -1"),
        ('mapping = "cubicle"\n', "mapping = 'cubicle'"),
        ("tracker-issue = 0\n", "tracker-issue = 0"),
        ('tracker-issue = "12"\n', "tracker-issue = '12'"),
        ("max-drop = { vmaf = 0.1 }\n", "max-drop.vmaf = 0.1"),
        ("max-drop = { plcc = -0.1 }\n", "max-drop.plcc = -0.1"),
        ('max-drop = "plcc=0.1"\n', "max-drop = 'plcc=0.1'"),
        ('marker = "a b"\n', "marker = 'a b'"),
        ("models = []\n", "models = []"),
        ("features = 3\n", "features = 3"),
        ('executor = "dask"\n', "executor = 'dask'"),
        ('ray-address = ""\n', "ray-address = ''"),
    ],
)
def test_a_bad_key_or_value_exits_3_naming_it(project: Path, body: str, named: str) -> None:
    write_table(project, body)
    ran = run_in(project, "run", "--quiet")
    assert ran.code == ExitCode.INPUT
    (line,) = ran.err.splitlines()
    assert line.startswith("error: ")
    assert named in line
    assert f"{project / 'pyproject.toml'} [tool.model-bisect]" in line
    if "unknown key" in named:
        assert "min-plcc" in line  # the fix lists the keys that exist


def test_invalid_toml_or_a_config_without_the_table_exits_3_naming_the_file(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[tool.model-bisect\n", encoding="utf-8")
    empty = tmp_path / "empty.toml"
    empty.write_text("[tool.other]\n", encoding="utf-8")
    for path, problem in ((broken, "invalid TOML"), (empty, "no [tool.model-bisect] table")):
        ran = run_in(tmp_path, "run", "--config", path, "--quiet")
        assert ran.code == ExitCode.INPUT
        assert ran.err.startswith(f"error: {problem}")
        assert str(path) in ran.err
    ran = run_in(tmp_path, "publish", "--config", tmp_path / "gone.toml", "--dry-run",
                 "--report", tmp_path / "r.json")  # fmt: skip
    assert ran.code == ExitCode.INPUT
    assert ran.err.startswith("error: configuration file not found")


def test_every_key_has_a_command_line_flag_of_the_same_name() -> None:
    run_help = run_module("model_bisect", "run", "--help").out
    publish_help = run_module("model_bisect", "publish", "--help").out
    for key in KEYS:
        flag = {"models": "MODEL", "tracker-issue": "--issue"}.get(key, f"--{key}")
        assert flag in run_help + publish_help, key


def test_the_repositorys_own_table_is_valid_and_its_paths_exist() -> None:
    config = read_config(REPO_ROOT / "pyproject.toml")
    assert config.has_gates
    assert config.features is not None
    assert config.features.is_file()
    models = config.timelines[SourceName.MODELS]
    assert models
    assert all(Path(model).exists() for model in models)


def test_a_git_path_in_the_table_is_the_timeline_as_the_flag_would_be(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    git(repo, "init", "-q")
    shutil.copy(FIXTURE_DIR / "features.parquet", repo / "features.parquet")
    for number in (0, 1):
        shutil.copy(FIXTURE_DIR / "models" / f"model_0{number}.onnx", repo / "m.onnx")
        git(repo, "add", "m.onnx")
        git(repo, "commit", "-q", "-m", f"model {number}")
    write_table(repo, 'git-path = "m.onnx"\nfeatures = "features.parquet"\nmin-plcc = 0.5\n')
    report = tmp_path / "r.json"
    ran = run_in(repo / "sub", "run", "--quiet", "--json", report)
    assert ran.code == ExitCode.OK, ran.err
    timeline = json.loads(report.read_text(encoding="utf-8"))["timeline"]
    assert [entry["subject"] for entry in timeline] == ["model 0", "model 1"]


def test_read_config_raises_input_error_for_the_library_callers(tmp_path: Path) -> None:
    path = write_table(tmp_path, "min-krocc = 2\n")
    with pytest.raises(InputError, match="min-krocc = 2"):
        read_config(path)


def test_a_metric_added_to_the_catalogue_gets_its_config_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_table(tmp_path, "max-mae = 0.25\nmax-drop = { mae = 0.05 }\n")
    with pytest.raises(InputError, match="max-mae"):
        read_config(path)  # the shipped catalogue has no MAE
    add_metric(monkeypatch)
    config = read_config(path)
    assert config.thresholds == {"mae": 0.25}
    assert config.max_drop == ("mae=0.05",)
    with pytest.raises(InputError, match="max-mae"):
        read_config(write_table(tmp_path, "max-mae = -1\n"))


# --- the nightly ----------------------------------------------------------------------------


def _nightly_plan(cwd: Path, env: dict[str, str], *words: str) -> Any:
    from model_bisect.cli import build_parser
    from model_bisect.commands.nightly import plan

    return plan(build_parser().parse_args(["nightly", *words]), env, cwd)


def test_the_nightly_bisect_leaves_gates_to_the_table_and_a_fixture_replaces_the_data(
    tmp_path: Path,
) -> None:
    from model_bisect.commands.nightly import bisect_command

    plain = bisect_command(_nightly_plan(REPO_ROOT, {}))
    assert plain[plain.index("--config") + 1] == str(REPO_ROOT / "pyproject.toml")
    assert not any(word.startswith("--min-") for word in plain)
    assert "--features" not in plain
    other = bisect_command(_nightly_plan(REPO_ROOT, {}, "--fixture", str(tmp_path / "fixture")))
    assert other[other.index("--features") + 1] == str(tmp_path / "fixture" / "features.parquet")
    assert other[-2:] == ["--", str(tmp_path / "fixture" / "models")]


def test_the_nightly_takes_the_tracker_issue_from_the_table_after_option_and_variable(
    tmp_path: Path,
) -> None:
    config = str(write_table(tmp_path, "tracker-issue = 12\n"))
    base = ("--publish", "--config", config)
    assert _nightly_plan(tmp_path, {}, *base).target == ("--issue", "12")
    env = {"BISECT_TRACKER_ISSUE": "34"}
    assert _nightly_plan(tmp_path, env, *base).target == ("--issue", "34")
    assert _nightly_plan(tmp_path, env, *base, "--issue", "56").target == ("--issue", "56")


# --- hostile configuration files ------------------------------------------------------------


def _deep_toml(path: Path, depth: int = 50_000, *, table: bool = False) -> Path:
    body = "a = " + "[" * depth + "]" * depth + "\n"
    path.write_text(body + ("[tool.model-bisect]\n" if table else ""), encoding="utf-8")
    return path


def _one_line_exit_3(ran: Any, *says: str) -> None:
    assert "Traceback" not in ran.err, ran.err[-2000:]
    assert ran.code == ExitCode.INPUT, ran.err
    lines = ran.err.splitlines()
    assert len(lines) == 1, ran.err
    for text in says:
        assert text in lines[0]


def test_a_fifo_or_a_device_as_config_is_one_line_exit_3_without_opening_it(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)  # opening it for reading would block until a writer came: none will
    ran = run_in(tmp_path, "run", "--config", fifo, "--quiet")
    _one_line_exit_3(ran, "configuration file is a FIFO", str(fifo))
    ran = run_in(tmp_path, "run", "--config", "/dev/zero", "--quiet")
    _one_line_exit_3(ran, "configuration file is a character device", "/dev/zero")


def test_a_config_beyond_the_size_bound_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_text("# padding\n" * (MAX_CONFIG_BYTES // 10 + 1), encoding="utf-8")
    ran = run_in(tmp_path, "run", "--config", big, "--quiet")
    _one_line_exit_3(ran, "configuration file is larger than", str(big))


def test_toml_nested_50000_deep_is_one_line_exit_3(tmp_path: Path) -> None:
    deep = _deep_toml(tmp_path / "deep.toml")
    _one_line_exit_3(run_in(tmp_path, "run", "--config", deep), "nests too deeply", str(deep))
    # Found from the working folder or a parent, and naming our table: the same line.
    _deep_toml(tmp_path / "pyproject.toml", table=True)
    (tmp_path / "sub").mkdir()
    for folder in (tmp_path, tmp_path / "sub"):
        ran = run_in(folder, "run", "m.onnx", "--features", "f.parquet", "--min-plcc", "0.5")
        _one_line_exit_3(ran, "nests too deeply", str(tmp_path / "pyproject.toml"))


@pytest.mark.parametrize("broken", ["deep", "syntax"])
def test_a_broken_pyproject_that_cannot_hold_the_table_does_not_stop_a_run(
    tmp_path: Path, broken: str
) -> None:
    """Some other project's pyproject.toml above the working folder, broken (nested past the
    parser, or not TOML at all) and not naming our table, is not ours to judge: the search
    passes it by as it passes by any file without the table."""
    if broken == "deep":
        _deep_toml(tmp_path / "pyproject.toml")
    else:
        (tmp_path / "pyproject.toml").write_text("[project\nname=", encoding="utf-8")
    (tmp_path / "work").mkdir()
    ran = run_in(tmp_path / "work", "run", "m.onnx", "--features", "f.parquet", "--min-plcc", "0.5")
    _one_line_exit_3(ran, "model not found")  # the run went on to its own inputs


def test_the_report_names_the_file_whose_table_supplied_the_settings(
    project: Path, tmp_path: Path
) -> None:
    report = tmp_path / "r.json"
    ran = run_in(project / "src" / "deep", "run", "--quiet", "--json", report)
    assert ran.code == ExitCode.OK, ran.err
    invoked = json.loads(report.read_text(encoding="utf-8"))["invocation"]
    assert invoked["config"] == str(project / "pyproject.toml")  # found two folders up
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    data = project / "data"
    ran = run_in(
        elsewhere, "run", data / "models", "--features", data / "features.parquet",
        "--min-plcc", "0.5", "--quiet", "--json", report,
    )  # fmt: skip
    assert ran.code == ExitCode.OK, ran.err
    assert json.loads(report.read_text(encoding="utf-8"))["invocation"]["config"] is None


def test_a_ray_address_without_the_ray_executor_exits_3(project: Path) -> None:
    write_table(project, 'models = "data/models"\nfeatures = "data/features.parquet"\n'
                'min-plcc = 0.85\nray-address = "auto"\n')  # fmt: skip
    ran = run_in(project, "run", "--quiet", "--no-cache")
    assert ran.code == ExitCode.INPUT
    (line,) = ran.err.splitlines()
    assert line == (
        "error: --ray-address needs --executor ray in model-bisect run: add --executor ray,"
        " or drop --ray-address"
    )
