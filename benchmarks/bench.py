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

Against the straightforward implementation in baseline.py (pandas, scipy.stats, one ONNX Runtime
session per visited model), on the same files in the same run, each run a whole process
(imports included), alternating the two tools, median of `--repeats`:

- wall time ours / baseline, `run --no-cache`, 128 models x 500,000 rows with the first bad at
  77, and 512 models x 1,000,000 rows (target <= 0.5); in the same rounds, bare.py runs the
  models ours evaluated and nothing else (imports, read, ONNX Runtime), the floor: bare /
  baseline is the lowest ratio an ONNX Runtime evaluator can reach there;
- peak RSS above each tool's own tiny-cache run at 10,000,000 rows, as a multiple of the float32
  matrix of the six features and the target (rows x 7 x 4 bytes), bisect and an 8-model scan.

Both tools must name the generated first bad index. `--only` picks sections (`tool` is the
list above the baseline; `speed` and `memory` the comparisons; `baseline` both comparisons).
Prints rich tables and writes bench.json. `--models 64 --rows 100000` makes the tool section
quick, `--row-scale 0.1` the comparisons and the image case's frame counts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import images_bench  # benchmarks/, beside this script
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
BASELINE_SCRIPT = Path(__file__).resolve().with_name("baseline.py")
BARE_SCRIPT = Path(__file__).resolve().with_name("bare.py")
SECTIONS = ("tool", "speed", "memory", "images")  # images: images_bench.py
# The comparisons of issue 12: (models, rows, first bad or None for the seeded draw).
SPEED_CASES = ((128, 500_000, 77), (512, 1_000_000, None))
MEMORY_MODELS, MEMORY_ROWS = 8, 10_000_000
SPEED_TARGET = 0.5


@dataclass(frozen=True)
class Run:
    """One child process: its exit code, wall time, evaluations, verdict and peak RSS."""

    label: str
    exit_code: int
    seconds: float
    evaluations: int
    first_bad: int | None
    max_rss_mb: float
    evaluated: tuple[int, ...] = ()  # the indices a model-bisect run evaluated, in its order


@dataclass(frozen=True)
class Timeline:
    features: Path
    models: Path
    first_bad: int
    rows: int


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


def build_timeline(folder: Path, models: int, rows: int, first_bad: int | None = None) -> Timeline:
    """Good models up to ``first_bad`` (a seeded draw when None), random-weighted from there."""
    if first_bad is not None and not 0 < first_bad < models:
        raise SystemExit(f"error: first bad {first_bad} must lie in 1..{models - 1}")
    folder.mkdir(parents=True)
    rng = np.random.default_rng(SEED)
    features = folder / "features.parquet"
    good = write_features(features, rows, rng)
    drawn = int(rng.integers(1, models))  # drawn even when given, so the weights stay seeded
    bad_from = drawn if first_bad is None else first_bad
    model_dir = folder / "models"
    model_dir.mkdir()
    for index in range(models):
        if index < bad_from:
            weights = good + rng.normal(0.0, 0.01, good.shape).astype(np.float32)
        else:  # signs drawn at random: uncorrelated with the target, far below the gate
            weights = rng.normal(0.0, 1.0, good.shape).astype(np.float32)
        write_model(model_dir / f"model_{index:04d}.onnx", weights)
    return Timeline(features, model_dir, bad_from, rows)


class Timelines:
    """Each (models, rows, first bad) timeline built once per benchmark, under ``scratch``."""

    def __init__(self, scratch: Path) -> None:
        self._scratch = scratch
        self._built: dict[tuple[int, int, int | None], Timeline] = {}

    def get(self, models: int, rows: int, first_bad: int | None = None) -> Timeline:
        key = (models, rows, first_bad)
        if key not in self._built:
            name = f"{models}x{rows}" + ("" if first_bad is None else f"-bad{first_bad}")
            print(f"building timeline {name} ...", flush=True)
            self._built[key] = build_timeline(self._scratch / "data" / name, *key)
        return self._built[key]


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label)


# Linux counts a child's ru_maxrss from the memory it was forked (or vforked) from: a child of
# this process, which has held a 10M-row matrix while writing the cache, would report at least
# that peak. So each measured command is started by this small launcher (a fresh interpreter
# without site packages, a few MB), which times it and reads its rusage with wait4.
LAUNCHER = """
import json, os, subprocess, sys, time
out, command = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
child = subprocess.Popen(command)
_, status, usage = os.wait4(child.pid, 0)
seconds = time.perf_counter() - start
code = os.waitstatus_to_exitcode(status)
with open(out, "w") as sink:
    json.dump({"code": code, "seconds": seconds, "max_rss_kib": usage.ru_maxrss}, sink)
"""


def spawn(command: Sequence[str], log: Path) -> tuple[int, float, float]:
    """Exit code, wall seconds and peak RSS (MB) of one command, as its launcher saw them."""
    measured = log.with_suffix(".rusage.json")
    launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER, str(measured), *command]
    with log.open("wb") as sink:
        # Run from the log's folder, not the checkout: `python -m model_bisect` must import
        # the installed package, as a user's would, not the source tree beside it.
        code = subprocess.run(
            launcher, stdout=sink, stderr=subprocess.STDOUT, cwd=log.parent
        ).returncode
    if code != 0 or not measured.is_file():
        raise _failed(launcher, code, log)
    data = json.loads(measured.read_text(encoding="utf-8"))
    measured.unlink()
    return int(data["code"]), float(data["seconds"]), data["max_rss_kib"] / 1024  # KiB on Linux


def _failed(command: Sequence[str], code: int, log: Path) -> SystemExit:
    tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
    return SystemExit(f"error: `{' '.join(command)}` exited {code}:\n{tail}")


def run_child(label: str, args: Sequence[str], workdir: Path) -> Run:
    """Run `model-bisect run ...` and read its JSON report."""
    report = workdir / f"{_slug(label)}.json"
    log = workdir / f"{_slug(label)}.log"
    command = [sys.executable, "-m", "model_bisect", "run", *args, "--quiet", "--json", str(report)]
    code, seconds, rss = spawn(command, log)
    if code not in (0, 2) or not report.is_file():
        raise _failed(command, code, log)
    data = json.loads(report.read_text(encoding="utf-8"))
    return Run(
        label=label,
        exit_code=code,
        seconds=seconds,
        evaluations=int(data["evaluations"]),
        first_bad=data["verdict"].get("first_bad_index"),
        max_rss_mb=rss,
        evaluated=tuple(int(step["index"]) for step in data["steps"]),
    )


def _run_script(label: str, command: Sequence[str], workdir: Path) -> tuple[Any, float, float]:
    """Run a script that ends by printing one JSON line: that line, wall seconds, peak RSS."""
    log = workdir / f"{_slug(label)}.log"
    code, seconds, rss = spawn(command, log)
    lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    if code != 0 or not lines:
        raise _failed(command, code, log)
    return json.loads(lines[-1]), seconds, rss


def run_baseline(label: str, args: Sequence[str], workdir: Path) -> Run:
    """Run baseline.py and read the JSON line it prints."""
    command = [sys.executable, str(BASELINE_SCRIPT), *args]
    data, seconds, rss = _run_script(label, command, workdir)
    return Run(label, 0, seconds, int(data["evaluations"]), data["first_bad"], rss)


def run_bare(label: str, timeline: Timeline, evaluated: Sequence[int], workdir: Path) -> Run:
    """Run bare.py on the models of ``evaluated`` (indices into the timeline's folder)."""
    models = sorted(timeline.models.glob("*.onnx"))
    command = [
        sys.executable,
        str(BARE_SCRIPT),
        *(str(models[i]) for i in evaluated),
        "--features",
        str(timeline.features),
    ]
    data, seconds, rss = _run_script(label, command, workdir)
    return Run(label, 0, seconds, int(data["evaluations"]), None, rss, tuple(evaluated))


def ours(label: str, timeline: Timeline, workdir: Path, *extra: str) -> Run:
    args = [str(timeline.models), "--features", str(timeline.features), *GATE, "--no-cache"]
    return run_child(label, [*args, *extra], workdir)


def theirs(label: str, timeline: Timeline, workdir: Path, *extra: str) -> Run:
    args = [str(timeline.models), "--features", str(timeline.features), *GATE]
    return run_baseline(label, [*args, *extra], workdir)


def check_agreement(expected: int, runs: Sequence[Run]) -> None:
    """Both tools must name the generated first bad model; a benchmark of a wrong answer
    measures nothing."""
    wrong = [f"{run.label}: {run.first_bad}" for run in runs if run.first_bad != expected]
    if wrong:
        raise SystemExit(f"error: expected first bad {expected}, got {'; '.join(wrong)}")


def measure_tool(models: int, rows: int, timelines: Timelines, scratch: Path) -> dict[str, Any]:
    """model-bisect against itself: bisect vs scan, --jobs, the cache, memory."""
    line = timelines.get(models, rows)
    tiny = timelines.get(2, 64)

    def timeline(label: str, *extra: str, found: Timeline = line, cache: str = "") -> Run:
        """A fresh cache folder per run, unless ``cache`` names an earlier run's."""
        cache_dir = scratch / "cache" / (cache or str(len(list(scratch.glob("cache/*")))))
        args = [str(found.models), "--features", str(found.features), *GATE]
        return run_child(label, [*args, "--cache-dir", str(cache_dir), *extra], scratch)

    runs = [
        timeline("start-up (tiny cache)", found=tiny),
        timeline("bisect", cache="cold"),
        timeline("scan", "--scan"),
        timeline("bisect --jobs 2", "--jobs", "2"),
        timeline("bisect (cached rerun)", cache="cold"),
    ]
    startup, cold, scan, jobs2, warm = runs
    matrix_mb = rows * len(FEATURES) * 4 / 2**20
    base = startup.max_rss_mb
    ratios = [
        ("evaluations bisect / scan", cold.evaluations / scan.evaluations, 0.1),
        ("wall time bisect / scan", cold.seconds / scan.seconds, 0.1),
        ("wall time --jobs 2 / --jobs 1", jobs2.seconds / cold.seconds, 0.8),
        ("wall time cached rerun / cold", warm.seconds / cold.seconds, 0.2),
        ("peak RSS above start-up / feature matrix", (cold.max_rss_mb - base) / matrix_mb, 3.0),
        ("the same for --scan", (scan.max_rss_mb - base) / matrix_mb, 3.0),
    ]
    return {
        "models": models,
        "rows": rows,
        "first_bad_index": line.first_bad,
        "feature_matrix_mb": matrix_mb,
        "runs": [asdict(run) for run in runs],
        "found_first_bad": all(run.first_bad == line.first_bad for run in runs[1:]),
        "ratios": [_ratio(name, value, target) for name, value, target in ratios],
    }


def _ratio(name: str, value: float, target: float | None) -> dict[str, Any]:
    met = None if target is None else value <= target
    return {"name": name, "value": value, "target": target, "met": met}


def _spread(runs: Sequence[Run]) -> dict[str, float]:
    seconds = [run.seconds for run in runs]
    return {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds)}


def compare_speed(
    case: tuple[int, int, int | None], repeats: int, timelines: Timelines, scratch: Path
) -> dict[str, Any]:
    """Ours, the baseline and the bare floor on one timeline, in rotating order (each goes
    first in turn, so a machine that slows down or speeds up during the run favours none).
    Ours goes first in the first round: the floor runs the models it evaluated."""
    models, rows, first_bad = case
    line = timelines.get(models, rows, first_bad)
    name = f"{models} x {rows:,}"
    runs: dict[str, list[Run]] = {"ours": [], "baseline": [], "bare": []}

    def bare(label: str, timeline: Timeline, workdir: Path) -> Run:
        return run_bare(label, timeline, runs["ours"][0].evaluated, workdir)

    tools: list[tuple[str, Callable[[str, Timeline, Path], Run]]] = [
        ("ours", ours),
        ("baseline", theirs),
        ("bare", bare),
    ]
    for round_ in range(repeats):
        shift = round_ % len(tools)
        for tool, runner in tools[shift:] + tools[:shift]:
            runs[tool].append(runner(f"{tool} {name} #{round_ + 1}", line, scratch))
    check_agreement(line.first_bad, runs["ours"] + runs["baseline"])
    seconds = {tool: _spread(runs[tool]) for tool in runs}
    mine, other, floor = (seconds[t]["median"] for t in ("ours", "baseline", "bare"))
    return {
        "name": name,
        "models": models,
        "rows": rows,
        "first_bad_index": line.first_bad,
        "evaluations": {tool: runs[tool][0].evaluations for tool in runs},
        "seconds": seconds,
        "runs": [asdict(run) for tool in runs for run in runs[tool]],
        "ratio": _ratio(f"wall time ours / baseline, {name}", mine / other, SPEED_TARGET),
        "floor": [
            _ratio(f"floor: bare ONNX Runtime loop / baseline, {name}", floor / other, None),
            _ratio(f"ours / bare ONNX Runtime loop, {name}", mine / floor, None),
        ],
    }


def warm_up(timelines: Timelines, scratch: Path) -> None:
    """One untimed run of each tool, so none pays for loading its libraries from disk."""
    tiny = timelines.get(2, 64)
    ours("ours (warm-up)", tiny, scratch)
    theirs("baseline (warm-up)", tiny, scratch)
    run_bare("bare (warm-up)", tiny, (0, 1), scratch)


def compare_memory(rows: int, timelines: Timelines, scratch: Path) -> dict[str, Any]:
    """Peak RSS above each tool's own start-up (a run on a tiny cache, which also warms the
    page cache for the interpreter and its libraries) per float32 byte of the data."""
    line = timelines.get(MEMORY_MODELS, rows)
    tiny = timelines.get(2, 64)
    tiny_ours = ours("ours (tiny cache)", tiny, scratch)
    tiny_theirs = theirs("baseline (tiny cache)", tiny, scratch)
    runs = {
        "ours bisect": ours("ours bisect (memory)", line, scratch),
        "baseline bisect": theirs("baseline bisect (memory)", line, scratch),
        "ours scan": ours("ours scan (memory)", line, scratch, "--scan"),
        "baseline scan": theirs("baseline scan (memory)", line, scratch, "--scan"),
    }
    check_agreement(line.first_bad, list(runs.values()))
    matrix_mb = rows * (len(FEATURES) + 1) * 4 / 2**20

    def multiple(key: str) -> float:
        floor = tiny_ours if key.startswith("ours") else tiny_theirs
        return (runs[key].max_rss_mb - floor.max_rss_mb) / matrix_mb

    multiples = {key: multiple(key) for key in runs}
    return {
        "models": MEMORY_MODELS,
        "rows": rows,
        "first_bad_index": line.first_bad,
        "matrix_mb": matrix_mb,
        "runs": [asdict(run) for run in (tiny_ours, tiny_theirs, *runs.values())],
        "multiples": multiples,
        "ratios": [
            _ratio(f"peak RSS multiple ours / baseline, {mode}", mine / theirs_, None)
            for mode, mine, theirs_ in (
                ("bisect", multiples["ours bisect"], multiples["baseline bisect"]),
                ("8-model scan", multiples["ours scan"], multiples["baseline scan"]),
            )
        ],
    }


def _runs_table(title: str, runs: Sequence[dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title=title)
    for column in ("run", "exit", "evaluations", "first bad", "seconds", "peak RSS (MB)"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for run in runs:
        table.add_row(
            run["label"],
            str(run["exit_code"]),
            str(run["evaluations"]),
            str(run["first_bad"]),
            f"{run['seconds']:.2f}",
            f"{run['max_rss_mb']:.0f}",
        )
    return table


def _ratios_table(title: str, ratios: Sequence[dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title=title)
    for column in ("ratio", "measured", "target", ""):
        table.add_column(column, justify="left" if column == "ratio" else "right")
    for ratio in ratios:
        if ratio["met"] is None:
            target, verdict = "-", ""
        else:
            target = f"<= {ratio['target']}"
            verdict = "[green]met[/green]" if ratio["met"] else "[bold red]missed[/bold red]"
        table.add_row(ratio["name"], f"{ratio['value']:.3f}", target, verdict)
    return table


def print_tables(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 110))  # run labels unwrapped when piped
    tool = result.get("tool")
    if tool:
        title = f"model-bisect run: {tool['models']} models x {tool['rows']:,} rows"
        console.print(_runs_table(title, tool["runs"]))
        matrix = f"ratios (feature matrix {tool['feature_matrix_mb']:.1f} MB)"
        console.print(_ratios_table(matrix, tool["ratios"]))
    speed = result.get("speed")
    if speed:
        table = Table(title=f"ours vs baseline.py, wall time (median of {result['repeats']})")
        columns = ("timeline", "first bad", "evaluations", "ours (s)", "baseline (s)", "bare (s)")
        for column in columns:
            table.add_column(column, justify="left" if column == "timeline" else "right")
        for case in speed:
            secs = case["seconds"]
            table.add_row(
                case["name"],
                str(case["first_bad_index"]),
                f"{case['evaluations']['ours']} / {case['evaluations']['baseline']}",
                *(
                    f"{secs[t]['median']:.2f} ({secs[t]['min']:.2f}-{secs[t]['max']:.2f})"
                    for t in ("ours", "baseline", "bare")
                ),
            )
        console.print(table)
    memory = result.get("memory")
    if memory:
        title = (
            f"peak memory at {memory['rows']:,} rows"
            f" (float32 matrix, rows x 7 x 4 B = {memory['matrix_mb']:.0f} MB)"
        )
        console.print(_runs_table(title, memory["runs"]))
        multiples = Table(title="peak RSS above start-up / matrix")
        for column in ("run", "multiple"):
            multiples.add_column(column, justify="left" if column == "run" else "right")
        for key, value in memory["multiples"].items():
            multiples.add_row(key, f"{value:.2f}")
        console.print(multiples)
    baseline_ratios = [r for case in speed or [] for r in (case["ratio"], *case["floor"])]
    baseline_ratios += (memory or {}).get("ratios", [])
    if baseline_ratios:
        console.print(_ratios_table("ours / baseline.py", baseline_ratios))


def _sections(value: str) -> set[str]:
    chosen: set[str] = set()
    for part in value.split(","):
        part = part.strip()
        if part == "baseline":
            chosen |= {"speed", "memory"}
        elif part in SECTIONS:
            chosen.add(part)
        else:
            raise argparse.ArgumentTypeError(f"unknown section {part!r}")
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", type=int, default=512, help="timeline length (default 512)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="feature rows (default 1M)")
    parser.add_argument(
        "--only",
        type=_sections,
        default=set(SECTIONS),
        metavar="SECTIONS",
        help="comma-separated: tool, speed, memory, images, baseline (= speed,memory); default all",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="rounds of the speed comparison (default 3)"
    )
    parser.add_argument(
        "--row-scale",
        type=float,
        default=1.0,
        help="multiply the comparisons' rows and the image frames (e.g. 0.1 for a quick run)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench.json"), help="results JSON")
    args = parser.parse_args(argv)
    if args.models < 2 or args.rows < 16:
        parser.error("--models must be at least 2 and --rows at least 16")
    if args.repeats < 1 or not args.row_scale > 0:
        parser.error("--repeats must be at least 1 and --row-scale positive")

    def scaled(rows: int) -> int:
        return max(16, round(rows * float(args.row_scale)))

    result: dict[str, Any] = {"cpus": os.cpu_count(), "repeats": args.repeats}
    with tempfile.TemporaryDirectory(prefix="model-bisect-bench-") as scratch:
        timelines = Timelines(Path(scratch))
        if "speed" in args.only:
            warm_up(timelines, Path(scratch))
            result["speed"] = [
                compare_speed((m, scaled(r), bad), args.repeats, timelines, Path(scratch))
                for m, r, bad in SPEED_CASES
            ]
        if "memory" in args.only:
            result["memory"] = compare_memory(scaled(MEMORY_ROWS), timelines, Path(scratch))
        if "tool" in args.only:
            result["tool"] = measure_tool(args.models, args.rows, timelines, Path(scratch))
        if "images" in args.only:
            result["images"] = images_bench.measure_images(
                Path(scratch), args.repeats, float(args.row_scale)
            )
    print_tables(result)
    if "images" in result:
        images_bench.print_images(result["images"])
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    tool: dict[str, Any] | None = result.get("tool")
    return 0 if tool is None or tool["found_first_bad"] is True else 1


if __name__ == "__main__":
    sys.exit(main())
