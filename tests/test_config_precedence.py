"""Flag > `[tool.model-bisect]` > built-in default, decided outside the repository.

Every test works in a temporary folder (`monkeypatch.chdir`) that holds its own
`pyproject.toml`, or none, and runs `model-bisect` in this process, where the nearest table is
found from the working directory. So the project's own `[tool.model-bisect]` can never decide
an outcome here: each pair of runs differs only in the table or the flag under test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from model_bisect.exitcodes import ExitCode
from tests.clirun import CliRun, call_main
from tests.fake_github import FakeGitHub
from tests.modelkit import features_parquet, linear_model

REPO = "acme/models"
WEIGHTS = [1.0, 0.8, 0.6, 0.5, 0.3, 0.2]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with three models and a feature cache, and no pyproject.toml yet."""
    root = tmp_path / "project"
    features_parquet(root / "data" / "features.parquet", rows=120, seed=8, noise=0.05)
    for i in range(3):
        linear_model(root / "data" / "models" / f"m{i}.onnx", WEIGHTS, bias=0.1 * i)
    monkeypatch.chdir(root)
    assert not any((p / "pyproject.toml").is_file() for p in (root, *root.parents))
    return root


def _table(root: Path, body: str) -> None:
    text = (
        '[project]\nname = "elsewhere"\n\n[tool.model-bisect]\n'
        'models = "data/models"\nfeatures = "data/features.parquet"\n' + body
    )
    (root / "pyproject.toml").write_text(text, encoding="utf-8")


def _run(root: Path, *args: str) -> tuple[CliRun, dict[str, Any] | None]:
    out = root / "r.json"
    out.unlink(missing_ok=True)
    ran = call_main("model_bisect", "run", "--quiet", "--json", out, *args)
    report = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else None
    return ran, report


def _gates(report: dict[str, Any] | None) -> list[tuple[str, str, float]]:
    assert report is not None
    return [(g["metric"], g["kind"], g["threshold"]) for g in report["gates"]]


def test_the_tables_gate_decides_the_verdict(folder: Path) -> None:
    # Every model measures about 0.99: a gate above it fails the head, one below passes all.
    _table(folder, "min-plcc = 0.9999\n")
    strict, report = _run(folder)
    assert strict.code == ExitCode.REGRESSION, strict.err
    assert report is not None
    assert report["verdict"]["kind"] == "head_bad"
    _table(folder, "min-plcc = 0.5\n")
    lenient, report = _run(folder)
    assert lenient.code == ExitCode.OK, lenient.err
    assert report is not None
    assert report["verdict"]["kind"] == "no_regression"
    assert _gates(report) == [("plcc", "min", 0.5)]


def test_a_gate_flag_beats_the_table_and_replaces_all_its_gates(folder: Path) -> None:
    _table(folder, "min-plcc = 0.9999\nmax-rmse = 0.0001\n")
    ran, report = _run(folder, "--min-srocc", "0.5")
    assert ran.code == ExitCode.OK, ran.err
    assert _gates(report) == [("srocc", "min", 0.5)]


def test_without_a_table_the_same_command_line_has_no_timeline(folder: Path) -> None:
    _table(folder, "min-plcc = 0.5\n")
    assert _run(folder)[0].code == ExitCode.OK
    (folder / "pyproject.toml").unlink()
    ran, report = _run(folder)
    assert ran.code == ExitCode.INPUT
    assert report is None
    assert ran.err.startswith("error: ")


def test_mapping_comes_from_the_table_a_flag_beats_it_and_none_is_the_default(
    folder: Path,
) -> None:
    def mapping(*args: str) -> str:
        ran, report = _run(folder, "--min-plcc", "0.5", *args)
        assert ran.code == ExitCode.OK, ran.err
        assert report is not None
        (tail,) = [s for s in report["steps"] if s["index"] == 2]
        return str(tail["metrics"]["mapping"])

    _table(folder, 'mapping = "linear"\n')
    assert mapping() == "linear"
    assert mapping("--mapping", "none") == "none"
    (folder / "pyproject.toml").write_text('[project]\nname = "bare"\n', encoding="utf-8")
    models, features = folder / "data" / "models", folder / "data" / "features.parquet"
    assert mapping(str(models), "--features", str(features)) == "none"


def test_marker_comes_from_the_table_a_flag_beats_it_and_nightly_is_the_default(
    folder: Path,
) -> None:
    def marker(*args: str) -> str:
        body = folder / "body.md"
        ran = call_main("model_bisect", "run", "--quiet", "--markdown", body, "--min-plcc",
                        "0.5", *args)  # fmt: skip
        assert ran.code == ExitCode.OK, ran.err
        return body.read_text(encoding="utf-8").splitlines()[0]

    _table(folder, 'marker = "quality"\n')
    assert marker() == "<!-- model-bisect:quality -->"
    assert marker("--marker", "gpu") == "<!-- model-bisect:gpu -->"
    (folder / "pyproject.toml").unlink()
    models, features = folder / "data" / "models", folder / "data" / "features.parquet"
    assert marker(str(models), "--features", str(features)) == "<!-- model-bisect:nightly -->"


def test_an_explicit_config_file_beats_the_nearest_table(folder: Path) -> None:
    _table(folder, "min-plcc = 0.9999\n")
    other = folder / "other.toml"
    other.write_text(
        '[tool.model-bisect]\nmodels = "data/models"\nfeatures = "data/features.parquet"\n'
        "min-plcc = 0.5\n",
        encoding="utf-8",
    )
    ran, report = _run(folder, "--config", str(other))
    assert ran.code == ExitCode.OK, ran.err
    assert _gates(report) == [("plcc", "min", 0.5)]


def test_publish_takes_the_issue_from_the_table_and_the_flag_beats_it(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeGitHub() as github:
        for key in [k for k in os.environ if k.startswith(("GH_", "GITHUB_"))]:
            monkeypatch.delenv(key)
        monkeypatch.setenv("GH_TOKEN", github.token)
        monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
        monkeypatch.setenv("GITHUB_API_URL", github.url)
        for issue in (5, 6):
            github.seed_comment(REPO, issue, "an issue to track", "alice")
        _table(folder, "min-plcc = 0.5\ntracker-issue = 5\n")
        ran, _ = _run(folder)
        assert ran.code == ExitCode.OK, ran.err
        report = str(folder / "r.json")
        assert call_main("model_bisect", "publish", "--report", report).code == ExitCode.OK
        assert call_main("model_bisect", "publish", "--report", report, "--issue", "6").code == 0
        on_5, on_6 = (
            [c for c in github.comments(REPO, n) if c["user"]["login"] == "nightly-bot"]
            for n in (5, 6)
        )
        (folder / "pyproject.toml").unlink()
        missing = call_main("model_bisect", "publish", "--report", report)
    assert len(on_5) == 1
    assert len(on_6) == 1
    assert missing.code == ExitCode.INPUT
