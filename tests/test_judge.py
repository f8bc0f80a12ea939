"""`model-bisect judge`: one model, git's exit statuses, and a real `git bisect run`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from model_bisect.exitcodes import ExitCode, JudgeExit
from tests.clirun import call_main, run_module
from tests.modelkit import (
    bad_weights,
    default_weights,
    features_parquet,
    invalid_model,
    linear_model,
    sidecar_json,
)
from tests.repokit import git

GATE = ("--min-plcc", "0.85")


@pytest.fixture
def features(tmp_path: Path) -> Path:
    path, _ = features_parquet(tmp_path / "features.parquet", rows=300, seed=5)
    return path


def _judge(*args: str | Path) -> tuple[int, str, str]:
    done = call_main("model_bisect", "judge", *args)
    return done.code, done.out, done.err


def test_a_model_that_holds_every_gate_exits_0_with_one_line_of_metrics(
    tmp_path: Path, features: Path
) -> None:
    model = linear_model(tmp_path / "good.onnx", default_weights(6))
    code, out, _ = _judge(model, "--features", features, *GATE)
    assert code == JudgeExit.GOOD == 0
    assert out.count("\n") == 1
    assert re.match(r"good: good\.onnx; plcc [01]\.\d+ srocc [01]\.\d+ krocc [01]\.\d+ rmse ", out)
    assert out.split(";")[-1].strip().endswith(">= 0.85")  # the gate's margin is the reason


def test_a_model_that_fails_a_gate_exits_1_and_names_the_gate(
    tmp_path: Path, features: Path
) -> None:
    model = linear_model(tmp_path / "bad.onnx", bad_weights(6, 1))
    code, out, _ = _judge(model, "--features", features, *GATE)
    assert code == JudgeExit.BAD == 1
    assert out.startswith("bad: bad.onnx;")
    assert "< 0.85" in out


@pytest.mark.parametrize("kind", ["corrupt", "missing", "broken sidecar", "missing column"])
def test_an_untestable_model_exits_125_so_git_skips_the_commit(
    tmp_path: Path, features: Path, kind: str
) -> None:
    model = tmp_path / "m.onnx"
    if kind == "corrupt":
        invalid_model(model)
    elif kind == "broken sidecar":
        linear_model(model, default_weights(6))
        sidecar_json(model, "not a list")
    elif kind == "missing column":  # the cache is fine; this version needs what it lacks
        linear_model(model, [1.0, 1.0])
        sidecar_json(model, ["adm2", "brand_new_feature"])
    code, out, err = _judge(model, "--features", features, *GATE)
    assert (code, err) == (JudgeExit.SKIP, "")
    assert out.startswith("skip: m.onnx; ")
    assert out.count("\n") == 1
    if kind == "missing column":
        assert "brand_new_feature" in out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--min-plcc", "0.85", "--bogus"), "unrecognized arguments"),
        ((), "no gate given"),
        (("--max-drop", "plcc=0.05"), "--anchor MODEL"),
        (("--min-plcc", "2"), "outside"),
    ],
)
def test_a_run_that_cannot_proceed_exits_128_so_git_stops(
    tmp_path: Path, features: Path, args: tuple[str, ...], says: str
) -> None:
    model = linear_model(tmp_path / "m.onnx", default_weights(6))
    code, out, err = _judge(model, "--features", features, *args)
    assert code == JudgeExit.ABORT == 128
    assert out == ""
    assert err.startswith("error: ")
    assert says in err
    assert err.count("\n") == 1


def test_unusable_features_or_a_broken_anchor_exit_128(tmp_path: Path, features: Path) -> None:
    model = linear_model(tmp_path / "m.onnx", default_weights(6))
    missing = _judge(model, "--features", tmp_path / "nope.parquet", *GATE)
    assert missing[0] == JudgeExit.ABORT
    no_target = tmp_path / "no-target.parquet"
    features_parquet(no_target, target="dmos")
    assert _judge(model, "--features", no_target, *GATE)[0] == JudgeExit.ABORT
    not_parquet = tmp_path / "notes.parquet"
    not_parquet.write_text("not parquet\n", encoding="utf-8")
    assert _judge(model, "--features", not_parquet, *GATE)[0] == JudgeExit.ABORT
    anchor = invalid_model(tmp_path / "anchor.onnx")
    code, _, err = _judge(
        model, "--features", features, "--anchor", anchor, "--max-drop", "plcc=0.1"
    )
    assert code == JudgeExit.ABORT
    assert "anchor" in err


def test_max_drop_compares_with_the_anchor(tmp_path: Path, features: Path) -> None:
    anchor = linear_model(tmp_path / "anchor.onnx", default_weights(6))
    close = linear_model(tmp_path / "close.onnx", [w * 1.01 for w in default_weights(6)])
    far = linear_model(tmp_path / "far.onnx", bad_weights(6, 2))
    drop = ("--anchor", anchor, "--max-drop", "plcc=0.05")
    good = _judge(close, "--features", features, *drop)
    assert good[0] == JudgeExit.GOOD
    assert re.search(r"anchor plcc [01]\.\d+", good[1])
    assert "vs anchor: drop" in good[1]
    assert "first model" not in good[1]
    bad = _judge(far, "--features", features, *drop)
    assert bad[0] == JudgeExit.BAD
    assert "drop" in bad[1]
    assert "> 0.05" in bad[1]


def test_judge_codes_are_gits_and_apart_from_the_run_codes() -> None:
    assert [int(c) for c in JudgeExit] == [0, 1, 125, 128]
    assert all(code.meaning.strip() for code in JudgeExit)
    # git reads 1..127 except 125 as "bad": no judge abort may land there.
    assert JudgeExit.ABORT > 127
    assert int(ExitCode.INPUT) not in {int(c) for c in JudgeExit}


# --- a real `git bisect run` ----------------------------------------------------------------


def test_git_bisect_run_with_judge_skips_a_corrupt_commit_and_finds_the_first_bad(
    tmp_path: Path, features: Path
) -> None:
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    git(repo, "init", "-q")
    model = repo / "models" / "m.onnx"
    shas = []
    first_bad, corrupt = 6, (3, 4)
    for i in range(9):
        if i in corrupt:
            invalid_model(model, f"not a model, step {i}\n".encode())
        elif i >= first_bad:
            linear_model(model, bad_weights(6, i))
        else:
            linear_model(model, [w + 0.01 * i for w in default_weights(6)])
        git(repo, "add", "models")
        git(repo, "commit", "-q", "-m", f"train step {i}")
        shas.append(git(repo, "rev-parse", "HEAD").strip())

    git(repo, "bisect", "start", shas[-1], shas[0])
    command = [sys.executable, "-m", "model_bisect", "judge", "models/m.onnx"]
    command += ["--features", str(features), *GATE]
    done = subprocess.run(
        ["git", "bisect", "run", *command],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    log = git(repo, "bisect", "log")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{shas[first_bad]} is the first bad commit" in done.stdout
    assert "# skip:" in log  # the corrupt commit was met and skipped, not blamed
    assert any(f"skip {shas[i]}" in log for i in corrupt)


def test_git_bisect_run_stops_when_the_features_are_unusable(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    for i in range(3):
        linear_model(repo / "m.onnx", [w + i for w in default_weights(6)])
        git(repo, "add", ".")
        git(repo, "commit", "-q", "-m", f"step {i}")
    git(repo, "bisect", "start", "HEAD", "HEAD~2")
    command = [sys.executable, "-m", "model_bisect", "judge", "m.onnx"]
    command += ["--features", str(tmp_path / "missing.parquet"), *GATE]
    done = subprocess.run(
        ["git", "bisect", "run", *command], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "is the first bad commit" not in done.stdout
    assert "feature cache not found" in done.stderr


def test_a_mapping_that_fell_back_to_the_line_is_named_in_the_reason(
    tmp_path: Path, features: Path
) -> None:
    flat = linear_model(tmp_path / "flat.onnx", [0.0] * 6, bias=2.0)  # constant predictions
    code, out, _ = _judge(flat, "--features", features, *GATE, "--mapping", "cubic")
    assert code == JudgeExit.BAD
    assert "cubic mapping fell back to linear" in out
    good = linear_model(tmp_path / "good.onnx", default_weights(6))
    assert "fell back" not in _judge(good, "--features", features, *GATE, "--mapping", "linear")[1]


def test_the_verdict_line_carries_no_escape_sequence_from_a_file_name(
    tmp_path: Path, features: Path
) -> None:
    model = linear_model(tmp_path / "m\x1b[2Jx.onnx", default_weights(6))
    code, out, _ = _judge(model, "--features", features, *GATE)
    assert code == JudgeExit.GOOD
    assert "\x1b" not in out
    assert out.count("\n") == 1


def test_an_abbreviated_gate_flag_aborts_the_bisect_instead_of_gating(
    tmp_path: Path, features: Path
) -> None:
    model = linear_model(tmp_path / "good.onnx", default_weights(6))
    code, out, err = _judge(model, "--features", features, "--min-pl", "0.85")
    assert code == JudgeExit.ABORT
    assert out == ""
    assert "unrecognized arguments: --min-pl" in err


def test_a_gate_just_above_the_models_plcc_prints_a_value_below_it(
    tmp_path: Path, features: Path
) -> None:
    import numpy as np
    import pyarrow.parquet as pq
    from scipy import stats

    weights = default_weights(6)
    model = linear_model(tmp_path / "m.onnx", weights)
    table = pq.read_table(features)
    names = ["adm2", "vif_scale0", "vif_scale1", "vif_scale2", "vif_scale3", "motion2"]
    x = np.column_stack([table[c].to_numpy() for c in names]).astype(np.float32)
    plcc = float(stats.pearsonr(x @ np.asarray(weights, np.float32), table["mos"].to_numpy())[0])
    threshold = f"{plcc + 5e-5:.6f}"
    code, out, _ = _judge(model, "--features", features, "--min-plcc", threshold)
    assert code == JudgeExit.BAD
    found = re.search(r"; plcc (-?\d+\.\d+) < (\S+)$", out.strip())
    assert found is not None, out
    assert found.group(2) == threshold
    assert float(found.group(1)) < float(found.group(2))
    assert float(found.group(1)) == pytest.approx(plcc, abs=1e-4)


def test_features_that_are_a_fifo_are_named_as_such_and_exit_128(
    tmp_path: Path, features: Path
) -> None:
    model = linear_model(tmp_path / "m.onnx", default_weights(6))
    fifo = tmp_path / "fifo.parquet"
    os.mkfifo(fifo)  # never opened: a read would block until a writer came
    done = run_module("model_bisect", "judge", model, "--features", fifo, *GATE, timeout=120)
    assert done.code == JudgeExit.ABORT, done.err
    assert done.err.startswith("error: feature cache is a FIFO, not a regular file")
    assert "not found" not in done.err


def test_a_model_that_is_a_fifo_is_a_skip_saying_so(tmp_path: Path, features: Path) -> None:
    fifo = tmp_path / "m.onnx"
    os.mkfifo(fifo)
    done = run_module("model_bisect", "judge", fifo, "--features", features, *GATE, timeout=120)
    assert done.code == JudgeExit.SKIP, done.err
    assert "a FIFO, not a regular file" in done.out
