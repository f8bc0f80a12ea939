"""Benchmark `model-bisect run` on a large generated timeline (run by `nox -s bench`).

In a temporary folder: a feature cache of ROWS rows (the six canonical float32 features and a
`mos` target) and a timeline of MODELS linear ONNX models, good up to a first bad index drawn
with a fixed seed and random-weighted from there on. Every measurement is one `model-bisect run`
subprocess with its own fresh `--cache-dir` unless it is the cached rerun:

- bisect vs `--scan`: evaluations and wall time (target: bisect <= 0.1 of scan);
- `--jobs 2` vs `--jobs 1` (target <= 0.8 on 2 cores);
- a rerun on a warm cache vs a cold run (target <= 0.2);
- peak memory (ru_maxrss of the child) above the runtime's own baseline, measured as a run on a
  tiny cache, against the float32 feature matrix (target: within 3x).

Prints a rich table and writes bench.json. `--models 64 --rows 100000` makes a quick run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pyarrow as pa
import pyarrow.parquet as pq
from onnx import TensorProto, helper, numpy_helper

FEATURES = ("adm2", "vif_scale0", "vif_scale1", "vif_scale2", "vif_scale3", "motion2")
GATE = ("--min-plcc", "0.85")
SEED = 20240917
# Opset 17 with IR version 8: what the committed fixture's models use.
OPSET, IR_VERSION = 17, 8


@dataclass(frozen=True)
class Run:
    """One `model-bisect run` child: its exit code, wall time, evaluations and peak RSS."""

    label: str
    exit_code: int
    seconds: float
    evaluations: int
    first_bad: int | None
    max_rss_mb: float


def write_features(path: Path, rows: int, rng: np.random.Generator) -> np.ndarray:
    """Features in [0, 1) and a target that the returned weights explain up to small noise."""
    matrix = rng.random((rows, len(FEATURES)), dtype=np.float32)
    weights = np.linspace(1.0, 0.4, len(FEATURES)).astype(np.float32)
    noise = rng.normal(0.0, 0.05, rows).astype(np.float32)
    target = (matrix @ weights + noise).astype(np.float32)
    columns = {name: matrix[:, i] for i, name in enumerate(FEATURES)}
    pq.write_table(pa.table({**columns, "mos": target}), path, compression="zstd")
    return weights


def write_model(path: Path, weights: np.ndarray) -> None:
    """`score = input @ W + B`: input `input` float [N, 6], output `score` float [N]."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "W"], ["mm"]),
            helper.make_node("Add", ["mm", "B"], ["score"]),
        ],
        "linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", len(FEATURES)])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])],
        [
            numpy_helper.from_array(weights.astype(np.float32), "W"),
            numpy_helper.from_array(np.asarray(0.0, dtype=np.float32), "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.save(model, path)


def build_timeline(folder: Path, models: int, rows: int) -> tuple[Path, Path, int]:
    """Returns the features file, the models folder and the first bad index."""
    rng = np.random.default_rng(SEED)
    features = folder / "features.parquet"
    good = write_features(features, rows, rng)
    first_bad = int(rng.integers(1, models))
    model_dir = folder / "models"
    model_dir.mkdir()
    for index in range(models):
        if index < first_bad:
            weights = good + rng.normal(0.0, 0.01, good.shape).astype(np.float32)
        else:  # signs drawn at random: uncorrelated with the target, far below the gate
            weights = rng.normal(0.0, 1.0, good.shape).astype(np.float32)
        write_model(model_dir / f"model_{index:04d}.onnx", weights)
    return features, model_dir, first_bad


def run_child(label: str, args: Sequence[str], workdir: Path) -> Run:
    """Run `model-bisect run ...` and read its own rusage with wait4 (not all children's)."""
    slug = "".join(c if c.isalnum() else "-" for c in label)
    report = workdir / f"{slug}.json"
    log = workdir / f"{slug}.log"
    command = [sys.executable, "-m", "model_bisect", "run", *args, "--quiet", "--json", str(report)]
    with log.open("wb") as sink:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 2) or not report.is_file():
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise SystemExit(f"error: `{' '.join(command)}` exited {child.returncode}:\n{tail}")
    data = json.loads(report.read_text(encoding="utf-8"))
    return Run(
        label=label,
        exit_code=child.returncode,
        seconds=seconds,
        evaluations=int(data["evaluations"]),
        first_bad=data["verdict"].get("first_bad_index"),
        max_rss_mb=usage.ru_maxrss / 1024,  # Linux reports KiB
    )


def measure(models: int, rows: int, scratch: Path) -> dict[str, Any]:
    data = scratch / "data"
    data.mkdir()
    features, model_dir, first_bad = build_timeline(data, models, rows)
    tiny = scratch / "tiny"
    tiny.mkdir()
    tiny_features, tiny_models, _ = build_timeline(tiny, 2, 64)

    def timeline(label: str, *extra: str, models: Path = model_dir, cache: str = "") -> Run:
        """A fresh cache folder per run, unless ``cache`` names an earlier run's."""
        cache_dir = scratch / "cache" / (cache or str(len(list(scratch.glob("cache/*")))))
        found = features if models == model_dir else tiny_features
        args = [str(models), "--features", str(found), *GATE, "--cache-dir", str(cache_dir)]
        return run_child(label, [*args, *extra], scratch)

    runs = [
        timeline("baseline (tiny cache)", models=tiny_models),
        timeline("bisect", cache="cold"),
        timeline("scan", "--scan"),
        timeline("bisect --jobs 2", "--jobs", "2"),
        timeline("bisect (cached rerun)", cache="cold"),
    ]
    baseline, cold, scan, jobs2, warm = runs
    matrix_mb = rows * len(FEATURES) * 4 / 2**20
    base = baseline.max_rss_mb
    ratios = [
        ("evaluations bisect / scan", cold.evaluations / scan.evaluations, 0.1),
        ("wall time bisect / scan", cold.seconds / scan.seconds, 0.1),
        ("wall time --jobs 2 / --jobs 1", jobs2.seconds / cold.seconds, 0.8),
        ("wall time cached rerun / cold", warm.seconds / cold.seconds, 0.2),
        ("peak RSS above baseline / feature matrix", (cold.max_rss_mb - base) / matrix_mb, 3.0),
        ("the same for --scan", (scan.max_rss_mb - base) / matrix_mb, 3.0),
    ]
    return {
        "models": models,
        "rows": rows,
        "first_bad_index": first_bad,
        "feature_matrix_mb": matrix_mb,
        "cpus": os.cpu_count(),
        "runs": [asdict(run) for run in runs],
        "found_first_bad": all(run.first_bad == first_bad for run in runs[1:]),
        "ratios": [
            {"name": name, "value": value, "target": target, "met": value <= target}
            for name, value, target in ratios
        ],
    }


def print_tables(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    runs = Table(title=f"model-bisect run: {result['models']} models x {result['rows']:,} rows")
    for column in ("run", "exit", "evaluations", "first bad", "seconds", "peak RSS (MB)"):
        runs.add_column(column, justify="left" if column == "run" else "right")
    for run in result["runs"]:
        runs.add_row(
            run["label"],
            str(run["exit_code"]),
            str(run["evaluations"]),
            str(run["first_bad"]),
            f"{run['seconds']:.2f}",
            f"{run['max_rss_mb']:.0f}",
        )
    console.print(runs)
    ratios = Table(title=f"ratios (feature matrix {result['feature_matrix_mb']:.1f} MB)")
    for column in ("ratio", "measured", "target", ""):
        ratios.add_column(column, justify="left" if column == "ratio" else "right")
    for ratio in result["ratios"]:
        verdict = "[green]met[/green]" if ratio["met"] else "[bold red]missed[/bold red]"
        ratios.add_row(ratio["name"], f"{ratio['value']:.3f}", f"<= {ratio['target']}", verdict)
    console.print(ratios)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", type=int, default=512, help="timeline length (default 512)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="feature rows (default 1M)")
    parser.add_argument("--out", type=Path, default=Path("bench.json"), help="results JSON")
    args = parser.parse_args(argv)
    if args.models < 2 or args.rows < 16:
        parser.error("--models must be at least 2 and --rows at least 16")
    with tempfile.TemporaryDirectory(prefix="model-bisect-bench-") as scratch:
        result = measure(args.models, args.rows, Path(scratch))
    print_tables(result)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0 if result["found_first_bad"] else 1


if __name__ == "__main__":
    sys.exit(main())
