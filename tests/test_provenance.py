"""The invocation a report records: command line with secrets masked, version, where it ran."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path

from model_bisect import __version__
from model_bisect.commands.provenance import invocation, repository_root
from model_bisect.publishing.redact import MASK
from tests.clirun import run_module
from tests.modelkit import bad_weights, features_parquet, linear_model
from tests.repokit import git


def test_working_directory_is_relative_to_the_repository_inside_one(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "models" / "tiny").mkdir(parents=True)
    inside = invocation(["run", "x"], cwd=repo / "models" / "tiny", env={})
    assert (inside.cwd, inside.in_repository) == ("models/tiny", True)
    assert invocation(["run"], cwd=repo, env={}).cwd == "."
    assert repository_root(repo / "models") == repo


def test_working_directory_outside_a_repository_is_absolute(tmp_path: Path) -> None:
    outside = invocation(["run"], cwd=tmp_path, env={})
    assert (outside.cwd, outside.in_repository) == (str(tmp_path), False)
    assert outside.tool_version == __version__


def test_tokens_in_the_environment_or_shaped_like_one_are_masked_in_argv(tmp_path: Path) -> None:
    secret = "s3cr3t-value-of-the-token"
    shaped = "ghp_" + "a" * 36
    recorded = invocation(
        ["run", f"--marker={secret}", shaped, "m.onnx"],
        cwd=tmp_path,
        env={"GH_TOKEN": secret},
        reproduce=f"invoke nightly {secret}",
    )
    assert recorded.argv == ("run", f"--marker={MASK}", MASK, "m.onnx")
    assert recorded.reproduce == f"invoke nightly {MASK}"
    assert secret not in recorded.command()


def test_the_command_is_the_wrapper_when_one_is_named() -> None:
    from model_bisect.report import Invocation

    plain = Invocation(("run", "a b.onnx"), "0.1.0", ".", True)
    assert plain.command() == "model-bisect run 'a b.onnx'"
    assert Invocation(("run",), "0.1.0", ".", True, "invoke nightly").command() == "invoke nightly"


def _git(repo: Path, *args: str) -> str:
    return git(repo, *args).strip()


def test_a_git_path_report_has_full_shas_repository_paths_and_its_command(
    tmp_path: Path,
) -> None:
    features, weights = features_parquet(tmp_path / "features.parquet", rows=300, seed=4)
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    _git(repo, "init", "-q")
    for i in range(4):
        w = bad_weights(6, i) if i >= 2 else [v + 0.01 * i for v in weights]
        linear_model(repo / "models" / "m.onnx", w)
        _git(repo, "add", ".")
        _git(repo, "commit", "-q", "-m", f"retrain {i}")
    shas = _git(repo, "log", "--reverse", "--format=%H").split()
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    args = ["run", "--git-path", "models/m.onnx", "--features", str(features)]
    args += ["--min-plcc", "0.85", "--json", str(out), "--markdown", str(md), "--quiet"]
    done = run_module("model_bisect", *args, cwd=repo)
    assert done.code == 0, done.err
    report = json.loads(out.read_text(encoding="utf-8"))
    assert [m["commit"] for m in report["timeline"]] == shas
    assert [m["path"] for m in report["timeline"]] == ["models/m.onnx"] * 4
    assert [m["subject"] for m in report["timeline"]] == [f"retrain {i}" for i in range(4)]
    assert report["verdict"]["first_bad_index"] == 2
    assert report["invocation"] == {
        "argv": args,
        "tool_version": __version__,
        "cwd": ".",
        "in_repository": True,
        "reproduce": None,
        "config": None,  # no [tool.model-bisect] above the repository
        "head": shas[-1],  # the checked-out commit
    }
    body = md.read_text(encoding="utf-8")
    shown = shlex.join(["model-bisect", *args]).replace("_", "&#95;").replace("'", "&#x27;")
    assert f"reproduce locally: <code>{shown}</code> (from the repository root)" in body
    assert "invoke nightly" not in body


def _repository(tmp_path: Path) -> tuple[Path, str]:
    """A real git repository with one commit, and that commit's SHA."""
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    git(repo, "init", "-q")
    (repo / "data" / "f.parquet").write_bytes(b"x")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    return repo, git(repo, "rev-parse", "HEAD").strip()


def test_the_repository_head_is_recorded_and_shown_with_the_settings_file(
    tmp_path: Path,
) -> None:
    from model_bisect.publishing.comment import render_markdown
    from model_bisect.report import Invocation
    from tests.reportkit import make_report

    repo, head = _repository(tmp_path)
    (repo / "pyproject.toml").write_text("[tool.model-bisect]\n", encoding="utf-8")
    recorded = invocation(["run"], cwd=repo, env={}, config=repo / "pyproject.toml")
    assert recorded.head == head
    assert Invocation.from_json(json.loads(json.dumps(recorded.to_json()))) == recorded
    body = render_markdown(replace(make_report(), invocation=recorded))
    assert f"(from the repository root) at <code>{head[:12]}</code>" in body
    assert "settings from <code>pyproject.toml</code>" in body
    # outside a repository there is no head to name
    assert invocation(["run"], cwd=tmp_path, env={}).head is None


def test_paths_in_the_command_line_are_runnable_from_a_fresh_checkout(tmp_path: Path) -> None:
    repo, _ = _repository(tmp_path)
    temp = tmp_path / "runner-temp"
    argv = [
        "run", "--features", str(repo / "data" / "f.parquet"), f"--json={temp}/m/report.json",
        "--markdown", str(temp / "m" / "result.md"), "--cache-dir", "/var/cache/mb", "models",
    ]  # fmt: skip
    recorded = invocation(argv, cwd=repo / "data", env={"RUNNER_TEMP": str(temp)})
    assert recorded.argv == (
        "run", "--features", "f.parquet", "--json=report.json",
        "--markdown", "result.md", "--cache-dir", "/var/cache/mb", "models",
    )  # fmt: skip
    assert str(temp) not in recorded.command()
