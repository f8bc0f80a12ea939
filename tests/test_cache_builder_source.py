"""The swap path: a real feature parquet in, a cleaned fixture out, every bad input exits 3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from cache_builder.cli import main
from cache_builder.source import fit_linear
from model_bisect.evaluation.features import CANONICAL_FEATURES
from tests.cachekit import read_json, snapshot, source_columns, write_parquet
from tests.clirun import run_module


def _manifest(out: Path) -> dict[str, Any]:
    return read_json(out / "MANIFEST.json")


def _bad_missing_features(path: Path) -> Path:
    columns = source_columns(50)
    del columns["vif_scale3"], columns["motion2"]
    return write_parquet(path, columns)


def _bad_no_target(path: Path) -> Path:
    columns = source_columns(50)
    columns["rating"] = columns.pop("mos")
    return write_parquet(path, columns)


def _bad_no_usable_rows(path: Path) -> Path:
    columns = source_columns(50)
    columns["mos"] = np.full(50, np.nan)
    return write_parquet(path, columns)


def _bad_non_numeric(path: Path) -> Path:
    columns: dict[str, Any] = source_columns(50)
    columns["adm2"] = [f"{v:.3f}" for v in columns["adm2"]]
    return write_parquet(path, columns)


def _bad_not_parquet(path: Path) -> Path:
    path.write_text("adm2,vif_scale0\n0.9,0.8\n", encoding="utf-8")
    return path


def _bad_absent(path: Path) -> Path:
    return path


@pytest.mark.parametrize(
    ("make", "problem", "fix"),
    [
        (
            _bad_missing_features,
            "missing feature columns vif_scale3, motion2",
            "canonical features",
        ),
        (
            _bad_no_target,
            "no target column (looked for mos, dmos, target, score)",
            "--target-column",
        ),
        (_bad_no_usable_rows, "only 0 usable rows of 50", "at least 8 rows"),
        (_bad_non_numeric, "non-numeric columns adm2 (string)", "as integer or floating"),
        (_bad_not_parquet, "not a readable parquet file", "parquet"),
        (_bad_absent, "file not found", "parquet"),
    ],
    ids=["missing-features", "no-target", "no-usable-rows", "non-numeric", "not-parquet", "absent"],
)
def test_bad_source_exits_3_with_one_line_naming_file_problem_and_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, problem: str, fix: str
) -> None:
    source = make(tmp_path / "cache.parquet")
    out = tmp_path / "bisect"
    assert main(["regenerate", "--out", str(out), "--source-features", str(source)]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith(f"error: {problem}")
    assert f" in {source}: " in line
    assert fix in line.split(f" in {source}: ", 1)[1]
    assert not out.exists()


def test_bad_source_in_a_fresh_process_exits_3_without_traceback(tmp_path: Path) -> None:
    source = _bad_not_parquet(tmp_path / "cache.parquet")
    result = run_module(
        "cache_builder",
        "regenerate",
        "--out",
        str(tmp_path / "o"),
        "--source-features",
        str(source),
    )
    assert result.code == 3
    assert "Traceback" not in result.err
    (line,) = result.err.splitlines()
    assert line.startswith("error: not a readable parquet file (")
    assert line.endswith(
        f" in {source}: pass a readable parquet file of feature vectors and a MOS/DMOS column"
    )


def test_nan_inf_and_null_rows_are_dropped_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    columns: dict[str, Any] = source_columns(40)
    columns["adm2"][3] = np.nan
    columns["motion2"][10] = np.inf
    columns["mos"][25] = -np.inf
    columns["vif_scale1"] = [
        None if i == 31 else float(v) for i, v in enumerate(columns["vif_scale1"])
    ]
    source = write_parquet(tmp_path / "cache.parquet", columns)
    out = tmp_path / "bisect"
    assert main(["regenerate", "--out", str(out), "--source-features", str(source)]) == 0
    assert "40 rows read, 4 dropped" in capsys.readouterr().out
    table = pq.read_table(out / "features.parquet")
    assert table.num_rows == 36
    kept = [i for i in range(40) if i not in (3, 10, 25, 31)]
    np.testing.assert_array_equal(
        table.column("mos").to_numpy(), np.asarray(columns["mos"], dtype=np.float32)[kept]
    )
    source_record = _manifest(out)["origin"]["source"]
    assert source_record["dropped_rows"] == 4
    assert source_record["rows_read"] == 40


def test_dmos_target_is_autodetected_and_renamed_to_mos(tmp_path: Path) -> None:
    columns = source_columns(60, target="dmos")
    source = write_parquet(tmp_path / "cache.parquet", columns)
    out = tmp_path / "bisect"
    assert main(["regenerate", "--out", str(out), "--source-features", str(source)]) == 0
    table = pq.read_table(out / "features.parquet")
    assert table.schema.names == [*CANONICAL_FEATURES, "mos"]
    np.testing.assert_array_equal(
        table.column("mos").to_numpy(), columns["dmos"].astype(np.float32)
    )
    origin = _manifest(out)["origin"]
    assert origin["kind"] == "source"
    assert origin["source"]["target_column"] == "dmos"
    assert origin["source"]["path"] == "../cache.parquet"  # relative: no absolute path


def test_target_column_flag_overrides_autodetection(tmp_path: Path) -> None:
    columns = source_columns(60)
    columns["subjective"] = columns["mos"] * 20.0
    source = write_parquet(tmp_path / "cache.parquet", columns)
    out = tmp_path / "bisect"
    args = ["regenerate", "--out", str(out), "--source-features", str(source)]
    assert main([*args, "--target-column", "subjective"]) == 0
    mos = pq.read_table(out / "features.parquet").column("mos").to_numpy()
    np.testing.assert_array_equal(mos, (columns["mos"] * 20.0).astype(np.float32))


def test_unknown_target_column_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_parquet(tmp_path / "cache.parquet", source_columns(30))
    args = ["regenerate", "--out", str(tmp_path / "o"), "--source-features", str(source)]
    assert main([*args, "--target-column", "nope"]) == 3
    assert capsys.readouterr().err.startswith("error: no column 'nope' (from --target-column) in ")


def test_target_column_without_source_features_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["regenerate", "--out", str(tmp_path / "o"), "--target-column", "dmos"]) == 3
    assert capsys.readouterr().err.startswith("error: --target-column needs --source-features")
    assert not (tmp_path / "o").exists()


def test_least_squares_recovers_exact_linear_weights() -> None:
    rng = np.random.default_rng(3)
    features = rng.uniform(0.0, 1.0, (100, 6)).astype(np.float32)
    truth = np.array([1.5, -2.0, 0.25, 3.0, 0.0, 0.75])
    target = features.astype(np.float64) @ truth + 0.5
    fitted = fit_linear(features, target)
    np.testing.assert_allclose(fitted.weights, truth, atol=1e-4)
    assert float(fitted.bias) == pytest.approx(0.5, abs=1e-4)


def test_source_fixture_is_reproducible_and_checks_clean(tmp_path: Path) -> None:
    source = write_parquet(tmp_path / "cache.parquet", source_columns(80, target="score"))
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        assert main(["regenerate", "--out", str(out), "--source-features", str(source)]) == 0
    assert snapshot(first) == snapshot(second)
    assert main(["check", "--out", str(first)]) == 0


def test_check_asks_for_source_features_when_the_recorded_source_is_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_parquet(tmp_path / "cache.parquet", source_columns(80))
    out = tmp_path / "bisect"
    assert main(["regenerate", "--out", str(out), "--source-features", str(source)]) == 0
    moved = source.rename(tmp_path / "elsewhere.parquet")
    capsys.readouterr()
    assert main(["check", "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: the fixture was made from ../cache.parquet, which is not at hand")
    assert err.rstrip().endswith("--source-features PARQUET")
    assert main(["check", "--out", str(out), "--source-features", str(moved)]) == 0


def test_check_refuses_a_recorded_source_that_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_parquet(tmp_path / "cache.parquet", source_columns(80))
    out = tmp_path / "bisect"
    assert main(["regenerate", "--out", str(out), "--source-features", str(source)]) == 0
    write_parquet(source, source_columns(80, seed=8))
    capsys.readouterr()
    assert main(["check", "--out", str(out)]) == 3
    assert "which has changed since" in capsys.readouterr().err
    manifest = json.loads((out / "MANIFEST.json").read_text(encoding="utf-8"))
    assert manifest["origin"]["source"]["path"] == "../cache.parquet"
