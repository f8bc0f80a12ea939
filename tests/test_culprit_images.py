"""The culprit section on a tensor cache: the committed image fixture's deliberate regression
is explained by its graph change and its worst frames (or, pooled, its worst clips), all
matching ONNX Runtime and numpy run here by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pyarrow.parquet as pq
import pytest
from onnx import numpy_helper

from model_bisect.exitcodes import ExitCode
from tests.clirun import call_main
from tests.conftest import REPO_ROOT

IMAGES = REPO_ROOT / "testdata" / "bisect-images"


def _predict(model: Path) -> np.ndarray:
    """Per-frame scores of a no-reference model on frames / 255."""
    frames = pq.read_table(IMAGES / "frames.parquet", columns=["frame"])["frame"]
    values = frames.combine_chunks().to_numpy_ndarray().astype(np.float32) / np.float32(255)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate(
        [np.ravel(session.run(None, {name: values[i : i + 16]})[0]) for i in range(0, 120, 16)]
    ).astype(np.float64)


def _run(tmp_path: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / "r.json"
    ran = call_main(
        "model_bisect", "run", "--timeline", IMAGES / "nr-timeline.toml",
        "--features", IMAGES / "frames.parquet", "--min-plcc", "0.8", "--no-cache",
        "--fail-on-first-bad", "--json", out, *extra,
    )  # fmt: skip
    assert ran.code == ExitCode.REGRESSION, ran.err
    assert "culprit: #3 (nr_03) -> #4 (nr_04)" in ran.out
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return report


def _worst(target: np.ndarray, before: np.ndarray, after: np.ndarray) -> list[int]:
    growth = np.abs(after - target) - np.abs(before - target)
    order = np.lexsort((np.arange(len(growth)), -growth))[:10]
    return [int(i) for i in order if growth[i] > 0]


def _most_changed_initializer(before: Path, after: Path) -> str:
    old = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(before)).graph.initializer}
    new = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(after)).graph.initializer}
    changed = {
        name: float(np.linalg.norm(new[name] - old[name]) / np.linalg.norm(old[name]))
        for name in old
        if name in new and not np.array_equal(old[name], new[name])
    }
    return max(changed, key=changed.__getitem__)


def test_the_culprit_names_the_changed_initializer_and_the_worst_frames(tmp_path: Path) -> None:
    culprit = _run(tmp_path)["culprit"]
    before_model, after_model = IMAGES / "models/nr_03.onnx", IMAGES / "models/nr_04.onnx"
    assert (culprit["last_good_index"], culprit["first_bad_index"]) == (3, 4)
    assert culprit["graph"][0]["name"] == _most_changed_initializer(before_model, after_model)
    before, after = _predict(before_model), _predict(after_model)
    target = pq.read_table(IMAGES / "frames.parquet", columns=["mos"])["mos"].to_numpy()
    assert culprit["agreement"]["plcc"] == pytest.approx(np.corrcoef(before, after)[0, 1], abs=1e-5)
    expected = _worst(target, before, after)
    assert [r["row"] for r in culprit["rows"]] == expected
    assert [r["after"] for r in culprit["rows"]] == pytest.approx(
        after[expected].tolist(), rel=1e-5
    )
    distortions = set(pq.read_table(IMAGES / "frames.parquet")["distortion"].to_pylist())
    slices = culprit["slices"]
    assert {s["value"] for s in slices if s["column"] == "distortion"} == distortions
    assert sum(d["rows"] for d in culprit["deciles"]) == 120


def test_pooled_by_clip_the_worst_rows_are_clips_named_by_their_id(tmp_path: Path) -> None:
    report = _run(tmp_path, "--pool-by", "clip")
    culprit = report["culprit"]
    table = pq.read_table(IMAGES / "frames.parquet", columns=["clip", "mos", "distortion"])
    clips = table["clip"].to_pylist()
    names = list(dict.fromkeys(clips))  # groups in order of first appearance
    codes = np.asarray([names.index(c) for c in clips])
    counts = np.bincount(codes)
    before = np.bincount(codes, _predict(IMAGES / "models/nr_03.onnx")) / counts
    after = np.bincount(codes, _predict(IMAGES / "models/nr_04.onnx")) / counts
    target = table["mos"].to_numpy()[[clips.index(n) for n in names]]
    expected = _worst(target, before, after)
    assert culprit["row_id_column"] == "clip"
    assert [r["row"] for r in culprit["rows"]] == expected
    assert [r["id"] for r in culprit["rows"]] == [names[i] for i in expected]
    assert [r["before"] for r in culprit["rows"]] == pytest.approx(
        before[expected].tolist(), abs=1e-4
    )
    assert sum(d["rows"] for d in culprit["deciles"]) == len(names)
    per_clip = {c: d for c, d in zip(clips, table["distortion"].to_pylist(), strict=True)}
    noise = next(s for s in culprit["slices"] if s["value"] == "noise")
    assert noise["rows"] == sum(1 for d in per_clip.values() if d == "noise")
    assert {s["column"] for s in culprit["slices"]} == {"distortion"}  # never the clip itself
