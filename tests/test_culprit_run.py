"""`model-bisect run` explains a localised regression: real models, real parquet, ORT."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model_bisect.exitcodes import ExitCode
from model_bisect.report import read_report
from tests.clirun import call_main
from tests.culpritkit import ENCODERS, GOOD, ROWS, features, predict, timeline


def _run(tmp_path: Path, *extra: str | Path) -> dict[str, Any]:
    out = tmp_path / "r.json"
    ran = call_main(
        "model_bisect",
        *("run", tmp_path / "models", "--features", tmp_path / "f.parquet"),
        *("--min-plcc", "0.97", "--json", out, "--quiet", *extra),
    )
    assert ran.code == ExitCode.OK, ran.err
    data: dict[str, Any] = json.loads(out.read_text())
    return data


@pytest.fixture
def case(tmp_path: Path) -> tuple[dict[str, Any], list[float], list[float]]:
    columns = features(tmp_path / "f.parquet")
    good, bad = timeline(tmp_path / "models", first_bad=3)
    return columns, good, bad


def test_the_scaled_weight_is_the_only_graph_change_named(
    tmp_path: Path, case: tuple[dict[str, Any], list[float], list[float]]
) -> None:
    body = _run(tmp_path, "--no-cache")
    assert body["verdict"]["kind"] == "regression"
    culprit = body["culprit"]
    assert (culprit["last_good_index"], culprit["first_bad_index"]) == (2, 3)
    assert [c["name"] for c in culprit["graph"]] == ["W"]
    assert culprit["graph"][0]["max_abs"] == pytest.approx(abs(GOOD[5] * 5), rel=1e-6)
    assert culprit["predictions_from"] == "search"


def test_agreement_and_worst_rows_match_numpy_with_ids(
    tmp_path: Path, case: tuple[dict[str, Any], list[float], list[float]]
) -> None:
    columns, good, bad = case
    culprit = _run(tmp_path, "--no-cache", "--row-id", "clip")["culprit"]
    before, after = predict(columns, good), predict(columns, bad)
    assert culprit["agreement"]["plcc"] == pytest.approx(np.corrcoef(before, after)[0, 1], abs=1e-5)
    assert culprit["agreement"]["max_abs_diff"] == pytest.approx(
        np.abs(after - before).max(), rel=1e-4
    )
    growth = np.abs(after - columns["mos"]) - np.abs(before - columns["mos"])
    expected = np.argsort(-growth, kind="stable")[:10]
    assert [r["row"] for r in culprit["rows"]] == expected.tolist()
    assert [r["id"] for r in culprit["rows"]] == [f"clip-{i:04d}" for i in expected]
    # the id column is no slice; the encoder column is, one entry per value
    assert sorted(s["value"] for s in culprit["slices"]) == sorted(ENCODERS)
    assert {s["rows"] for s in culprit["slices"]} == {ROWS // 3}
    assert sum(d["rows"] for d in culprit["deciles"]) == ROWS


def test_rows_are_numbered_in_the_file_when_some_were_dropped(tmp_path: Path) -> None:
    columns = features(tmp_path / "f.parquet", nan_rows=(0, 1, 2))
    good, bad = timeline(tmp_path / "models", first_bad=3)
    culprit = _run(tmp_path, "--no-cache", "--row-id", "clip")["culprit"]
    before, after = predict(columns, good), predict(columns, bad)
    growth = np.abs(after - columns["mos"]) - np.abs(before - columns["mos"])
    growth[:3] = -np.inf
    expected = np.argsort(-growth, kind="stable")[:10]
    assert [r["row"] for r in culprit["rows"]] == expected.tolist()
    assert [r["id"] for r in culprit["rows"]] == [f"clip-{i:04d}" for i in expected]


def test_a_cached_rerun_runs_the_boundary_models_again_for_the_same_section(
    tmp_path: Path, case: tuple[dict[str, Any], list[float], list[float]]
) -> None:
    cache = tmp_path / "cache"
    first = _run(tmp_path, "--cache-dir", cache)
    second = _run(tmp_path, "--cache-dir", cache)
    assert second["evaluations"] == 0
    assert second["culprit"]["predictions_from"] == "rerun"
    for key in ("graph", "agreement", "deciles", "slices", "rows"):
        assert second["culprit"][key] == first["culprit"][key]


def test_no_regression_has_no_culprit_and_the_report_round_trips(tmp_path: Path) -> None:
    features(tmp_path / "f.parquet")
    timeline(tmp_path / "models", first_bad=99)
    body = _run(tmp_path, "--no-cache")
    assert body["verdict"]["kind"] == "no_regression"
    assert body["culprit"] is None


def test_a_report_with_a_culprit_reads_back_equal(
    tmp_path: Path, case: tuple[dict[str, Any], list[float], list[float]]
) -> None:
    body = _run(tmp_path, "--no-cache")
    report = read_report(tmp_path / "r.json")
    assert report.culprit is not None
    assert report.culprit.to_json() == body["culprit"]


def test_an_unknown_row_id_column_is_exit_3_naming_it(
    tmp_path: Path, case: tuple[dict[str, Any], list[float], list[float]]
) -> None:
    ran = call_main(
        "model_bisect",
        *("run", tmp_path / "models", "--features", tmp_path / "f.parquet"),
        *("--min-plcc", "0.97", "--quiet", "--no-cache", "--row-id", "nope"),
    )
    assert ran.code == ExitCode.INPUT
    assert ran.err.count("\n") == 1
    assert "no column 'nope' for --row-id" in ran.err
    assert "f.parquet" in ran.err


def test_nulls_in_a_string_column_are_their_own_slice(tmp_path: Path) -> None:
    columns = features(tmp_path / "f.parquet")
    table = pq.read_table(tmp_path / "f.parquet")
    encoder = [None if i % 10 == 0 else v for i, v in enumerate(columns["encoder"])]
    index = table.schema.get_field_index("encoder")
    pq.write_table(table.set_column(index, "encoder", pa.array(encoder)), tmp_path / "f.parquet")
    timeline(tmp_path / "models", first_bad=3)
    slices = _run(tmp_path, "--no-cache")["culprit"]["slices"]
    rows = {s["value"]: s["rows"] for s in slices}
    expected = {v: sum(1 for e in encoder if e == v) for v in ENCODERS}
    assert rows == {**expected, "(null)": ROWS // 10}


def test_a_report_written_before_the_culprit_existed_still_reads(
    tmp_path: Path, case: tuple[dict[str, Any], list[float], list[float]]
) -> None:
    body = _run(tmp_path, "--no-cache")
    del body["culprit"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(body), encoding="utf-8")
    report = read_report(old)
    assert report.culprit is None
    assert report.verdict.first_bad_index == 3
