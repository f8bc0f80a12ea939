"""A model whose scores fall as quality rises: no mapping flips it, declaring it does.

P.1401's mappings rise toward the subjective scale, so an inverted model (its weights
negated) stays negative under every mapping and fails its gate; declared lower-is-better
(`--direction lower`, or `direction = "lower"` in a timeline entry) its scores are negated
before anything else, and the report, terminal and comment say so.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import scipy.stats

from model_bisect.catalogue import MappingName
from model_bisect.exitcodes import JudgeExit
from model_bisect.publishing.comment import render_markdown
from model_bisect.report import read_report
from tests.clirun import call_main
from tests.modelkit import default_weights, features_parquet, linear_model

GATE = ("--min-plcc", "0.85")
FEATURES = ["adm2", "vif_scale0", "vif_scale1", "vif_scale2", "vif_scale3", "motion2"]


@pytest.fixture
def features(tmp_path: Path) -> Path:
    path, _ = features_parquet(tmp_path / "features.parquet", rows=400, seed=21)
    return path


def _weights() -> np.ndarray:
    return np.asarray(default_weights(len(FEATURES)), dtype=np.float32)


def _inverted(folder: Path, name: str = "inverted.onnx") -> Path:
    return linear_model(folder / name, [float(-w) for w in _weights()])


def _plcc_of(features: Path, weights: np.ndarray) -> float:
    """PLCC of ``X @ weights`` against the target, computed here with scipy."""
    table = pq.read_table(features)
    x = np.column_stack([table[c].to_numpy() for c in FEATURES]).astype(np.float32)
    y = table["mos"].to_numpy()
    return float(scipy.stats.pearsonr(x @ weights, y).statistic)


@pytest.mark.parametrize("mapping", [m.value for m in MappingName])
def test_an_inverted_model_is_bad_under_every_mapping(
    tmp_path: Path, features: Path, mapping: str
) -> None:
    model = _inverted(tmp_path)
    done = call_main(
        "model_bisect", "judge", model, "--features", features, *GATE, "--mapping", mapping
    )
    assert done.code == JudgeExit.BAD, done.out + done.err
    raw = _plcc_of(features, -_weights())
    assert raw < -0.9
    assert f"plcc {raw:.4f} < 0.85" in done.out
    if mapping != "none":
        assert f"{mapping} mapping not applied" in done.out


@pytest.mark.parametrize("mapping", [m.value for m in MappingName])
def test_an_inverted_model_declared_lower_is_better_is_good(
    tmp_path: Path, features: Path, mapping: str
) -> None:
    model = _inverted(tmp_path)
    done = call_main(
        "model_bisect",
        "judge",
        model,
        "--features",
        features,
        *GATE,
        "--mapping",
        mapping,
        "--direction",
        "lower",
    )
    assert done.code == JudgeExit.GOOD, done.out + done.err
    assert f"plcc {_plcc_of(features, _weights()):.4f} >= 0.85" in done.out
    assert "scores negated" in done.out


def test_a_timeline_entry_declared_lower_is_negated_and_the_report_says_so(
    tmp_path: Path, features: Path
) -> None:
    linear_model(tmp_path / "good.onnx", [float(w) for w in _weights()])
    _inverted(tmp_path)
    timeline = tmp_path / "timeline.toml"
    timeline.write_text(
        '[[models]]\npath = "good.onnx"\n\n'
        '[[models]]\npath = "inverted.onnx"\ndirection = "lower"\n',
        encoding="utf-8",
    )
    report_path = tmp_path / "report.json"
    done = call_main(
        "model_bisect",
        "run",
        "--timeline",
        timeline,
        "--features",
        features,
        *GATE,
        "--mapping",
        "linear",
        "--json",
        report_path,
        "--no-cache",
    )
    assert done.code == 0, done.err
    data = json.loads(report_path.read_text(encoding="utf-8"))
    assert [m["direction"] for m in data["timeline"]] == ["higher", "lower"]
    assert data["verdict"]["kind"] == "no_regression"
    step = next(s for s in data["steps"] if s["index"] == 1)
    assert "scores negated: declared lower-is-better" in step["reason"]
    assert step["metrics"]["mapping_direction"] == "increasing"
    assert step["metrics"]["plcc"] == pytest.approx(_plcc_of(features, _weights()), abs=1e-6)
    assert "scores negated for #1: declared lower-is-better" in " ".join(done.out.split())
    body = render_markdown(read_report(report_path))
    assert "scores negated for #1: declared lower-is-better" in body


def test_direction_lower_for_a_whole_run_negates_every_model(
    tmp_path: Path, features: Path
) -> None:
    for i in range(3):
        linear_model(tmp_path / "models" / f"m{i}.onnx", [float(-w) for w in _weights()])
    report_path = tmp_path / "report.json"
    args = ("run", tmp_path / "models", "--features", features, *GATE, "--json", report_path)
    assert call_main("model_bisect", *args, "--no-cache").code == 2  # the head fails
    done = call_main("model_bisect", *args, "--no-cache", "--direction", "lower")
    assert done.code == 0, done.err
    data = json.loads(report_path.read_text(encoding="utf-8"))
    assert data["settings"]["direction"] == "lower"
    assert {m["direction"] for m in data["timeline"]} == {"lower"}
    assert "scores negated: every model declared lower-is-better" in " ".join(done.out.split())


def test_the_declared_direction_is_part_of_the_cache_key(tmp_path: Path, features: Path) -> None:
    model = _inverted(tmp_path)
    cache = tmp_path / "cache"
    base = ("judge", model, "--features", features, *GATE, "--cache-dir", cache)
    assert call_main("model_bisect", *base).code == JudgeExit.BAD
    lower = call_main("model_bisect", *base, "--direction", "lower")
    assert lower.code == JudgeExit.GOOD, lower.out
    assert call_main("model_bisect", *base).code == JudgeExit.BAD


def test_a_timeline_direction_other_than_higher_or_lower_is_exit_3(
    tmp_path: Path, features: Path
) -> None:
    _inverted(tmp_path)
    _inverted(tmp_path, "b.onnx")
    timeline = tmp_path / "timeline.toml"
    timeline.write_text(
        '[[models]]\npath = "inverted.onnx"\ndirection = "down"\n\n[[models]]\npath = "b.onnx"\n',
        encoding="utf-8",
    )
    done = call_main("model_bisect", "run", "--timeline", timeline, "--features", features, *GATE)
    assert done.code == 3
    assert done.err.count("\n") == 1
    assert "entry 1 has direction 'down'" in done.err
    assert 'direction = "lower"' in done.err
    assert "Traceback" not in done.err
