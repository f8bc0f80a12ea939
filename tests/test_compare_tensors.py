"""`model-bisect compare` on a tensor cache: a tiny no-reference CNN against its int8-rounded
twin, both fed uint8 frames through their sidecars' ``inputs`` tables (the VMAF fork's
``nr_metric_v1`` and ``nr_metric_v1.int8`` in miniature), every number checked against ONNX
Runtime run here by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from onnx import TensorProto, helper, numpy_helper

from model_bisect.exitcodes import ExitCode
from tests.clirun import call_main
from tests.modelkit import IR_VERSION

SIZE = 16
CLIPS, FRAMES_PER_CLIP = 12, 20
SCALE = 1 / 255
BUDGET = 0.01  # the fork's quant_accuracy_budget_plcc
INPUTS = {"frame": {"tensor": "frame", "scale": SCALE}}


def _weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "w": rng.normal(0.0, 0.5, (4, 1, 3, 3)),
        "b": rng.normal(0.0, 0.05, 4),
        "g": rng.uniform(0.5, 1.5, (4, 1)),
        "h": np.array([1.0]),
    }


def _int8(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each tensor on a symmetric 8-bit grid (127 steps a sign), as a quantiser stores it."""
    out = {}
    for name, values in weights.items():
        step = np.abs(values).max() / 127
        out[name] = np.round(values / step) * step
    return out


def _cnn(path: Path, weights: dict[str, np.ndarray], **sidecar: Any) -> Path:
    """frame [batch, 1, 16, 16] -> Conv 3x3 x 4 -> Relu -> GlobalAveragePool -> Flatten ->
    Gemm -> mos [batch]: the fork's nr_metric_v1 signature, with a sidecar beside it."""
    nodes = [
        helper.make_node("Conv", ["frame", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "g", "h"], ["s"]),
        helper.make_node("Flatten", ["s"], ["s1"], axis=0),
        helper.make_node("Squeeze", ["s1", "zero"], ["mos"]),
    ]
    inits = [
        numpy_helper.from_array(np.asarray(v, dtype=np.float32), name)
        for name, v in weights.items()
    ]
    inits.append(numpy_helper.from_array(np.array([0], dtype=np.int64), "zero"))
    graph = helper.make_graph(
        nodes,
        "nr_metric",
        [helper.make_tensor_value_info("frame", TensorProto.FLOAT, ["batch", 1, SIZE, SIZE])],
        [helper.make_tensor_value_info("mos", TensorProto.FLOAT, ["batch"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    if sidecar:
        path.with_suffix(".json").write_text(json.dumps(sidecar), encoding="utf-8")
    return path


def _cache(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """uint8 frames, twelve clips of twenty; a clip's ``mos`` follows its brightness."""
    rng = np.random.default_rng(18)
    level = np.repeat(rng.uniform(0, 1, CLIPS), FRAMES_PER_CLIP)
    rows = CLIPS * FRAMES_PER_CLIP
    texture = rng.uniform(0, 80, (rows, 1, SIZE, SIZE))
    frames = (level[:, None, None, None] * 170 + texture).astype(np.uint8)
    clip_mos = 1 + 4 * level[::FRAMES_PER_CLIP] + rng.normal(0, 0.3, CLIPS)
    mos = np.repeat(clip_mos, FRAMES_PER_CLIP)
    clips = [f"clip_{i // FRAMES_PER_CLIP:02d}" for i in range(rows)]
    tensor = pa.FixedShapeTensorArray.from_numpy_ndarray(np.ascontiguousarray(frames))
    table = pa.table({"frame": tensor, "mos": mos, "clip": clips})
    pq.write_table(table, path, row_group_size=64)
    return frames, mos, clips


def _by_hand(model: Path, frames: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    fed = frames.astype(np.float32) * np.float32(SCALE)
    return np.asarray(session.run(["mos"], {"frame": fed})[0], dtype=np.float64)


@pytest.fixture
def pair(tmp_path: Path) -> dict[str, Any]:
    cache = tmp_path / "frames.parquet"
    frames, mos, clips = _cache(cache)
    weights = _weights(7)
    a = _cnn(tmp_path / "m" / "nr_metric_v1.onnx", weights, inputs=INPUTS, output="mos")
    b = _cnn(
        tmp_path / "m" / "nr_metric_v1.int8.onnx",
        _int8(weights),
        inputs=INPUTS,
        output="mos",
        quant_accuracy_budget_plcc=BUDGET,
    )
    return {"a": a, "b": b, "cache": cache, "frames": frames, "mos": mos, "clips": clips}


def _compare(*args: str | Path) -> tuple[Any, dict[str, Any] | None]:
    out = Path(str(args[0])).parent / "compare.json"
    out.unlink(missing_ok=True)
    ran = call_main("model_bisect", "compare", *args, "--json", out)
    report = json.loads(out.read_text(encoding="utf-8")) if out.exists() else None
    return ran, report


def test_the_int8_twin_within_its_sidecar_budget_is_exit_0_with_the_hand_plcc(
    pair: dict[str, Any],
) -> None:
    before, after = _by_hand(pair["a"], pair["frames"]), _by_hand(pair["b"], pair["frames"])
    expected = float(np.corrcoef(before, after)[0, 1])
    assert 0 < 1 - expected < BUDGET  # rounding to int8 moves the scores, within budget
    ran, report = _compare(pair["a"], pair["b"], "--features", pair["cache"])
    assert ran.code == ExitCode.OK, ran.err
    assert report is not None
    (result,) = report["pairs"]
    assert result["culprit"]["agreement"]["plcc"] == pytest.approx(expected, abs=1e-6)
    assert result["disagreement"] == pytest.approx(1 - expected, abs=1e-6)
    assert result["budget"] == {"plcc": BUDGET, "source": "nr_metric_v1.int8.json"}
    assert result["features"]["rows"] == CLIPS * FRAMES_PER_CLIP
    assert ran.out.startswith("within budget: 1 - plcc(nr_metric_v1.onnx, nr_metric_v1.int8.onnx)")


def test_a_twin_perturbed_beyond_the_budget_is_exit_2(pair: dict[str, Any]) -> None:
    weights = _weights(7)
    rng = np.random.default_rng(3)
    weights["w"] = weights["w"] + rng.normal(0, 0.4, weights["w"].shape)
    far = _cnn(pair["b"], weights, inputs=INPUTS, quant_accuracy_budget_plcc=BUDGET)
    before, after = _by_hand(pair["a"], pair["frames"]), _by_hand(far, pair["frames"])
    expected = 1 - float(np.corrcoef(before, after)[0, 1])
    assert expected > BUDGET
    ran, report = _compare(pair["a"], far, "--features", pair["cache"])
    assert ran.code == ExitCode.REGRESSION, ran.err
    assert report is not None
    (result,) = report["pairs"]
    assert result["within_budget"] is False
    assert result["disagreement"] == pytest.approx(expected, abs=1e-6)
    assert [c["name"] for c in result["culprit"]["graph"]] == ["w"]


def test_pooled_by_clip_the_items_are_the_hand_computed_clip_means(
    pair: dict[str, Any],
) -> None:
    clips = np.asarray(pair["clips"])
    names = list(dict.fromkeys(pair["clips"]))
    means = []
    for model in (pair["a"], pair["b"]):
        scores = _by_hand(model, pair["frames"])
        means.append(np.array([scores[clips == name].mean() for name in names]))
    ran, report = _compare(pair["a"], pair["b"], "--features", pair["cache"], "--pool-by", "clip")
    assert ran.code == ExitCode.OK, ran.err
    assert report is not None
    (result,) = report["pairs"]
    assert result["pool_by"] == "clip"
    culprit = result["culprit"]
    assert culprit["agreement"]["rows"] == CLIPS
    assert culprit["agreement"]["plcc"] == pytest.approx(
        float(np.corrcoef(means[0], means[1])[0, 1]), abs=1e-6
    )
    assert culprit["rows"], "the int8 twin moves some clip's error"
    for row in culprit["rows"]:
        group = names.index(row["id"])
        assert row["row"] == group
        assert row["before"] == pytest.approx(means[0][group], rel=1e-5)
        assert row["after"] == pytest.approx(means[1][group], rel=1e-5)


def test_a_lower_is_better_sidecar_negates_that_models_scores(pair: dict[str, Any]) -> None:
    sidecar = pair["b"].with_suffix(".json")
    data = json.loads(sidecar.read_text(encoding="utf-8"))
    sidecar.write_text(json.dumps({**data, "direction": "lower"}), encoding="utf-8")
    before, after = _by_hand(pair["a"], pair["frames"]), _by_hand(pair["b"], pair["frames"])
    ran, report = _compare(pair["a"], pair["b"], "--features", pair["cache"])
    assert ran.code == ExitCode.REGRESSION, ran.err  # as a distance, B disagrees entirely
    assert report is not None
    (result,) = report["pairs"]
    assert result["culprit"]["agreement"]["plcc"] == pytest.approx(
        -float(np.corrcoef(before, after)[0, 1]), abs=1e-6
    )


def test_the_inputs_from_direction_wins_over_the_models_own_sidecar(
    pair: dict[str, Any], tmp_path: Path
) -> None:
    """--inputs-from is laid over each sidecar as a timeline entry is: where it declares a
    direction, that is the one both models are scored with, whatever B's sidecar says."""
    sidecar = pair["b"].with_suffix(".json")
    data = json.loads(sidecar.read_text(encoding="utf-8"))
    sidecar.write_text(json.dumps({**data, "direction": "lower"}), encoding="utf-8")
    before, after = _by_hand(pair["a"], pair["frames"]), _by_hand(pair["b"], pair["frames"])
    shared = tmp_path / "inputs.json"
    shared.write_text(json.dumps({"inputs": INPUTS, "direction": "higher"}), encoding="utf-8")
    ran, report = _compare(
        pair["a"], pair["b"], "--features", pair["cache"], "--inputs-from", shared
    )
    assert ran.code == ExitCode.OK, ran.err  # both higher-is-better: the twins agree
    assert report is not None
    (result,) = report["pairs"]
    assert result["culprit"]["agreement"]["plcc"] == pytest.approx(
        float(np.corrcoef(before, after)[0, 1]), abs=1e-6
    )
    silent = tmp_path / "silent.json"  # no direction: B's sidecar says lower, as before
    silent.write_text(json.dumps({"inputs": INPUTS}), encoding="utf-8")
    ran, report = _compare(
        pair["a"], pair["b"], "--features", pair["cache"], "--inputs-from", silent
    )
    assert ran.code == ExitCode.REGRESSION, ran.err
    assert report is not None
    assert report["pairs"][0]["culprit"]["agreement"]["plcc"] == pytest.approx(
        -float(np.corrcoef(before, after)[0, 1]), abs=1e-6
    )


def test_a_twin_sidecar_with_only_its_budget_takes_the_inputs_from_the_flag(
    pair: dict[str, Any],
) -> None:
    pair["b"].with_suffix(".json").write_text(
        json.dumps({"quant_accuracy_budget_plcc": BUDGET}), encoding="utf-8"
    )
    ran, _ = _compare(pair["a"], pair["b"], "--features", pair["cache"])
    assert ran.code == ExitCode.INPUT
    assert ran.err.count("\n") == 1
    assert ran.err.startswith("error: sidecar describes no inputs, while the other model")
    assert "nr_metric_v1.int8.json" in ran.err
    assert "--inputs-from" in ran.err
    pair["b"].with_suffix(".json").unlink()
    ran, _ = _compare(pair["a"], pair["b"], "--features", pair["cache"])
    assert ran.code == ExitCode.INPUT
    assert ran.err.startswith("error: sidecar is missing, while the other model")
    pair["b"].with_suffix(".json").write_text(
        json.dumps({"quant_accuracy_budget_plcc": BUDGET}), encoding="utf-8"
    )
    shared = pair["a"].with_suffix(".json")
    ran, report = _compare(
        pair["a"], pair["b"], "--features", pair["cache"], "--inputs-from", shared
    )
    assert ran.code == ExitCode.OK, ran.err
    assert report is not None
    assert report["pairs"][0]["budget"]["source"] == "nr_metric_v1.int8.json"


def test_a_missing_tensor_column_is_exit_3_in_one_line(
    pair: dict[str, Any], tmp_path: Path
) -> None:
    shared = tmp_path / "inputs.json"
    shared.write_text(json.dumps({"inputs": {"frame": {"tensor": "luma"}}}), encoding="utf-8")
    ran, report = _compare(
        pair["a"], pair["b"], "--features", pair["cache"], "--inputs-from", shared
    )
    assert ran.code == ExitCode.INPUT
    assert report is None
    assert ran.err.count("\n") == 1
    assert "no tensor column 'luma'" in ran.err
    assert str(pair["cache"]) in ran.err
    assert "Traceback" not in ran.err
