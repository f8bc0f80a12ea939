"""The committed image fixture bisects end to end: the no-reference timeline's deliberate
regression is found where the fixture put it, and the full-reference distance is negated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pyarrow.parquet as pq
import pytest
from scipy import stats

from model_bisect.exitcodes import ExitCode
from tests.clirun import call_main
from tests.conftest import REPO_ROOT

IMAGES = REPO_ROOT / "testdata" / "bisect-images"


def _plcc_by_hand(model: Path) -> float:
    """The no-reference model's PLCC against mos, run by ONNX Runtime on frames / 255."""
    table = pq.read_table(IMAGES / "frames.parquet")
    frames = table["frame"].combine_chunks().to_numpy_ndarray().astype(np.float32) / 255.0
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    scores = np.concatenate(
        [
            np.ravel(session.run(None, {name: frames[i : i + 16]})[0])
            for i in range(0, len(frames), 16)
        ]
    )
    return float(stats.pearsonr(scores, table["mos"].to_numpy())[0])


def test_the_no_reference_timeline_regresses_where_the_fixture_put_it(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    ran = call_main(
        "model_bisect", "run", "--timeline", IMAGES / "nr-timeline.toml",
        "--features", IMAGES / "frames.parquet", "--min-plcc", "0.8", "--no-cache",
        "--fail-on-first-bad", "--json", out,
    )  # fmt: skip
    assert ran.code == ExitCode.REGRESSION, ran.err
    report = json.loads(out.read_text(encoding="utf-8"))
    verdict = report["verdict"]
    first_bad, last_good = verdict["first_bad_index"], verdict["last_good_index"]
    assert (last_good, first_bad) == (first_bad - 1, first_bad)
    models = [IMAGES / entry["path"] for entry in report["timeline"]]
    assert _plcc_by_hand(models[last_good]) >= 0.8 > _plcc_by_hand(models[first_bad])
    step = next(s for s in report["steps"] if s["index"] == first_bad)
    assert step["metrics"]["plcc"] == pytest.approx(_plcc_by_hand(models[first_bad]), abs=1e-5)


def test_the_full_reference_distance_is_negated_and_pooled_by_clip(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    ran = call_main(
        "model_bisect", "run", "--timeline", IMAGES / "fr-timeline.toml",
        "--features", IMAGES / "pairs.parquet", "--min-plcc", "0.8", "--no-cache",
        "--pool-by", "clip", "--json", out,
    )  # fmt: skip
    assert ran.code == ExitCode.OK, ran.err
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["verdict"]["kind"] == "no_regression"
    lower = [e["index"] for e in report["timeline"] if e.get("direction") == "lower"]
    assert lower
    clips = pq.read_table(IMAGES / "pairs.parquet", columns=["clip"])["clip"].to_pylist()
    assert report["features"]["groups"] == len(set(clips))
    assert "scores negated" in ran.out
