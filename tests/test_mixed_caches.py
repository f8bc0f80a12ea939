"""One cache holding frames and features feeds both kinds of model in one timeline: a feature
model reads its columns as ``[N, F]``, an image model its tensor column, on the same rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from model_bisect.exitcodes import ExitCode
from tests.clirun import call_main
from tests.conftest import REPO_ROOT
from tests.modelkit import linear_model

IMAGES = REPO_ROOT / "testdata" / "bisect-images"
WEIGHTS = (0.8, -0.3)
DROPPED = 7  # the row whose feature is NaN: both kinds of model judge without it


def _mixed_cache(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fixture's frames with two feature columns beside them; row DROPPED's is NaN."""
    table = pq.read_table(IMAGES / "frames.parquet")
    frames = table["frame"].combine_chunks().to_numpy_ndarray()
    mos = table["mos"].to_numpy()
    rng = np.random.default_rng(5)
    features = np.column_stack([mos + rng.normal(0, 0.3, len(mos)), rng.uniform(0, 1, len(mos))])
    features = features.astype(np.float32)
    features[DROPPED, 0] = np.nan
    table = table.append_column("sharp", pa.array(features[:, 0])).append_column(
        "grain", pa.array(features[:, 1])
    )
    pq.write_table(table, path, row_group_size=50)
    return frames, features, mos


def _timeline(folder: Path) -> Path:
    (folder / "nr.onnx").write_bytes((IMAGES / "models" / "nr_03.onnx").read_bytes())
    linear_model(folder / "linear.onnx", list(WEIGHTS))
    timeline = folder / "timeline.toml"
    timeline.write_text(
        '[[models]]\npath = "nr.onnx"\n'
        '[models.inputs.frame]\ntensor = "frame"\nscale = 0.00392156862745098\n\n'
        '[[models]]\npath = "linear.onnx"\n[models.inputs]\ninput = ["sharp", "grain"]\n',
        encoding="utf-8",
    )
    return timeline


def _run(folder: Path, cache: Path) -> dict[str, Any]:
    out = folder / "r.json"
    done = call_main(
        "model_bisect", "run", "--timeline", _timeline(folder), "--features", cache,
        "--min-plcc", "0.5", "--scan", "--no-cache", "--json", out,
    )  # fmt: skip
    assert done.code == ExitCode.OK, done.out + done.err
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return report


def test_a_feature_model_and_an_image_model_are_both_judged_on_the_same_rows(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "mixed.parquet"
    frames, features, mos = _mixed_cache(cache)
    report = _run(tmp_path, cache)
    steps = {s["index"]: s for s in report["steps"]}
    assert steps[0]["status"] == steps[1]["status"] == "good"
    assert report["features"]["dropped_rows"] == 1
    keep = np.ones(len(mos), dtype=bool)
    keep[DROPPED] = False
    session = ort.InferenceSession(str(tmp_path / "nr.onnx"), providers=["CPUExecutionProvider"])
    scaled = frames.astype(np.float32) / np.float32(255)
    image = np.ravel(session.run(None, {"frame": scaled})[0])
    linear = features @ np.asarray(WEIGHTS, dtype=np.float32)
    for index, scores in ((0, image), (1, linear)):
        by_hand = stats.pearsonr(scores[keep], mos[keep])[0]
        assert steps[index]["metrics"]["plcc"] == pytest.approx(by_hand, abs=1e-5)


def test_an_image_model_alone_on_the_same_cache_keeps_the_rows_the_features_drop_not(
    tmp_path: Path,
) -> None:
    """Without a feature model no feature drops a row: the tensor path alone reads the file."""
    cache = tmp_path / "mixed.parquet"
    _mixed_cache(cache)
    timeline = _timeline(tmp_path)
    body = timeline.read_text(encoding="utf-8").split("[[models]]")[1]
    timeline.write_text(f"[[models]]{body}[[models]]{body}", encoding="utf-8")
    out = tmp_path / "alone.json"
    done = call_main(
        "model_bisect", "run", "--timeline", timeline, "--features", cache,
        "--min-plcc", "0.5", "--no-cache", "--json", out,
    )  # fmt: skip
    assert done.code == ExitCode.OK, done.err
    assert json.loads(out.read_text(encoding="utf-8"))["features"]["dropped_rows"] == 0
