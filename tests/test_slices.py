"""`--slice-by`, `--gate-slices`: every metric per value of a string column, gated per slice.

Real parquet with a string `encoder` column, real linear ONNX models run by ONNX Runtime. The
regression is confined to libx265's rows: a feature that is zero on every other row, which
the bad models weigh and the good ones do not.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from model_bisect.catalogue import GateKind
from model_bisect.evaluation.features import CANONICAL_FEATURES
from model_bisect.exitcodes import ExitCode
from model_bisect.report import GateSpec, Metrics, SliceMetrics
from model_bisect.slices import slice_metrics, slicing, worst_slice
from tests.clirun import call_main
from tests.modelkit import default_weights, linear_model, sidecar_json

ENCODERS = ("libx264", "libx265", "libvpx-vp9")
FEATURES = (*CANONICAL_FEATURES, "level", "grain")
ROWS = 900
GRAIN = 3.0  # how much the bad models weigh the libx265-only feature


def _data(path: Path, *, small: int = 0, grain_on: str = "libx265") -> dict[str, Any]:
    """900 rows cycling through three encoders (plus ``small`` rows of ``libaom``), each
    encoder a level of quality apart, and ``grain`` non-zero only on ``grain_on``'s rows."""
    rng = np.random.default_rng(7)
    encoders = [ENCODERS[i % 3] for i in range(ROWS)] + ["libaom"] * small
    n = len(encoders)
    x = rng.uniform(0.0, 1.0, size=(n, len(CANONICAL_FEATURES)))
    level = np.asarray([3.0 * (*ENCODERS, "libaom").index(e) for e in encoders])
    mos = x @ np.asarray(default_weights(len(CANONICAL_FEATURES))) + level
    mos += rng.normal(0.0, 0.05, n)
    on = np.asarray([e == grain_on for e in encoders])
    grain = np.where(on, rng.uniform(0.0, 1.0, n), 0.0)
    columns: dict[str, Any] = {
        name: x[:, i].astype(np.float32) for i, name in enumerate(CANONICAL_FEATURES)
    }
    columns["level"] = level.astype(np.float32)
    columns["grain"] = grain.astype(np.float32)
    columns["mos"] = mos
    columns["encoder"] = encoders
    columns["clip"] = [f"clip-{i // 3:04d}" for i in range(n)]  # three rows per clip
    pq.write_table(pa.table(columns), path)
    return columns


def _weights(bad: bool) -> list[float]:
    return [*default_weights(len(CANONICAL_FEATURES)), 1.0, -GRAIN if bad else 0.0]


def _timeline(folder: Path, n: int = 4, first_bad: int = 2) -> None:
    for i in range(n):
        path = linear_model(folder / f"model_{i:02d}.onnx", _weights(i >= first_bad))
        sidecar_json(path, list(FEATURES))


def _predict(columns: dict[str, Any], bad: bool) -> np.ndarray:
    x = np.column_stack([np.asarray(columns[f], dtype=np.float32) for f in FEATURES])
    return x.astype(np.float64) @ np.asarray(_weights(bad))


def _run(
    tmp_path: Path, *extra: str | Path, code: ExitCode = ExitCode.OK, cache: Path | None = None
) -> dict[str, Any]:
    """The report of a run on the project's timeline; without ``cache``, no evaluation cache."""
    out = tmp_path / "r.json"
    caching = ("--cache-dir", cache) if cache is not None else ("--no-cache",)
    ran = call_main(
        "model_bisect",
        *("run", tmp_path / "models", "--features", tmp_path / "f.parquet"),
        *("--min-plcc", "0.9", "--json", out, "--quiet", *caching, *extra),
    )
    assert ran.code == code, ran.err
    data: dict[str, Any] = json.loads(out.read_text())
    return data


@pytest.fixture
def project(tmp_path: Path) -> dict[str, Any]:
    columns = _data(tmp_path / "f.parquet")
    _timeline(tmp_path / "models")
    return columns


def _by_value(step: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["value"]: s for s in step["slices"]}


def test_a_regression_on_one_encoder_is_its_worst_slice_and_the_others_are_unchanged(
    tmp_path: Path, project: dict[str, Any]
) -> None:
    report = _run(tmp_path, "--slice-by", "encoder", "--scan")
    good, bad = report["steps"][0], report["steps"][3]
    assert [s["status"] for s in report["steps"]] == ["good"] * 4  # fine overall
    assert bad["metrics"]["plcc"] > 0.9
    assert bad["worst_slice"] == {"column": "encoder", "value": "libx265"}
    before, after = _by_value(good), _by_value(bad)
    assert after["libx265"]["metrics"]["plcc"] < 0.6 < before["libx265"]["metrics"]["plcc"]
    for value in ("libx264", "libvpx-vp9"):
        assert after[value]["metrics"] == before[value]["metrics"]
    assert {s["rows"] for s in bad["slices"]} == {300}
    assert report["settings"]["slice_by"] == ["encoder"]


def test_with_gate_slices_the_model_failing_one_encoder_is_bad_and_its_reason_names_it(
    tmp_path: Path, project: dict[str, Any]
) -> None:
    report = _run(tmp_path, "--slice-by", "encoder", "--gate-slices")
    assert report["verdict"]["kind"] == "regression"
    assert report["verdict"]["first_bad_index"] == 2
    step = next(s for s in report["steps"] if s["index"] == 2)
    assert step["status"] == "bad"
    assert step["metrics"]["plcc"] > 0.9  # the overall gate still holds
    plcc = _by_value(step)["libx265"]["metrics"]["plcc"]
    assert f"plcc {plcc:.4f} < 0.9 on encoder = libx265 (300 rows)" in step["reason"]
    assert all(s["gated"] for s in step["slices"])


def test_slices_below_min_slice_rows_are_reported_but_never_gated(tmp_path: Path) -> None:
    _data(tmp_path / "f.parquet", small=12, grain_on="libaom")
    _timeline(tmp_path / "models")
    flags = ("--slice-by", "encoder", "--gate-slices", "--scan")
    report = _run(tmp_path, *flags)
    step = report["steps"][3]
    assert step["status"] == "good"
    tiny = _by_value(step)["libaom"]
    assert tiny["rows"] == 12
    assert tiny["gated"] is False
    assert tiny["metrics"]["plcc"] < 0.9  # it fails the gate, and is not judged on it
    assert step["worst_slice"]["value"] != "libaom"  # too small to be the one to look at
    strict = _run(tmp_path, *flags, "--min-slice-rows", "10")
    assert strict["steps"][3]["status"] == "bad"
    assert "on encoder = libaom (12 rows)" in strict["steps"][3]["reason"]


def _expected(p: np.ndarray, t: np.ndarray) -> dict[str, float]:
    return {
        "plcc": float(np.corrcoef(p, t)[0, 1]),
        "srocc": float(stats.spearmanr(p, t).statistic),
        "krocc": float(stats.kendalltau(p, t).statistic),
        "rmse": float(np.sqrt(np.mean((p - t) ** 2))),
    }


@pytest.mark.parametrize("mapping", ["none", "linear"])
def test_per_slice_metrics_equal_numpy_and_scipy_on_the_slice_rows(
    tmp_path: Path, project: dict[str, Any], mapping: str
) -> None:
    report = _run(tmp_path, "--slice-by", "encoder", "--scan", "--mapping", mapping)
    raw = _predict(project, bad=True)
    target = np.asarray(project["mos"])
    mapped = raw
    if mapping == "linear":  # fitted once on every row, then read per slice
        slope, intercept = np.polyfit(raw, target, 1)
        mapped = slope * raw + intercept
    encoders = np.asarray(project["encoder"])
    for piece in report["steps"][3]["slices"]:
        rows = encoders == piece["value"]
        want = _expected(mapped[rows], target[rows])
        ranks = _expected(raw[rows], target[rows])
        want["srocc"], want["krocc"] = ranks["srocc"], ranks["krocc"]
        assert piece["metrics"]["n"] == piece["rows"] == int(rows.sum())
        for name, value in want.items():
            assert piece["metrics"][name] == pytest.approx(value, abs=1e-5), (name, piece["value"])


def test_a_null_value_is_a_slice_of_its_own() -> None:
    codes = np.asarray([0, 1, -1, 0, 1, -1, 0, 1, -1, 0])
    target = np.arange(10, dtype=np.float64)
    found = slice_metrics(slicing("encoder", codes, ["a", "b"], target), target * 2.0)
    assert [(s.value, s.rows) for s in found] == [("a", 4), ("b", 3), (None, 3)]
    assert all(s.metrics.value("plcc") == pytest.approx(1.0) for s in found)


def test_the_worst_slice_fails_a_gate_before_it_ranks_by_the_first_gates_metric() -> None:
    def piece(value: str, plcc: float, rmse: float, rows: int = 100) -> SliceMetrics:
        metrics = Metrics({"plcc": plcc, "srocc": plcc, "krocc": plcc, "rmse": rmse}, n=rows)
        return SliceMetrics("encoder", value, rows, metrics)

    gates = (GateSpec("plcc", GateKind.MIN, 0.5), GateSpec("rmse", GateKind.MAX, 1.0))
    slices = [piece("a", 0.6, 2.0), piece("b", 0.55, 0.1), piece("c", math.nan, 0.1, rows=5)]
    assert worst_slice(slices, gates, 30).value == "a"  # fails rmse, though its plcc is higher
    assert worst_slice(slices[1:2], gates, 30).value == "b"
    assert worst_slice(slices, gates[:1], 30).value == "b"  # c is too small to be chosen
    assert worst_slice(slices, gates[:1], 1).value == "c"  # undefined counts as worst


@pytest.mark.parametrize(
    ("column", "problem"),
    [
        ("codec", "no --slice-by column 'codec'"),
        ("level", "--slice-by column 'level' is not a string column"),
        ("clip", "--slice-by column 'clip' has more than 256 values"),
    ],
)
def test_a_column_that_cannot_slice_is_exit_3_on_one_line_naming_file_and_fix(
    tmp_path: Path, project: dict[str, Any], column: str, problem: str
) -> None:
    ran = call_main(
        "model_bisect",
        *("run", tmp_path / "models", "--features", tmp_path / "f.parquet"),
        *("--min-plcc", "0.9", "--slice-by", column, "--no-cache", "--quiet"),
    )
    assert ran.code == ExitCode.INPUT
    (line,) = ran.err.strip().splitlines()
    assert problem in line
    assert str(tmp_path / "f.parquet") in line
    assert "Traceback" not in ran.err


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (("--min-plcc", "0.9", "--gate-slices"), "--gate-slices applies to slices, and no"),
        (("--min-plcc", "0.9", "--min-slice-rows", "5"), "--min-slice-rows applies to slices"),
        (
            ("--max-drop", "plcc=0.1", "--slice-by", "encoder", "--gate-slices"),
            "--gate-slices applies the --min-/--max- gates to each slice, and none was given",
        ),
    ],
)
def test_slice_flags_that_would_do_nothing_are_refused(
    tmp_path: Path, project: dict[str, Any], flags: tuple[str, ...], problem: str
) -> None:
    ran = call_main(
        "model_bisect",
        *("run", tmp_path / "models", "--features", tmp_path / "f.parquet", *flags),
        "--no-cache",
    )
    assert ran.code == ExitCode.INPUT
    assert problem in ran.err


def test_with_pool_by_slices_count_rated_items(tmp_path: Path, project: dict[str, Any]) -> None:
    table = pq.read_table(tmp_path / "f.parquet")
    frames = table.take(pa.array(np.repeat(np.arange(ROWS), 2)))  # two frames per clip
    frames = frames.set_column(
        frames.schema.get_field_index("clip"),
        "clip",
        pa.array([f"clip-{i:04d}" for i in np.repeat(np.arange(ROWS), 2)]),
    )
    frames = frames.append_column("half", pa.array(["first", "second"] * ROWS))
    pq.write_table(frames, tmp_path / "f.parquet")
    report = _run(tmp_path, "--pool-by", "clip", "--slice-by", "encoder", "--scan")
    step = report["steps"][3]
    assert {s["rows"] for s in step["slices"]} == {300}  # 900 clips, 300 per encoder
    assert step["worst_slice"]["value"] == "libx265"
    ran = call_main(
        "model_bisect",
        *("run", tmp_path / "models", "--features", tmp_path / "f.parquet"),
        *("--min-plcc", "0.9", "--pool-by", "clip", "--slice-by", "half", "--no-cache"),
    )
    assert ran.code == ExitCode.INPUT
    assert "--slice-by 'half' changes inside the --pool-by 'clip' item 'clip-0000'" in ran.err


def test_the_cache_answers_only_the_slicing_it_was_computed_for(
    tmp_path: Path, project: dict[str, Any]
) -> None:
    def run(*extra: str) -> dict[str, Any]:
        return _run(tmp_path, "--scan", *extra, cache=tmp_path / "cache")

    plain = run()
    assert plain["evaluations"] == 2
    sliced = run("--slice-by", "encoder")
    assert sliced["evaluations"] == 2  # no entry without slices answers a sliced run
    assert all(s["slices"] for s in sliced["steps"])
    again = run("--slice-by", "encoder")
    assert again["evaluations"] == 0
    assert [s["slices"] for s in again["steps"]] == [s["slices"] for s in sliced["steps"]]
    assert run("--slice-by", "encoder", "--gate-slices")["evaluations"] == 2
    assert run()["evaluations"] == 0  # and the plain entries are still there


def test_the_worst_slice_of_the_first_bad_model_is_shown_in_terminal_comment_and_summary(
    tmp_path: Path, project: dict[str, Any]
) -> None:
    from model_bisect.publishing.actions import run_result
    from model_bisect.report import read_report

    flags = ("--min-plcc", "0.9", "--slice-by", "encoder", "--gate-slices", "--no-cache")
    ran = call_main(
        "model_bisect",
        *("run", tmp_path / "models", "--features", tmp_path / "f.parquet", *flags),
        *("--json", tmp_path / "r.json", "--markdown", tmp_path / "c.md"),
    )
    assert ran.code == ExitCode.OK, ran.err
    report = read_report(tmp_path / "r.json")
    plcc = next(s for s in report.steps if s.index == 2).worst()
    assert plcc is not None
    shown = (
        f"#2 (model_02.onnx): encoder = libx265, 300 rows: PLCC {plcc.metrics.value('plcc'):.4f}"
    )
    (line,) = [line for line in ran.out.splitlines() if line.startswith("worst slice of")]
    assert line.startswith(f"worst slice of {shown}")
    assert line.endswith("; fails plcc >= 0.9")
    comment = (tmp_path / "c.md").read_text()
    assert f"**Worst slice:** {shown.replace('_', '&#95;')}" in comment
    assert "**Worst slice:**" in run_result(report, None, {}).summary


def test_without_slice_by_nothing_about_slices_is_written_or_shown(
    tmp_path: Path, project: dict[str, Any]
) -> None:
    report = _run(tmp_path, "--scan")
    assert all("slices" not in s and "worst_slice" not in s for s in report["steps"])
    assert "slice_by" not in report["settings"]
    ran = call_main(
        "model_bisect",
        *("run", tmp_path / "models", "--features", tmp_path / "f.parquet"),
        *("--min-plcc", "0.9", "--no-cache"),
    )
    assert "worst slice" not in ran.out


def test_nightly_passes_the_slice_flags_on_to_its_bisect(
    tmp_path: Path, project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no settings file, no fixture: only the flags below
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    ran = call_main(
        "model_bisect",
        *("nightly", "--models", tmp_path / "models", "--features", tmp_path / "f.parquet"),
        *("--min-plcc", "0.9", "--slice-by", "encoder", "--gate-slices"),
        *("--min-slice-rows", "20", "--no-cache", "--out", tmp_path / "out"),
    )
    assert ran.code == ExitCode.REGRESSION, ran.err
    report = json.loads((tmp_path / "out" / "result.json").read_text())
    assert report["settings"]["slice_by"] == ["encoder"]
    assert report["settings"]["min_slice_rows"] == 20
    assert "on encoder = libx265 (300 rows)" in report["steps"][-1]["reason"]
    assert "**Worst slice:**" in (tmp_path / "out" / "comment.md").read_text()


def test_the_config_table_sets_the_slices(tmp_path: Path, project: dict[str, Any]) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.model-bisect]\nslice-by = ["encoder"]\ngate-slices = true\n', encoding="utf-8"
    )
    report = _run(tmp_path, "--config", tmp_path / "pyproject.toml")
    assert report["settings"]["slice_by"] == ["encoder"]
    assert report["settings"]["gate_slices"] is True
    assert report["verdict"]["kind"] == "regression"


def test_a_sliced_report_matches_the_schema_and_reads_back_the_same(
    tmp_path: Path, project: dict[str, Any]
) -> None:
    import jsonschema

    from model_bisect.json_schema import report_schema
    from model_bisect.report import Report

    data = _run(tmp_path, "--slice-by", "encoder", "--gate-slices", "--scan")
    _run(tmp_path, "--slice-by", "encoder", "--scan")  # a run that does not gate them too
    assert list(jsonschema.Draft202012Validator(report_schema()).iter_errors(data)) == []
    report = Report.from_json(data)
    assert report.to_json() == data
    step = report.steps[3]
    worst = step.worst()
    assert worst is not None
    assert (worst.column, worst.value, worst.gated) == ("encoder", "libx265", True)


@pytest.mark.parametrize("mapping", ["linear", "cubic", "logistic"])
def test_the_mapping_is_fitted_once_per_model_for_the_run_and_its_slices(
    tmp_path: Path, project: dict[str, Any], mapping: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The slices read the overall fit: a second fit per model would cost as much again
    (a logistic at 10M rows) and could drift from the one the report's metrics used."""
    from model_bisect import metrics

    fits: list[int] = []
    real = metrics._fit

    def counted(x: np.ndarray, y: np.ndarray, kind: str) -> Any:
        fits.append(int(x.size))
        return real(x, y, kind)

    monkeypatch.setattr(metrics, "_fit", counted)
    report = _run(tmp_path, "--slice-by", "encoder", "--scan", "--mapping", mapping)
    assert len(report["steps"]) == 4
    distinct = {model["sha256"] for model in report["timeline"]}  # twins are measured once
    assert len(distinct) == 2
    assert fits == [ROWS] * len(distinct)  # one fit per model, on every row
    for step in report["steps"]:
        assert {s["metrics"]["mapping"] for s in step["slices"]} == {step["metrics"]["mapping"]}
