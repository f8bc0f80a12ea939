"""The committed fixture (testdata/bisect) keeps its contract, and the repo root shadows nothing."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import pearsonr

from model_bisect.evaluation.features import CANONICAL_FEATURES, TARGET_COLUMN
from tests.cachekit import REPO_ROOT

FIXTURE = REPO_ROOT / "testdata" / "bisect"
MODELS = [FIXTURE / "models" / f"model_{i:02d}.onnx" for i in range(8)]


def _features() -> tuple[np.ndarray, np.ndarray]:
    table = pq.read_table(FIXTURE / "features.parquet")
    matrix = np.stack([table.column(n).to_numpy() for n in CANONICAL_FEATURES], axis=1)
    return matrix, table.column(TARGET_COLUMN).to_numpy()


def test_committed_features_have_256_float32_rows_in_plausible_ranges() -> None:
    table = pq.read_table(FIXTURE / "features.parquet")
    assert table.num_rows == 256
    assert table.schema.names == [*CANONICAL_FEATURES, TARGET_COLUMN]
    assert set(table.schema.types) == {pa.float32()}
    for name in CANONICAL_FEATURES[:-1]:  # adm2 and vif are ratios in [0, 1]
        values = table.column(name).to_numpy()
        assert 0.0 <= values.min() < values.max() <= 1.0, name
    assert table.column("motion2").to_numpy().min() >= 0.0


@pytest.mark.parametrize("model", MODELS, ids=[m.name for m in MODELS])
def test_committed_model_scores_plcc_at_least_099_in_onnx_runtime(model: object) -> None:
    features, target = _features()
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (score,) = session.run(["score"], {"input": features})
    assert score.shape == (256,)
    plcc = pearsonr(score.astype(np.float64), target.astype(np.float64)).statistic
    assert plcc >= 0.99


def test_target_is_noisy_so_even_the_best_linear_fit_is_below_1() -> None:
    features, target = _features()
    design = np.column_stack([features.astype(np.float64), np.ones(len(target))])
    solution, *_ = np.linalg.lstsq(design, target.astype(np.float64), rcond=None)
    plcc = pearsonr(design @ solution, target.astype(np.float64)).statistic
    assert 0.99 <= plcc < 0.999


def test_committed_manifest_describes_a_synthetic_fixture_with_eight_models() -> None:
    manifest = json.loads((FIXTURE / "MANIFEST.json").read_text(encoding="utf-8"))
    assert manifest["origin"]["kind"] == "synthetic"
    assert sorted(manifest["artifacts"]) == ["features.parquet"] + [
        f"models/{m.name}" for m in MODELS
    ]
    assert (FIXTURE / "README.md").is_file()


def test_stdlib_bisect_is_not_shadowed_from_the_repository_root() -> None:
    code = "import tempfile, bisect; bisect.bisect_left; print(bisect.__file__)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert not result.stdout.strip().startswith(str(REPO_ROOT / "bisect"))
