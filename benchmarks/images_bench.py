"""The image case of `nox -s bench` (`--only images`): a tensor cache and a tiny CNN.

A cache of grey 1 x 64 x 64 uint8 frames (Arrow fixed-shape tensor column `frame`, `mos`
following brightness) and two no-reference CNNs (Conv 3x3 x 8 -> Relu -> MaxPool 2 ->
GlobalAveragePool -> Flatten -> Gemm), fed through their sidecars' `inputs` (scale 1/255).
Every measurement is one whole process (imports included), alternating, median of `repeats`:

- `model-bisect run` on the two models (the tail passes: one evaluation) against a bare ONNX
  Runtime loop over the same batches (pyarrow `iter_batches`, numpy `/ 255`, `session.run`),
  as frames per second and their ratio; both must give the same PLCC;
- peak RSS above a run on a 64-frame cache (the process's own start-up) at two cache sizes,
  showing that it does not grow with the frames.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["measure_images", "print_images"]

SIZE = 64
THROUGHPUT_FRAMES = 8_000
MEMORY_FRAMES = (1_000, 5_000, 20_000)  # 16 to 313 calls of TENSOR_BATCH_BYTES (64 frames)
START_UP_FRAMES = 64
BATCH = 256  # the bare loop's batch, about what the tool's 4 MiB decode batches hold
SCALE = 1.0 / 255.0
SEED = 20261203

# Runs a command and reports its exit code, wall time and peak RSS (KiB), as the child saw.
_LAUNCHER = """
import json, os, subprocess, sys, time
out, command = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
_, status, usage = os.wait4(child.pid, 0)
seconds = time.perf_counter() - start
err = child.stderr.read().decode(errors="replace")[-2000:]
with open(out, "w") as sink:
    json.dump({"code": os.waitstatus_to_exitcode(status), "seconds": seconds,
               "max_rss_kib": usage.ru_maxrss, "stderr": err}, sink)
"""

# The bare loop: what anyone would write with the same libraries; prints its PLCC.
_BARE = """
import sys
import numpy as np, onnxruntime as ort, pyarrow.parquet as pq
model, cache, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
name = session.get_inputs()[0].name
scores = []
for part in pq.ParquetFile(cache).iter_batches(batch_size=batch, columns=["frame"]):
    frames = part.column(0).to_numpy_ndarray().astype(np.float32) * np.float32(1 / 255)
    scores.append(np.ravel(session.run(None, {name: frames})[0]))
mos = pq.read_table(cache, columns=["mos"]).column(0).to_numpy()
print(float(np.corrcoef(np.concatenate(scores), mos)[0, 1]))
"""


def write_frames(path: Path, frames: int, seed: int = SEED) -> None:
    """uint8 grey frames of rising brightness with noise, and a `mos` that follows it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    level = rng.uniform(0, 1, frames)
    noise = rng.integers(0, 56, (frames, 1, SIZE, SIZE), dtype=np.uint8)
    values = (level[:, None, None, None] * 199).astype(np.uint8) + noise
    tensor = pa.FixedShapeTensorArray.from_numpy_ndarray(values)
    mos = 1 + 4 * level + rng.normal(0, 0.3, frames)
    pq.write_table(pa.table({"frame": tensor, "mos": mos}), path, row_group_size=1024)


def write_cnn(path: Path, seed: int) -> None:
    """frame [N, 1, 64, 64] -> Conv 3x3 x 8 -> Relu -> MaxPool 2 -> GlobalAveragePool ->
    Flatten -> Gemm -> mos [N, 1]; its sidecar feeds `frame` / 255."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(rng.normal(0.3, 0.1, (8, 1, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(np.zeros(8, dtype=np.float32), "b"),
        numpy_helper.from_array(rng.uniform(0.5, 1.0, (8, 1)).astype(np.float32), "g"),
        numpy_helper.from_array(np.zeros(1, dtype=np.float32), "h"),
    ]
    nodes = [
        helper.make_node("Conv", ["frame", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["m"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "g", "h"], ["mos"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_cnn",
        [helper.make_tensor_value_info("frame", TensorProto.FLOAT, ["N", 1, SIZE, SIZE])],
        [helper.make_tensor_value_info("mos", TensorProto.FLOAT, ["N", 1])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    sidecar = {"inputs": {"frame": {"tensor": "frame", "scale": SCALE}}, "output": "mos"}
    path.with_suffix(".json").write_text(json.dumps(sidecar), encoding="utf-8")


def _spawn(command: list[str], out: Path) -> dict[str, Any]:
    subprocess.run([sys.executable, "-I", "-S", "-c", _LAUNCHER, str(out), *command], check=True)
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    out.unlink()
    return data


def _ours(models: list[Path], cache: Path, scratch: Path) -> tuple[float, float, float]:
    """Seconds, peak RSS (MB) and the tail's PLCC of one `model-bisect run` process."""
    report = scratch / "report.json"
    command = [sys.executable, "-m", "model_bisect", "run", *map(str, models)]
    command += ["--features", str(cache), "--min-plcc", "-1", "--no-cache", "--quiet"]
    done = _spawn([*command, "--json", str(report)], scratch / "ours.rusage.json")
    if done["code"] != 0:
        raise SystemExit(f"error: model-bisect run exited {done['code']}: {done['stderr']}")
    data = json.loads(report.read_text(encoding="utf-8"))
    plcc = float(data["steps"][-1]["metrics"]["plcc"])
    return float(done["seconds"]), done["max_rss_kib"] / 1024, plcc


def _bare(model: Path, cache: Path, scratch: Path) -> tuple[float, float]:
    """Seconds and PLCC of one bare ONNX Runtime loop process."""
    printed = scratch / "bare.out"
    script = f"import sys; sys.stdout = open({str(printed)!r}, 'w'); exec({_BARE!r})"
    command = [sys.executable, "-c", script, str(model), str(cache), str(BATCH)]
    done = _spawn(command, scratch / "bare.rusage.json")
    if done["code"] != 0:
        raise SystemExit(f"error: the bare loop exited {done['code']}: {done['stderr']}")
    return float(done["seconds"]), float(printed.read_text(encoding="utf-8"))


def measure_images(scratch: Path, repeats: int, scale: float = 1.0) -> dict[str, Any]:
    """The image case's numbers (see the module docstring); ``scale`` multiplies the frame
    counts (`--row-scale`), never below the start-up cache's."""

    def scaled(frames: int) -> int:
        return max(START_UP_FRAMES, round(frames * scale))

    throughput_frames = scaled(THROUGHPUT_FRAMES)
    memory_frames = tuple(dict.fromkeys(scaled(n) for n in MEMORY_FRAMES))
    folder = scratch / "images"
    folder.mkdir(exist_ok=True)
    models = [folder / "cnn_0.onnx", folder / "cnn_1.onnx"]
    for seed, model in enumerate(models):
        write_cnn(model, seed)
    counts = {throughput_frames, *memory_frames, START_UP_FRAMES}
    caches = {n: folder / f"frames_{n}.parquet" for n in counts}
    for frames, path in caches.items():
        write_frames(path, frames)
    big = caches[throughput_frames]
    ours, bare = [], []
    for _ in range(repeats):  # alternating, so a load spike hits both
        seconds, _, ours_plcc = _ours(models, big, folder)
        ours.append(seconds)
        seconds, bare_plcc = _bare(models[-1], big, folder)
        bare.append(seconds)
    if abs(ours_plcc - bare_plcc) > 1e-4:
        raise SystemExit(f"error: PLCC {ours_plcc} (model-bisect) != {bare_plcc} (bare loop)")
    start_up = statistics.median(_ours(models, caches[START_UP_FRAMES], folder)[1] for _ in "ab")
    memory = {}
    for frames in memory_frames:
        rss = _ours(models, caches[frames], folder)[1]
        memory[str(frames)] = {
            "frames": frames,
            "stored_mb": frames * SIZE * SIZE / 1e6,
            "max_rss_mb": rss,
            "above_start_up_mb": rss - start_up,
        }
    ours_s, bare_s = statistics.median(ours), statistics.median(bare)
    return {
        "frames": throughput_frames,
        "shape": [1, SIZE, SIZE],
        "cpus": os.cpu_count(),
        "ours_seconds": ours,
        "bare_seconds": bare,
        "ours_frames_per_s": throughput_frames / ours_s,
        "bare_frames_per_s": throughput_frames / bare_s,
        "ratio_ours_over_bare_seconds": ours_s / bare_s,
        "plcc": ours_plcc,
        "start_up_rss_mb": start_up,
        "memory": memory,
    }


def print_images(result: dict[str, Any]) -> None:
    """The image case as two rich tables."""
    from rich.console import Console
    from rich.table import Table

    speed = Table(title=f"image models: {result['frames']} frames 1x{SIZE}x{SIZE}, median")
    for column in ("tool", "seconds (whole process)", "frames/s"):
        speed.add_column(column)
    for tool, key in (("model-bisect run", "ours"), ("bare ONNX Runtime loop", "bare")):
        seconds = statistics.median(result[f"{key}_seconds"])
        speed.add_row(tool, f"{seconds:.2f}", f"{result[f'{key}_frames_per_s']:.0f}")
    speed.add_row("ratio (seconds)", f"{result['ratio_ours_over_bare_seconds']:.2f}", "")
    memory = Table(title=f"peak RSS above start-up ({result['start_up_rss_mb']:.0f} MB)")
    for column in ("frames", "stored MB", "peak RSS MB", "above start-up MB"):
        memory.add_column(column)
    for row in result["memory"].values():
        memory.add_row(
            str(row["frames"]),
            f"{row['stored_mb']:.1f}",
            f"{row['max_rss_mb']:.0f}",
            f"{row['above_start_up_mb']:.1f}",
        )
    console = Console()
    console.print(speed)
    console.print(memory)
