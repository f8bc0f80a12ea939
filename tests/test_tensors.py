"""Image quality models fed from tensor columns of a parquet cache, streamed.

The CNNs are built here with onnx's helpers and run by ONNX Runtime; the caches are real
parquet files whose tensor columns are Arrow's fixed-shape tensor type. Every expected value
is computed here: the frames preprocessed with numpy, the model run by hand with ONNX
Runtime on them, the metrics with scipy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.stats
from onnx import TensorProto, helper, numpy_helper

from model_bisect.exitcodes import ExitCode
from tests.clirun import REPO_ROOT, call_main
from tests.modelkit import IR_VERSION

SIZE = 8
SCALE = 1 / 255
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def _init(name: str, values: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.float32), name)


def _save(path: Path, graph: onnx.GraphProto) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def nr_cnn(
    path: Path, seed: int, channels: int = 1, size: int = SIZE, batch: int | str = "N"
) -> Path:
    """No-reference: frame [N, C, 8, 8] -> Conv -> Relu -> GlobalAveragePool -> Flatten ->
    Gemm -> mos [N, 1]."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Conv", ["frame", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "g", "h"], ["mos"]),
    ]
    inits = [
        _init("w", rng.uniform(0.2, 1.0, (2, channels, 3, 3))),
        _init("b", [0.0, 0.1]),
        _init("g", [[1.5], [0.5]]),
        _init("h", [1.0]),
    ]
    graph = helper.make_graph(
        nodes,
        "nr",
        [helper.make_tensor_value_info("frame", TensorProto.FLOAT, [batch, channels, size, size])],
        [helper.make_tensor_value_info("mos", TensorProto.FLOAT, [batch, 1])],
        inits,
    )
    return _save(path, graph)


def fr_cnn(path: Path, seed: int) -> Path:
    """Full-reference, batch fixed at 1: |ref - dist| -> Conv -> Relu -> GlobalAveragePool ->
    Flatten -> Gemm; outputs ``aux`` [1, 2] first and ``score`` rank-0 (a distance)."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Sub", ["ref", "dist"], ["d"]),
        helper.make_node("Abs", ["d"], ["a"]),
        helper.make_node("Conv", ["a", "w", "b"], ["c"]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["aux"]),
        helper.make_node("Gemm", ["aux", "g", "h"], ["s"]),
        helper.make_node("ReduceMean", ["s"], ["score"], keepdims=0),
    ]
    inits = [
        _init("w", rng.uniform(0.1, 1.0, (2, 3, 3, 3))),
        _init("b", [0.0, 0.0]),
        _init("g", [[1.0], [2.0]]),
        _init("h", [0.0]),
    ]
    shape = [1, 3, SIZE, SIZE]
    graph = helper.make_graph(
        nodes,
        "fr",
        [
            helper.make_tensor_value_info("ref", TensorProto.FLOAT, shape),
            helper.make_tensor_value_info("dist", TensorProto.FLOAT, shape),
        ],
        [
            helper.make_tensor_value_info("aux", TensorProto.FLOAT, [1, 2]),
            helper.make_tensor_value_info("score", TensorProto.FLOAT, []),
        ],
        inits,
    )
    return _save(path, graph)


def _tensor(frames: np.ndarray) -> pa.Array:
    return pa.FixedShapeTensorArray.from_numpy_ndarray(np.ascontiguousarray(frames))


def frames_cache(
    path: Path, rows: int, seed: int, *, channels: int = 1, row_group: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 frames of rising brightness with noise, and a target that follows brightness."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(0, 1, rows)
    base = level[:, None, None, None] * 200 + rng.uniform(0, 55, (rows, channels, SIZE, SIZE))
    frames = base.astype(np.uint8)
    mos = 1 + 4 * level + rng.normal(0, 0.3, rows)
    pq.write_table(pa.table({"frame": _tensor(frames), "mos": mos}), path, row_group_size=row_group)
    return frames, mos


def _metrics(predictions: np.ndarray, target: np.ndarray) -> dict[str, float]:
    p = np.asarray(predictions, dtype=np.float64)
    return {
        "plcc": float(scipy.stats.pearsonr(p, target).statistic),
        "srocc": float(scipy.stats.spearmanr(p, target).statistic),
        "rmse": float(np.sqrt(np.mean((p - target) ** 2))),
    }


def _by_hand(model: Path, feeds: Sequence[dict[str, np.ndarray]], output: str) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return np.concatenate([np.ravel(session.run([output], feed)[0]) for feed in feeds])


def _timeline(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def _run(timeline: Path, cache: Path, out: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    done = call_main(
        "model_bisect",
        "run",
        "--timeline",
        timeline,
        "--features",
        cache,
        "--min-plcc",
        "0.1",
        "--scan",
        "--json",
        out,
        *extra,
    )
    assert done.code == ExitCode.OK, done.out + done.err
    report: dict = json.loads(out.read_text())  # type: ignore[type-arg]
    return report


def _nr_timeline(folder: Path, scale: float) -> Path:
    entries = "".join(
        f'[[models]]\npath = "nr_{i}.onnx"\n'
        f'[models.inputs.frame]\ntensor = "frame"\nscale = {scale!r}\n\n'
        for i in range(2)
    )
    return _timeline(folder / "timeline.toml", entries)


def test_a_no_reference_cnn_on_a_uint8_tensor_column_matches_onnx_runtime_by_hand(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "frames.parquet"
    frames, mos = frames_cache(cache, rows=150, seed=3)
    models = [nr_cnn(tmp_path / f"nr_{i}.onnx", seed=i) for i in range(2)]
    report = _run(_nr_timeline(tmp_path, SCALE), cache, tmp_path / "r.json")
    scaled = frames.astype(np.float32) * np.float32(SCALE)
    for step in report["steps"]:
        batches = [{"frame": scaled[i : i + 40]} for i in range(0, len(scaled), 40)]
        expected = _metrics(_by_hand(models[step["index"]], batches, "mos"), mos)
        for name, value in expected.items():
            assert step["metrics"][name] == pytest.approx(value, abs=1e-5), name
    assert report["features"]["rows"] == 150


def test_a_wrong_scale_changes_the_metrics(tmp_path: Path) -> None:
    cache = tmp_path / "frames.parquet"
    frames_cache(cache, rows=150, seed=3)
    for i in range(2):
        nr_cnn(tmp_path / f"nr_{i}.onnx", seed=i)
    right = _run(_nr_timeline(tmp_path, SCALE), cache, tmp_path / "a.json")
    wrong = _run(_nr_timeline(tmp_path, 1.0), cache, tmp_path / "b.json")
    assert right["steps"][0]["metrics"]["rmse"] != pytest.approx(
        wrong["steps"][0]["metrics"]["rmse"], rel=1e-3
    )


def _pairs_cache(path: Path, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB reference frames, distorted copies with noise of a known level, MOS falling with it."""
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 256, (rows, 3, SIZE, SIZE)).astype(np.uint8)
    level = rng.uniform(0, 1, rows)
    noise = rng.normal(0, 1, ref.shape) * (level * 80)[:, None, None, None]
    dist = np.clip(ref + noise, 0, 255).astype(np.uint8)
    mos = 5 - 4 * level + rng.normal(0, 0.2, rows)
    table = pa.table({"ref": _tensor(ref), "dist": _tensor(dist), "mos": mos})
    pq.write_table(table, path, row_group_size=32)
    return ref, dist, mos


def _fr_entry(name: str) -> str:
    lines = [f'[[models]]\npath = "{name}"\ndirection = "lower"\noutput = "score"\n']
    for column in ("ref", "dist"):
        lines.append(
            f'[models.inputs.{column}]\ntensor = "{column}"\nscale = {SCALE!r}\n'
            f"mean = {MEAN}\nstd = {STD}\n"
        )
    return "".join(lines) + "\n"


def test_a_full_reference_distance_with_batch_one_is_negated_and_the_report_says_so(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "pairs.parquet"
    ref, dist, mos = _pairs_cache(cache, rows=60, seed=5)
    models = [fr_cnn(tmp_path / f"fr_{i}.onnx", seed=i) for i in range(2)]
    body = _fr_entry("fr_0.onnx") + _fr_entry("fr_1.onnx")
    report = _run(_timeline(tmp_path / "t.toml", body), cache, tmp_path / "r.json")

    def prepared(values: np.ndarray) -> np.ndarray:
        x = values.astype(np.float32) * np.float32(SCALE)
        mean = np.asarray(MEAN, dtype=np.float32)[:, None, None]
        std = np.asarray(STD, dtype=np.float32)[:, None, None]
        return (x - mean) / std

    feeds = [
        {"ref": prepared(ref[i : i + 1]), "dist": prepared(dist[i : i + 1])}
        for i in range(len(ref))
    ]
    for step in report["steps"]:
        distances = _by_hand(models[step["index"]], feeds, "score")
        assert scipy.stats.pearsonr(distances, mos).statistic < 0  # a distance
        expected = _metrics(-distances, mos)
        assert step["metrics"]["plcc"] == pytest.approx(expected["plcc"], abs=1e-5)
        assert step["metrics"]["rmse"] == pytest.approx(expected["rmse"], abs=1e-5)
        assert "scores negated: declared lower-is-better" in step["reason"]
    assert [m["direction"] for m in report["timeline"]] == ["lower", "lower"]


def test_a_fixed_size_list_column_needs_and_takes_the_shape(tmp_path: Path) -> None:
    cache = tmp_path / "frames.parquet"
    frames, mos = frames_cache(cache, rows=90, seed=8)
    flat = pa.FixedSizeListArray.from_arrays(pa.array(frames.reshape(-1)), SIZE * SIZE)
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"frame": flat, "mos": mos}), plain, row_group_size=20)
    models = [nr_cnn(tmp_path / f"nr_{i}.onnx", seed=i) for i in range(2)]
    shaped = "".join(
        f'[[models]]\npath = "nr_{i}.onnx"\n[models.inputs.frame]\ntensor = "frame"\n'
        f"scale = {SCALE!r}\nshape = [1, {SIZE}, {SIZE}]\n\n"
        for i in range(2)
    )
    report = _run(_timeline(tmp_path / "t.toml", shaped), plain, tmp_path / "r.json")
    scaled = frames.astype(np.float32) * np.float32(SCALE)
    expected = _metrics(_by_hand(models[0], [{"frame": scaled}], "mos"), mos)
    assert report["steps"][0]["metrics"]["plcc"] == pytest.approx(expected["plcc"], abs=1e-5)

    unshaped = call_main(
        "model_bisect",
        "run",
        "--timeline",
        _nr_timeline(tmp_path, SCALE),
        "--features",
        plain,
        "--min-plcc",
        "0.1",
    )
    assert unshaped.code == ExitCode.INPUT
    assert "give its row shape with shape = [...]" in unshaped.err


def test_a_missing_tensor_column_is_one_line_exit_3(tmp_path: Path) -> None:
    cache = tmp_path / "frames.parquet"
    frames_cache(cache, rows=30, seed=1)
    for i in range(2):
        nr_cnn(tmp_path / f"nr_{i}.onnx", seed=i)
    body = _nr_timeline(tmp_path, SCALE).read_text().replace('tensor = "frame"', 'tensor = "y"')
    done = call_main(
        "model_bisect",
        "run",
        "--timeline",
        _timeline(tmp_path / "t.toml", body),
        "--features",
        cache,
    )
    assert done.code == ExitCode.INPUT
    assert done.err.count("\n") == 1
    assert "no tensor column 'y'" in done.err
    assert str(cache) in done.err


# Peak bytes held by numpy (which reports to tracemalloc) plus Arrow's memory pool: what
# holding or streaming the tensors changes, without the noise of ONNX Runtime's threads in
# the resident set size.
_PEAK = """
import sys, tracemalloc
import pyarrow as pa
from model_bisect.cli import main
tracemalloc.start()
code = main(sys.argv[1:])
peak = tracemalloc.get_traced_memory()[1] + pa.default_memory_pool().max_memory()
print(code, peak // 1024)
"""


def _peak_kib(timeline: Path, cache: Path) -> int:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _PEAK,
            "run",
            "--timeline",
            timeline,
            "--features",
            cache,
            "--no-cache",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    code, peak = done.stdout.split()[-2:]
    assert code in {"0", "2"}, done.stdout + done.stderr  # judged: good or bad
    return int(peak)


def test_peak_memory_grows_far_less_than_the_tensor_cache(tmp_path: Path) -> None:
    """Four times the frames (about 30 MB more as uint8, 120 MB as float32) must not cost
    anywhere near that much more memory: the tensors are streamed. The models' batch axis
    is fixed at 16, so the batch fed is the same for both caches (a dynamic axis grows its
    batches up to TENSOR_BATCH_BYTES: the next test)."""
    for i in range(2):
        nr_cnn(tmp_path / f"nr_{i}.onnx", seed=i, channels=3, size=64, batch=16)
    timeline = _nr_timeline(tmp_path, SCALE)
    big_side = 64  # the models' frame size
    peaks = []
    for rows in (800, 3200):
        rng = np.random.default_rng(rows)
        frames = rng.integers(0, 256, (rows, 3, big_side, big_side), dtype=np.uint8)
        mos = frames.mean(axis=(1, 2, 3)) / 50 + rng.normal(0, 0.1, rows)
        cache = tmp_path / f"cache_{rows}.parquet"
        pq.write_table(pa.table({"frame": _tensor(frames), "mos": mos}), cache, row_group_size=200)
        peaks.append(_peak_kib(timeline, cache))
    extra_frames_kib = (3200 - 800) * 3 * big_side * big_side // 1024
    growth = peaks[1] - peaks[0]
    # Held whole, the extra frames alone would add extra_frames_kib as uint8 and four times
    # that as float32; streamed, the growth stays a small share of the uint8 bytes (about
    # 1.3 MB of 28 MB when measured), and the larger cache's peak is near the smaller's.
    assert growth < extra_frames_kib / 4, (peaks, extra_frames_kib)
    assert peaks[1] < 1.25 * peaks[0], peaks


# Run from a bare interpreter: Linux carries a process's peak RSS across exec, so a child
# started by the test process itself would report the test's own peak (the frames it built).
_RSS_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
_, status, usage = os.wait4(child.pid, 0)
sys.stderr.write(child.stderr.read().decode(errors="replace")[-2000:])
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def _max_rss_mib(timeline: Path, cache: Path) -> float:
    """Peak resident set size of one whole `run` process, as the kernel counted it."""
    command = [sys.executable, "-m", "model_bisect", "run", "--timeline", timeline,
               "--features", cache, "--no-cache", "--quiet"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _RSS_LAUNCHER, *map(str, command)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    code, kib = done.stdout.split()
    assert code in {"0", "2"}, done.stderr
    return int(kib) / 1024


def test_a_dynamic_batch_cnn_peaks_the_same_on_four_times_the_frames(tmp_path: Path) -> None:
    """With a dynamic batch axis the batch is set by TENSOR_BATCH_BYTES, not the cache: four
    times the frames (28 MB more as uint8, 118 MB as float32 input, as much again in each of
    the CNN's activations) leave the resident peak where it was. At the 64 MiB bound that
    feature models keep, the 3,200-frame cache ran in three calls and the peak grew by 240 MB."""
    for i in range(2):
        nr_cnn(tmp_path / f"nr_{i}.onnx", seed=i, channels=3, size=64)
    timeline = _nr_timeline(tmp_path, SCALE)
    peaks = []
    for rows in (800, 3200):
        rng = np.random.default_rng(rows)
        frames = rng.integers(0, 256, (rows, 3, 64, 64), dtype=np.uint8)
        mos = frames.mean(axis=(1, 2, 3)) / 50 + rng.normal(0, 0.1, rows)
        cache = tmp_path / f"cache_{rows}.parquet"
        pq.write_table(pa.table({"frame": _tensor(frames), "mos": mos}), cache, row_group_size=200)
        peaks.append(_max_rss_mib(timeline, cache))
    # Measured: 291 to 309 MB at both sizes (the run-to-run spread is ORT's threads); at
    # 64 MiB, 497 MB and then 736 MB.
    assert peaks[1] - peaks[0] < 60, peaks
