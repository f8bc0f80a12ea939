"""The speed comparison of `nox -s bench` runs on its own (`--only speed`) and scales down:
docs/performance.md records its ratios, and the bare floor beside both tools, so it must keep
working and must run the floor on exactly the models the bisect evaluated."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from tests.clirun import run_bench

REPEATS = 2


def test_the_speed_case_times_ours_the_baseline_and_the_bare_floor_in_one_run(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bench.json"
    done = run_bench("--only", "speed", "--repeats", REPEATS, "--row-scale", 0.02, "--out", out)
    assert done.code == 0, done.out + done.err
    result = json.loads(out.read_text(encoding="utf-8"))
    assert set(result) == {"cpus", "repeats", "speed"}  # no other section ran
    for case in result["speed"]:
        runs: dict[str, list[dict[str, Any]]] = {}
        for run in case["runs"]:
            runs.setdefault(run["label"].split()[0], []).append(run)
        assert {tool: len(r) for tool, r in runs.items()} == dict.fromkeys(
            ("ours", "baseline", "bare"), REPEATS
        )
        evaluated = runs["ours"][0]["evaluated"]
        assert len(evaluated) == case["evaluations"]["ours"] > 1
        assert all(run["evaluated"] == evaluated for run in runs["ours"] + runs["bare"])
        assert all(run["evaluations"] == len(evaluated) for run in runs["bare"])
        assert {run["first_bad"] for run in runs["ours"] + runs["baseline"]} == {
            case["first_bad_index"]
        }
        median = {t: statistics.median(r["seconds"] for r in runs[t]) for t in runs}
        floor, on_top = case["floor"]
        assert floor["value"] == median["bare"] / median["baseline"]
        assert on_top["value"] == median["ours"] / median["bare"]
        assert case["ratio"]["value"] == median["ours"] / median["baseline"]
    assert "floor: bare ONNX Runtime loop / baseline" in done.out
