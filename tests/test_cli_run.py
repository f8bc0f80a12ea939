"""`model-bisect run` end to end: real ONNX Runtime on real parquet, through the CLI."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from model_bisect.exitcodes import ExitCode
from tests.clirun import call_main, run_module
from tests.conftest import FIXTURE_DIR
from tests.modelkit import bad_weights, features_parquet, linear_model, timeline_dir
from tests.repokit import git

GATE = ("--min-plcc", "0.85")


def report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, list[float]]:
    path, weights = features_parquet(tmp_path / "features.parquet", rows=400, seed=3)
    return path, [float(w) for w in weights]


def make_timeline(folder: Path, weights: list[float], n: int, first_bad: int | None) -> Path:
    timeline_dir(folder, n, first_bad, weights=weights, seed=n)
    return folder


def test_committed_fixture_has_no_regression_in_two_evaluations(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    ran = run_module(
        *("model_bisect", "run", FIXTURE_DIR / "models"),
        *("--features", FIXTURE_DIR / "features.parquet", *GATE, "--json", out),
    )
    assert ran.code == ExitCode.OK, ran.err
    body = report(out)
    assert body["verdict"]["kind"] == "no_regression"
    assert body["evaluations"] <= 2
    assert [m["label"] for m in body["timeline"]] == [f"model_{i:02d}.onnx" for i in range(8)]


def test_debug_after_the_subcommand_is_accepted_by_a_real_process(tmp_path: Path) -> None:
    ran = run_module(
        *("model_bisect", "run", FIXTURE_DIR / "models"),
        *("--features", FIXTURE_DIR / "features.parquet", *GATE, "--debug"),
    )
    assert ran.code == ExitCode.OK, ran.err
    assert "no regression" in ran.out.lower()
    assert ran.err == ""


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_on_either_side_of_the_subcommand_shows_the_traceback_and_keeps_exit_3(
    tmp_path: Path, where: str
) -> None:
    gone = tmp_path / "gone.parquet"
    argv: list[str | Path] = [FIXTURE_DIR / "models", "--features", gone, *GATE]
    argv = ["--debug", "run", *argv] if where == "before" else ["run", *argv, "--debug"]
    ran = run_module("model_bisect", *argv)
    assert ran.code == ExitCode.INPUT
    assert ran.err.startswith("Traceback (most recent call last):")
    assert "model_bisect.errors.InputError" in ran.err
    assert ran.err.splitlines()[-1].startswith(f"error: features file not found in {gone}")


def test_a_word_after_the_double_dash_is_a_model_not_the_debug_flag(tmp_path: Path) -> None:
    # `--` ends the options: the `--debug` after it names a (missing) model file, it is no flag.
    ran = call_main(
        "model_bisect", "run", "--features", tmp_path / "f.parquet", *GATE, "--", "--debug"
    )
    assert ran.code == ExitCode.INPUT
    assert "Traceback" not in ran.err
    assert "--debug" in _error_line(ran.err)


def test_version_is_the_package_version() -> None:
    from model_bisect import __version__

    ran = call_main("model_bisect", "--version")
    assert (ran.code, ran.out.split()) == (ExitCode.OK, ["model-bisect", __version__])


def test_fixture_with_models_5_to_7_randomised_reports_regression_at_5(tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(FIXTURE_DIR / "models", models)
    for i in range(5, 8):
        linear_model(models / f"model_{i:02d}.onnx", bad_weights(6, seed=100 + i))
    out = tmp_path / "r.json"
    features = FIXTURE_DIR / "features.parquet"
    code = call_main(
        "model_bisect",
        "run",
        models,
        "--features",
        features,
        *GATE,
        "--json",
        out,
        "--fail-on-first-bad",
    ).code
    assert code == ExitCode.REGRESSION
    verdict = report(out)["verdict"]
    assert (verdict["kind"], verdict["first_bad_index"], verdict["last_good_index"]) == (
        "regression",
        5,
        4,
    )
    code = call_main(
        "model_bisect", "run", models, "--features", features, *GATE, "--no-cache"
    ).code
    assert code == ExitCode.OK  # a localised regression is a finding, an error only when asked


@pytest.mark.parametrize(("n", "first_bad"), [(2, 1), (3, 2), (8, 1), (8, 6), (17, 9), (33, 32)])
def test_bad_from_k_is_found_within_the_log2_bound(
    tmp_path: Path,
    data: tuple[Path, list[float]],
    n: int,
    first_bad: int,
) -> None:
    features, weights = data
    folder = make_timeline(tmp_path / "m", weights, n, first_bad)
    out = tmp_path / "r.json"
    code = call_main(
        "model_bisect",
        "run",
        folder,
        "--features",
        features,
        *GATE,
        "--json",
        out,
        "--fail-on-first-bad",
    ).code
    body = report(out)
    assert code == ExitCode.REGRESSION
    assert body["verdict"]["first_bad_index"] == first_bad
    assert body["evaluations"] <= math.ceil(math.log2(n)) + 1  # the tail, then halving
    statuses = {s["index"]: s["status"] for s in body["steps"]}
    assert statuses[first_bad] == "bad"
    assert statuses.get(first_bad - 1) == "good"


def test_timeline_without_bad_model_reports_no_regression(
    tmp_path: Path, data: tuple[Path, list[float]]
) -> None:
    features, weights = data
    folder = make_timeline(tmp_path / "m", weights, 6, None)
    out = tmp_path / "r.json"
    ran = call_main("model_bisect", "run", folder, "--features", features, *GATE, "--json", out)
    assert ran.code == ExitCode.OK
    assert report(out)["verdict"]["kind"] == "no_regression"
    assert "no regression" in ran.out.lower()


def test_failing_head_model_exits_2_as_head_bad(
    tmp_path: Path, data: tuple[Path, list[float]]
) -> None:
    features, weights = data
    folder = make_timeline(tmp_path / "m", weights, 5, 0)
    out = tmp_path / "r.json"
    code = call_main(
        "model_bisect", "run", folder, "--features", features, *GATE, "--json", out
    ).code
    assert code == ExitCode.REGRESSION
    assert report(out)["verdict"]["kind"] == "head_bad"


def test_rmse_gate_alone_localises_a_scale_regression(
    tmp_path: Path, data: tuple[Path, list[float]]
) -> None:
    # Models 3.. predict twice the target: perfectly correlated, so only RMSE can catch them.
    features, weights = data
    folder = tmp_path / "m"
    for i in range(6):
        scale = 1.0 if i < 3 else 2.0
        linear_model(folder / f"model_{i}.onnx", [w * scale for w in weights])
    out = tmp_path / "r.json"
    code = call_main(
        "model_bisect", "run", folder, "--features", features, *GATE, "--json", out
    ).code
    assert report(out)["verdict"]["kind"] == "no_regression"
    code = call_main(
        "model_bisect", "run", folder, "--features", features, "--max-rmse", "0.2", "--json", out
    ).code
    assert report(out)["verdict"]["first_bad_index"] == 3
    assert code == ExitCode.OK


def test_combined_gates_require_every_gate_to_hold(
    tmp_path: Path, data: tuple[Path, list[float]]
) -> None:
    features, weights = data
    folder = tmp_path / "m"
    for i in range(4):
        linear_model(folder / f"model_{i}.onnx", weights, bias=0.0 if i < 2 else 5.0)
    out = tmp_path / "r.json"
    code = call_main(
        "model_bisect",
        "run",
        folder,
        "--features",
        features,
        *GATE,
        "--max-rmse",
        "0.5",
        "--json",
        out,
    ).code
    assert code == ExitCode.OK
    body = report(out)
    assert body["verdict"]["first_bad_index"] == 2
    bad = next(s for s in body["steps"] if s["index"] == 2)
    assert "rmse" in bad["reason"]
    assert "plcc" not in bad["reason"]


def test_max_drop_is_measured_from_the_first_model(
    tmp_path: Path, data: tuple[Path, list[float]]
) -> None:
    # A slow slide: each step loses a little against its neighbour, the anchor catches it.
    import numpy as np

    features, weights = data
    folder = tmp_path / "m"
    rng = np.random.default_rng(7)
    noise = rng.normal(size=len(weights))
    for i in range(9):
        linear_model(folder / f"model_{i}.onnx", list(np.asarray(weights) + 0.35 * i * noise))
    out = tmp_path / "r.json"
    code = call_main(
        "model_bisect",
        "run",
        folder,
        "--features",
        features,
        "--max-drop",
        "plcc=0.05",
        "--scan",
        "--json",
        out,
    ).code
    assert code == ExitCode.OK
    body = report(out)
    plcc = {s["index"]: s["metrics"]["plcc"] for s in body["steps"]}
    expected = next(i for i in range(9) if plcc[0] - plcc[i] > 0.05)
    assert body["verdict"]["first_bad_index"] == expected
    assert all(plcc[i] - plcc[i + 1] < 0.05 for i in range(expected - 1))


def test_scan_names_a_good_model_that_follows_a_bad_one(
    tmp_path: Path, data: tuple[Path, list[float]]
) -> None:
    features, weights = data
    folder = tmp_path / "m"
    pattern = ["good", "good", "bad", "good", "bad"]
    for i, kind in enumerate(pattern):
        good = [w * (1 + 0.01 * i) for w in weights]  # distinct bytes, so none is deduplicated
        w = good if kind == "good" else bad_weights(len(weights), seed=i)
        linear_model(folder / f"model_{i}.onnx", w)
    out = tmp_path / "r.json"
    call_main("model_bisect", "run", folder, "--features", features, *GATE, "--scan", "--json", out)
    body = report(out)
    assert body["evaluations"] == 5
    assert body["scan"] == {"monotone": False, "violations": [3]}
    assert [s["status"] for s in body["steps"]] == pattern


def test_two_jobs_give_the_same_verdict_as_one(
    tmp_path: Path, data: tuple[Path, list[float]]
) -> None:
    features, weights = data
    folder = make_timeline(tmp_path / "m", weights, 21, 13)
    verdicts = []
    for jobs in ("1", "2"):
        out = tmp_path / f"r{jobs}.json"
        call_main(
            "model_bisect",
            "run",
            folder,
            "--features",
            features,
            *GATE,
            "--jobs",
            jobs,
            "--json",
            out,
        )
        verdicts.append(report(out)["verdict"])
    assert verdicts[0] == verdicts[1]
    assert verdicts[0]["first_bad_index"] == 13


def test_rerun_with_unchanged_inputs_evaluates_nothing(
    tmp_path: Path, data: tuple[Path, list[float]]
) -> None:
    features, weights = data
    folder = make_timeline(tmp_path / "m", weights, 9, 4)
    cache = tmp_path / "cache"
    runs = []
    for name in ("cold", "warm"):
        out = tmp_path / f"{name}.json"
        call_main(
            "model_bisect",
            "run",
            folder,
            "--features",
            features,
            *GATE,
            "--cache-dir",
            cache,
            "--json",
            out,
        )
        runs.append(report(out))
    assert runs[0]["evaluations"] > 0
    assert runs[1]["evaluations"] == 0
    assert runs[1]["verdict"] == runs[0]["verdict"]
    assert all(s["cached"] for s in runs[1]["steps"])


def test_duplicate_models_are_evaluated_once(
    tmp_path: Path, data: tuple[Path, list[float]]
) -> None:
    features, weights = data
    folder = tmp_path / "m"
    linear_model(folder / "a_0.onnx", weights)
    for i in range(1, 4):
        shutil.copy(folder / "a_0.onnx", folder / f"a_{i}.onnx")
    out = tmp_path / "r.json"
    call_main(
        "model_bisect",
        "run",
        folder,
        "--features",
        features,
        *GATE,
        "--scan",
        "--no-cache",
        "--json",
        out,
    )
    assert report(out)["evaluations"] == 1


def test_skipped_models_at_the_boundary_give_inconclusive_exit_4(
    tmp_path: Path, data: tuple[Path, list[float]]
) -> None:
    features, weights = data
    folder = make_timeline(tmp_path / "m", weights, 8, 5)
    (folder / "model_04.onnx").write_bytes(b"not an onnx model")
    out = tmp_path / "r.json"
    code = call_main(
        "model_bisect", "run", folder, "--features", features, *GATE, "--json", out
    ).code
    verdict = report(out)["verdict"]
    assert code == ExitCode.INCONCLUSIVE
    assert verdict["kind"] == "inconclusive"
    assert verdict["candidates"] == [4, 5]


def test_timeline_file_orders_and_labels_models(
    tmp_path: Path, data: tuple[Path, list[float]]
) -> None:
    features, weights = data
    folder = tmp_path / "m"
    linear_model(folder / "late.onnx", bad_weights(len(weights), seed=1))
    linear_model(folder / "early.onnx", weights)
    timeline = tmp_path / "timeline.toml"
    timeline.write_text(
        '[[models]]\npath = "m/early.onnx"\nlabel = "v1.0"\n\n'
        '[[models]]\npath = "m/late.onnx"\nlabel = "v2.0"\n'
    )
    out = tmp_path / "r.json"
    call_main(
        "model_bisect", "run", "--timeline", timeline, "--features", features, *GATE, "--json", out
    )
    body = report(out)
    assert [m["label"] for m in body["timeline"]] == ["v1.0", "v2.0"]
    assert body["verdict"]["first_bad_index"] == 1


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("missing_features", "features.parquet"),
        ("corrupt_features", "parquet"),
        ("no_target", "mos"),
        ("no_gate", "gate"),
        ("unknown_drop_metric", "--max-drop"),
        ("one_model", "two"),
        ("empty_glob", "nothing*.onnx"),
        ("bad_timeline", "timeline.toml"),
        ("missing_in_timeline", "ghost.onnx"),
        ("git_outside_repo", "git"),
        ("unknown_flag", "--frobnicate"),
        ("two_sources", "give the timeline exactly one way"),
        ("rev_range_alone", "--rev-range needs --git-path"),
    ],
)
def test_bad_input_gets_one_line_and_exit_3(
    tmp_path: Path,
    data: tuple[Path, list[float]],
    case: str,
    needle: str,
) -> None:
    features, weights = data
    folder = make_timeline(tmp_path / "m", weights, 3, None)
    args: list[str | Path] = [folder, "--features", features, *GATE]
    if case == "missing_features":
        args = [folder, "--features", tmp_path / "features.parquet.gone", *GATE]
        needle = "features.parquet.gone"
    elif case == "corrupt_features":
        bad = tmp_path / "corrupt.parquet"
        bad.write_bytes(b"PAR1 this is not parquet")
        args = [folder, "--features", bad, *GATE]
    elif case == "no_target":
        args = [*args, "--target", "dmos_missing"]
        needle = "dmos_missing"
    elif case == "no_gate":  # and no [tool.model-bisect] gates to fall back on
        empty = tmp_path / "pyproject.toml"
        empty.write_text("[tool.model-bisect]\n")
        args = [folder, "--features", features, "--config", empty]
    elif case == "unknown_drop_metric":
        args = [folder, "--features", features, "--max-drop", "vmaf=0.1"]
    elif case == "one_model":
        args = [folder / "model_00.onnx", "--features", features, *GATE]
    elif case == "empty_glob":
        args = [str(tmp_path / "nothing*.onnx"), "--features", features, *GATE]
    elif case == "bad_timeline":
        timeline = tmp_path / "timeline.toml"
        timeline.write_text("[[models]\npath = ")
        args = ["--timeline", timeline, "--features", features, *GATE]
    elif case == "missing_in_timeline":
        timeline = tmp_path / "timeline.json"
        timeline.write_text(json.dumps({"models": [{"path": "ghost.onnx"}, {"path": "m/x.onnx"}]}))
        args = ["--timeline", timeline, "--features", features, *GATE]
    elif case == "git_outside_repo":
        args = ["--git-path", folder / "model_00.onnx", "--features", features, *GATE]
    elif case == "unknown_flag":
        args = [*args, "--frobnicate"]
    elif case == "two_sources":
        args = [*args, "--git-path", folder / "model_00.onnx"]
    elif case == "rev_range_alone":
        args = [*args, "--rev-range", "HEAD~1..HEAD"]
    ran = call_main("model_bisect", "run", *args)
    assert ran.code == ExitCode.INPUT
    assert needle in _error_line(ran.err)


def test_help_does_not_import_the_heavy_libraries() -> None:
    probe = (
        "import sys, model_bisect.cli as c; c.build_parser(); "
        "print(sorted(m for m in ('numpy', 'onnxruntime', 'onnx', 'pyarrow', 'scipy', 'ghapi') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_git_path_finds_the_commit_that_brought_the_regression(
    tmp_path: Path, data: tuple[Path, list[float]]
) -> None:
    features, weights = data
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=repo,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    subjects = ["first model", "tune", "tune again", "new loss", "polish"]
    for i, subject in enumerate(subjects):
        # The regression enters with the fourth commit (index 3) and stays.
        w = [x * (1 + 0.01 * i) for x in weights] if i < 3 else bad_weights(len(weights), i)
        linear_model(repo / "model.onnx", w, external_data=True)
        git("add", "-A")
        git("commit", "-q", "-m", subject)
    out = tmp_path / "r.json"
    code = call_main(
        "model_bisect",
        "run",
        "--git-path",
        repo / "model.onnx",
        "--features",
        features,
        *GATE,
        "--json",
        out,
        "--fail-on-first-bad",
    ).code
    body = report(out)
    assert code == ExitCode.REGRESSION
    assert body["verdict"]["first_bad_index"] == 3
    assert body["timeline"][3]["label"].endswith("new loss")
    assert len(body["timeline"]) == 5


def test_rev_range_takes_its_start_as_the_last_good_and_the_next_commit_as_first_bad(
    tmp_path: Path, data: tuple[Path, list[float]]
) -> None:
    features, weights = data
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    for i, subject in enumerate(["first", "known good", "breaks it", "still broken"]):
        w = [x * (1 + 0.01 * i) for x in weights] if i < 2 else bad_weights(len(weights), i)
        linear_model(repo / "model.onnx", w)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", subject)
    good, first_bad = (git(repo, "rev-parse", f"HEAD~{n}").strip() for n in (2, 1))
    out = tmp_path / "r.json"
    ran = call_main(
        *("model_bisect", "run", "--git-path", repo / "model.onnx", "--features", features),
        *(*GATE, "--rev-range", f"{good[:10]}..HEAD", "--json", out),
    )
    assert ran.code == ExitCode.OK, ran.err
    body = report(out)
    assert body["verdict"]["kind"] == "regression"
    assert body["verdict"]["last_good_index"] == 0
    assert body["verdict"]["first_bad_index"] == 1
    assert [e["commit"] for e in body["timeline"][:2]] == [good, first_bad]
    assert [e["subject"] for e in body["timeline"]] == ["known good", "breaks it", "still broken"]


def test_git_path_in_a_shallow_clone_exits_3_naming_fetch_depth(
    tmp_path: Path, data: tuple[Path, list[float]]
) -> None:
    features, weights = data
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    for i in range(3):
        linear_model(repo / "model.onnx", [x * (1 + 0.01 * i) for x in weights])
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"step {i}")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", repo.as_uri(), str(clone))
    ran = call_main(
        *("model_bisect", "run", "--git-path", clone / "model.onnx", "--features", features),
        *GATE,
    )
    assert ran.code == ExitCode.INPUT
    line = _error_line(ran.err)
    assert "only one version of model.onnx" in line
    assert "fetch-depth: 0" in line


def test_max_drop_anchor_is_a_step_of_the_bisect_and_a_failing_one_ends_it(
    tmp_path: Path, data: tuple[Path, list[float]]
) -> None:
    import numpy as np

    features, weights = data
    folder = tmp_path / "m"
    noise = np.random.default_rng(7).normal(size=len(weights))
    for i in range(9):
        linear_model(folder / f"model_{i}.onnx", list(np.asarray(weights) + 0.35 * i * noise))

    def bisect(name: str, *gates: str) -> dict[str, Any]:
        out = tmp_path / name
        args = ("run", folder, "--features", features, *gates, "--json", out, "--no-cache")
        assert call_main("model_bisect", *args).code in (ExitCode.OK, ExitCode.REGRESSION)
        return report(out)

    scanned = bisect("scan.json", "--max-drop", "plcc=0.05", "--scan")
    searched = bisect("bisect.json", "--max-drop", "plcc=0.05")
    assert searched["verdict"] == scanned["verdict"]
    indices = [s["index"] for s in searched["steps"]]
    assert indices[0] == 0  # the anchor, measured before the search, once
    assert searched["evaluations"] == len(indices) == len(set(indices))

    assert float(scanned["steps"][0]["metrics"]["plcc"]) < 1.0
    failing = bisect("head.json", "--max-drop", "plcc=0.05", "--min-plcc", "1")
    assert failing["verdict"]["kind"] == "head_bad"
    assert [s["index"] for s in failing["steps"]] == [0]
    assert failing["evaluations"] == 1


@pytest.mark.parametrize(
    "words",
    [
        ("run", FIXTURE_DIR / "models", "--features", FIXTURE_DIR / "features.parquet",
         "--min-pl", "0.85"),
        ("run", FIXTURE_DIR / "models", "--feat", FIXTURE_DIR / "features.parquet", *GATE),
        ("publish", "--report", FIXTURE_DIR / "none.json", "--dry"),
    ],
    ids=["gate", "data", "publish"],
)  # fmt: skip
def test_an_abbreviated_flag_is_a_usage_error_not_the_flag_it_begins(
    words: tuple[str | Path, ...],
) -> None:
    ran = call_main("model_bisect", *words)
    assert ran.code == ExitCode.INPUT
    assert ran.out == ""
    assert _error_line(ran.err).startswith("error: unrecognized arguments: --")


def test_an_unknown_subcommand_is_a_usage_error_and_every_command_has_a_handler() -> None:
    from model_bisect.cli import HANDLERS, build_parser

    ran = call_main("model_bisect", "jduge", "m.onnx", "--features", "f.parquet", *GATE)
    assert ran.code == ExitCode.INPUT
    assert "invalid choice: 'jduge'" in _error_line(ran.err)
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    assert (
        set(sub.choices or ()) == set(HANDLERS) == {"run", "publish", "judge", "compare", "nightly"}
    )


def _image_model(path: Path) -> Path:
    """A model fed an image tensor [N, 3, 8, 8], which no feature cache can feed."""
    from onnx import TensorProto, helper

    from tests.modelkit import IR_VERSION

    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["image"], ["score"], axes=[1, 2, 3], keepdims=0)],
        "image",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = IR_VERSION
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def test_a_run_where_no_model_can_be_fed_exits_3_naming_the_reason(
    tmp_path: Path, data: tuple[Path, list[float]]
) -> None:
    features, _ = data
    for i in range(4):
        _image_model(tmp_path / "m" / f"image_{i}.onnx")
    out = tmp_path / "r.json"
    done = run_module(
        "model_bisect", "run", tmp_path / "m", "--features", features, *GATE, "--json", out
    )
    assert done.code == ExitCode.INPUT, done.err
    assert done.err.startswith("error: no model of the timeline could be evaluated (all 4 skipped")
    assert done.err.count("\n") == 1
    assert "4 x " in done.err  # one reason, counted, not repeated four times
    assert "image" in done.err
    assert "Traceback" not in done.err
    assert not out.exists()


def test_skips_with_evaluated_models_on_both_sides_stay_inconclusive(
    tmp_path: Path, data: tuple[Path, list[float]]
) -> None:
    features, weights = data
    folder = make_timeline(tmp_path / "m", weights, 6, 3)
    _image_model(folder / "model_02.onnx")
    out = tmp_path / "r.json"
    done = call_main("model_bisect", "run", folder, "--features", features, *GATE, "--json", out)
    assert done.code == ExitCode.INCONCLUSIVE, done.err
    assert report(out)["verdict"]["candidates"] == [2, 3]


@pytest.mark.parametrize(
    ("pattern", "shape"),
    [
        (["good", "good", "bad", "bad"], "good, then bad"),
        (["bad", "bad", "bad"], "every evaluated model bad"),
        (["good", "good", "good"], "every evaluated model good"),
    ],
)
def test_a_monotone_scan_says_whether_both_kinds_were_seen(
    tmp_path: Path, data: tuple[Path, list[float]], pattern: list[str], shape: str
) -> None:
    features, weights = data
    folder = tmp_path / "m"
    for i, kind in enumerate(pattern):
        good = [w * (1 + 0.01 * i) for w in weights]
        linear_model(folder / f"model_{i}.onnx", good if kind == "good" else bad_weights(6, i))
    markdown = tmp_path / "r.md"
    result = call_main(
        "model_bisect", "run", folder, "--features", features, *GATE, "--scan",
        "--markdown", markdown,
    )  # fmt: skip
    assert f"scan: the timeline is monotone ({shape})" in result.out
    assert f"**Scan:** the timeline is monotone ({shape})." in markdown.read_text()
