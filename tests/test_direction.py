"""A model whose scores fall as quality rises: no mapping flips it, declaring it does.

P.1401's mappings rise toward the subjective scale, so an inverted model (its weights
negated) stays negative under every mapping and fails its gate; declared lower-is-better
(`--direction lower`, or `direction = "lower"` in a timeline entry) its scores are negated
before anything else, and the report, terminal and comment say so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


# --- a sidecar's model-level direction, on the committed full-reference image models ---------

IMAGES = Path(__file__).resolve().parent.parent / "testdata" / "bisect-images"
_PAIR_INPUTS = "".join(
    f'[models.inputs.{name}]\ntensor = "{name}"\nscale = 0.00392156862745098\n'
    "mean = [0.485, 0.456, 0.406]\nstd = [0.229, 0.224, 0.225]\n"
    for name in ("ref", "dist")
)


def _distance_timeline(folder: Path, sidecar: object, entry_direction: str | None) -> Path:
    """fr_01 (a score) then fr_02 (a distance), copied with a sidecar beside the distance
    saying ``sidecar`` as its direction; the timeline entry says ``entry_direction``."""
    for name in ("fr_01", "fr_02"):
        (folder / f"{name}.onnx").write_bytes((IMAGES / "models" / f"{name}.onnx").read_bytes())
    (folder / "fr_02.json").write_text(json.dumps({"direction": sidecar}), encoding="utf-8")
    said = "" if entry_direction is None else f'direction = "{entry_direction}"\n'
    timeline = folder / "timeline.toml"
    timeline.write_text(
        f'[[models]]\npath = "fr_01.onnx"\n{_PAIR_INPUTS}\n'
        f'[[models]]\npath = "fr_02.onnx"\n{said}{_PAIR_INPUTS}',
        encoding="utf-8",
    )
    return timeline


def _run_pairs(timeline: Path, *extra: str) -> tuple[int, str, dict[str, Any] | None]:
    out = timeline.parent / "report.json"
    done = call_main(
        "model_bisect", "run", "--timeline", timeline, "--features", IMAGES / "pairs.parquet",
        "--min-plcc", "0.8", "--pool-by", "clip", "--json", out, *(extra or ("--no-cache",)),
    )  # fmt: skip
    report = json.loads(out.read_text(encoding="utf-8")) if out.exists() else None
    return done.code, done.out + done.err, report


def test_a_distance_declared_lower_only_in_its_sidecar_is_negated_and_reported(
    tmp_path: Path,
) -> None:
    code, out, report = _run_pairs(_distance_timeline(tmp_path, "lower", None))
    assert code == 0, out
    assert report is not None
    assert [m["direction"] for m in report["timeline"]] == ["higher", "lower"]
    steps = {s["index"]: s for s in report["steps"]}
    assert "scores negated: declared lower-is-better" in steps[1]["reason"]
    assert steps[1]["metrics"]["plcc"] >= 0.8
    assert "scores negated for #1" in " ".join(out.split())


@pytest.mark.parametrize(
    ("entry", "flag", "expected"),
    [
        ("higher", (), ["higher", "higher"]),  # the timeline entry beats the sidecar
        (None, ("--direction", "higher"), ["higher", "lower"]),  # the sidecar beats the flag
    ],
)
def test_the_timeline_entry_beats_the_sidecar_which_beats_the_flag(
    tmp_path: Path, entry: str | None, flag: tuple[str, ...], expected: list[str]
) -> None:
    _, out, report = _run_pairs(_distance_timeline(tmp_path, "lower", entry), *flag)
    assert report is not None, out
    assert [m["direction"] for m in report["timeline"]] == expected


def test_the_sidecar_direction_decides_the_cache_key(tmp_path: Path) -> None:
    """The cache keys on the weights, not the sidecar's bytes: a sidecar whose direction
    flips must still miss, or the distance would be served its metrics as a score."""
    timeline = _distance_timeline(tmp_path, "higher", None)
    args = ("--cache-dir", str(tmp_path / "cache"))
    _, out, as_score = _run_pairs(timeline, *args)
    assert as_score is not None, out
    (tmp_path / "fr_02.json").write_text(json.dumps({"direction": "lower"}), encoding="utf-8")
    code, out, as_distance = _run_pairs(timeline, *args)
    assert code == 0, out
    assert as_distance is not None
    steps = {s["index"]: s for s in as_distance["steps"]}
    before = {s["index"]: s for s in as_score["steps"]}
    assert not steps[1]["cached"]
    assert steps[1]["metrics"]["plcc"] == pytest.approx(-before[1]["metrics"]["plcc"])


def test_a_sidecar_direction_other_than_higher_or_lower_is_exit_3_naming_the_sidecar(
    tmp_path: Path,
) -> None:
    code, out, _ = _run_pairs(_distance_timeline(tmp_path, "down", None))
    assert code == 3
    assert out.count("\n") == 1, out
    assert "sidecar has direction 'down'" in out
    assert "fr_02.json" in out
    assert "Traceback" not in out
