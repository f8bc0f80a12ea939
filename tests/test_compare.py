"""`model-bisect compare`: an fp32 model against a hand-rounded twin, gated on 1 - PLCC."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from model_bisect.exitcodes import ExitCode
from tests.clirun import call_main, run_module
from tests.modelkit import default_weights, features_parquet, linear_model

WEIGHTS = default_weights(6)
BIAS = 0.1


def _rounded(weights: list[float], levels: int = 7) -> list[float]:
    """Weights on a symmetric grid of ``levels`` steps per sign, as a quantiser stores them
    (coarser than int8, so the disagreement stands well above float32 noise)."""
    w = np.asarray(weights, dtype=np.float64)
    scale = np.abs(w).max() / levels
    return [float(v) for v in np.round(w / scale) * scale]


@pytest.fixture
def twins(tmp_path: Path) -> tuple[Path, Path, Path, float]:
    features, _ = features_parquet(tmp_path / "f.parquet", rows=500, seed=4)
    a = linear_model(tmp_path / "m" / "nr_metric_v1.onnx", WEIGHTS, BIAS)
    b = linear_model(tmp_path / "m" / "nr_metric_v1.int8.onnx", _rounded(WEIGHTS), BIAS)
    table = pq.read_table(features)
    x = np.column_stack([table.column(i).to_numpy() for i in range(6)]).astype(np.float64)
    expected = 1.0 - np.corrcoef(x @ WEIGHTS, x @ _rounded(WEIGHTS))[0, 1]
    assert expected > 1e-4
    return a, b, features, float(expected)


def _sidecar(model: Path, budget: object) -> None:
    model.with_suffix(".json").write_text(json.dumps({"quant_accuracy_budget_plcc": budget}))


def _json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_within_the_sidecar_budget_is_exit_0(
    twins: tuple[Path, Path, Path, float], tmp_path: Path
) -> None:
    a, b, features, expected = twins
    _sidecar(b, expected * 2)
    out = tmp_path / "c.json"
    ran = run_module("model_bisect", "compare", a, b, "--features", features, "--json", out)
    assert ran.code == ExitCode.OK, ran.err
    (pair,) = _json(out)["pairs"]
    assert pair["disagreement"] == pytest.approx(expected, rel=1e-3)
    assert pair["budget"] == {"plcc": expected * 2, "source": "nr_metric_v1.int8.json"}
    assert pair["within_budget"] is True
    assert ran.out.startswith("within budget: 1 - plcc(nr_metric_v1.onnx, nr_metric_v1.int8.onnx)")


def test_over_the_sidecar_budget_is_exit_2_and_names_the_rounded_weights(
    twins: tuple[Path, Path, Path, float], tmp_path: Path
) -> None:
    a, b, features, expected = twins
    _sidecar(b, expected / 2)
    out = tmp_path / "c.json"
    ran = run_module("model_bisect", "compare", a, b, "--features", features, "--json", out)
    assert ran.code == ExitCode.REGRESSION, ran.err
    (pair,) = _json(out)["pairs"]
    assert pair["within_budget"] is False
    assert [c["name"] for c in pair["culprit"]["graph"]] == ["W"]
    assert ran.out.startswith("over budget: ")


def test_the_flag_beats_the_sidecar_and_a_registry_serves_when_there_is_none(
    twins: tuple[Path, Path, Path, float],
) -> None:
    a, b, features, expected = twins
    _sidecar(b, expected / 2)
    ran = call_main("model_bisect", "compare", a, b, "--features", features, "--quiet",
                    "--max-disagreement", f"plcc={expected * 2}")  # fmt: skip
    assert ran.code == ExitCode.OK, ran.err
    b.with_suffix(".json").unlink()
    registry = {"models": [{"name": "nr_metric_v1", "quant_accuracy_budget_plcc": expected / 2}]}
    (b.parent / "registry.json").write_text(json.dumps(registry))
    ran = call_main("model_bisect", "compare", a, b, "--features", features)
    assert ran.code == ExitCode.REGRESSION, ran.err
    assert "(registry.json)" in ran.out


def test_without_a_budget_or_a_target_it_explains_and_exits_0(
    twins: tuple[Path, Path, Path, float], tmp_path: Path
) -> None:
    a, b, features, expected = twins
    out = tmp_path / "c.json"
    md = tmp_path / "c.md"
    ran = call_main("model_bisect", "compare", a, b, "--features", features,
                    "--target", "no_such_column", "--json", out, "--markdown", md)  # fmt: skip
    assert ran.code == ExitCode.OK, ran.err
    (pair,) = _json(out)["pairs"]
    assert pair["budget"] is None
    assert pair["target"] is None
    assert pair["disagreement"] == pytest.approx(expected, rel=1e-3)
    assert pair["culprit"]["rows"] == []
    assert pair["culprit"]["deciles"] == []
    assert "<details><summary>Culprit" in md.read_text()


def test_twins_pairs_every_model_with_its_int8_copy(
    twins: tuple[Path, Path, Path, float], tmp_path: Path
) -> None:
    a, b, features, expected = twins
    _sidecar(b, expected * 2)
    linear_model(a.parent / "other.onnx", WEIGHTS, BIAS)  # no twin: not compared
    out = tmp_path / "c.json"
    ran = call_main("model_bisect", "compare", "--twins", a.parent, "--features", features,
                    "--json", out, "--quiet")  # fmt: skip
    assert ran.code == ExitCode.OK, ran.err
    assert [Path(p["b"]["path"]).name for p in _json(out)["pairs"]] == [b.name]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--max-disagreement", "srocc=0.1"), "is not plcc=X"),
        (("--max-disagreement", "plcc=abc"), "is not plcc=X"),
    ],
)
def test_a_bad_budget_flag_is_exit_3_in_one_line(
    twins: tuple[Path, Path, Path, float], args: tuple[str, ...], message: str
) -> None:
    a, b, features, _ = twins
    ran = call_main("model_bisect", "compare", a, b, "--features", features, *args)
    assert ran.code == ExitCode.INPUT
    assert ran.err.count("\n") == 1
    assert message in ran.err


def test_a_malformed_sidecar_budget_is_exit_3_naming_the_file(
    twins: tuple[Path, Path, Path, float],
) -> None:
    a, b, features, _ = twins
    _sidecar(b, "one percent")
    ran = call_main("model_bisect", "compare", a, b, "--features", features)
    assert ran.code == ExitCode.INPUT
    assert "nr_metric_v1.int8.json" in ran.err
    assert "Traceback" not in ran.err


def test_a_model_that_cannot_be_evaluated_is_exit_3(
    twins: tuple[Path, Path, Path, float],
) -> None:
    a, b, features, _ = twins
    b.write_bytes(b"not a model")
    ran = call_main("model_bisect", "compare", a, b, "--features", features)
    assert ran.code == ExitCode.INPUT
    assert ran.err.startswith("error: model cannot be evaluated")
    assert ran.err.count("\n") == 1
