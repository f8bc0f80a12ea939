"""The image case of `nox -s bench` runs on its own (`--only images`) and scales down: the
numbers docs/performance.md records come from this script, so it must keep working."""

from __future__ import annotations

import json
from pathlib import Path

from tests.clirun import run_bench


def test_the_image_case_runs_alone_scaled_down_and_reports_both_tools(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = run_bench(
        "--only", "images", "--repeats", "1", "--row-scale", "0.02", "--out", out, timeout=300
    )
    assert done.code == 0, done.out + done.err
    result = json.loads(out.read_text(encoding="utf-8"))
    assert set(result) == {"cpus", "repeats", "images"}  # no other section ran
    images = result["images"]
    assert images["frames"] == 160
    assert -1 < images["plcc"] <= 1  # and the bench checked that the bare loop agrees
    assert images["ours_frames_per_s"] > 0
    assert images["bare_frames_per_s"] > 0
    assert [row["frames"] for row in images["memory"].values()] == [64, 100, 400]
    assert all(row["max_rss_mb"] > 0 for row in images["memory"].values())
    assert "image models: 160 frames" in done.out
