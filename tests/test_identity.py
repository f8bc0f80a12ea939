"""A model's identity is its content (the `.onnx` file, its external data and its sidecar).

Two copies of one graph whose `.onnx` files are byte-identical but whose `.onnx.data` hold
different weights are two models: the report, the terminal and the comment tell them apart,
and neither is ever served the other's cached metrics.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import scipy.stats

from model_bisect.files import file_sha256
from model_bisect.publishing.comment import render_markdown
from model_bisect.report import read_report
from tests.clirun import call_main
from tests.modelkit import default_weights, features_parquet, linear_model

GATE = ("--min-plcc", "0.5")
FEATURES = ["adm2", "vif_scale0", "vif_scale1", "vif_scale2", "vif_scale3", "motion2"]


@pytest.fixture
def features(tmp_path: Path) -> Path:
    path, _ = features_parquet(tmp_path / "features.parquet", rows=400, seed=31, noise=0.2)
    return path


def _weights(tilt: float) -> list[float]:
    """The good weights, the first one moved by ``tilt``: another PLCC, the same graph."""
    w = default_weights(len(FEATURES))
    return [w[0] + tilt, *w[1:]]


def _copies(folder: Path) -> tuple[Path, Path]:
    a = linear_model(folder / "a" / "m.onnx", _weights(0.0), external_data=True)
    b = linear_model(folder / "b" / "m.onnx", _weights(-1.5), external_data=True)
    assert a.read_bytes() == b.read_bytes()  # only the .onnx.data differs
    assert Path(f"{a}.data").read_bytes() != Path(f"{b}.data").read_bytes()
    return a, b


def _plcc(features: Path, weights: list[float]) -> float:
    table = pq.read_table(features)
    x = np.column_stack([table[c].to_numpy() for c in FEATURES]).astype(np.float32)
    pred = x @ np.asarray(weights, dtype=np.float32)
    return float(scipy.stats.pearsonr(pred, table["mos"].to_numpy()).statistic)


def test_copies_differing_only_in_external_data_have_different_identities(
    tmp_path: Path, features: Path
) -> None:
    a, b = _copies(tmp_path)
    report_path = tmp_path / "report.json"
    done = call_main(
        "model_bisect",
        "run",
        a,
        b,
        "--features",
        features,
        *GATE,
        "--scan",
        "--json",
        report_path,
        "--no-cache",
    )
    assert done.code == 0, done.err
    data = json.loads(report_path.read_text(encoding="utf-8"))
    first, second = data["timeline"]
    assert first["sha256"] == second["sha256"] == file_sha256(a)  # the .onnx hash, kept
    assert first["content_sha256"] != second["content_sha256"]  # the identity
    ids = [ref["content_sha256"][:8] for ref in data["timeline"]]
    for shown in ids:
        assert re.search(rf"│ {shown} │", done.out), done.out  # the terminal's id column
    body = render_markdown(read_report(report_path))
    for shown in ids:
        assert f"<code>{shown}</code>" in body
    plcc = {s["index"]: s["metrics"]["plcc"] for s in data["steps"]}
    assert plcc[0] == pytest.approx(_plcc(features, _weights(0.0)), abs=1e-6)
    assert plcc[1] == pytest.approx(_plcc(features, _weights(-1.5)), abs=1e-6)
    assert "same bytes" not in json.dumps(data["steps"])


def test_neither_copy_is_served_the_others_cached_metrics(tmp_path: Path, features: Path) -> None:
    a, b = _copies(tmp_path)
    cache = tmp_path / "cache"
    seen = {}
    for model, tilt in ((a, 0.0), (b, -1.5), (a, 0.0), (b, -1.5)):
        done = call_main(
            "model_bisect", "judge", model, "--features", features, *GATE, "--cache-dir", cache
        )
        assert done.code == 0, done.out + done.err
        found = re.search(r"plcc (-?\d+\.\d+)", done.out)
        assert found is not None, done.out
        assert float(found.group(1)) == pytest.approx(_plcc(features, _weights(tilt)), abs=1e-4)
        seen.setdefault(model, set()).add(found.group(1))
    assert seen[a] != seen[b]
    assert len(list(cache.glob("*.json"))) == 2  # one entry per identity, each hit once again
