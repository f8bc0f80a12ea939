"""``--pool-by COLUMN``: frames of one clip are one rated item.

The expected metrics are computed here: ONNX Runtime run by hand on every frame, the
predictions averaged per clip with a plain loop, and scipy on the clip means.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.stats

from model_bisect.evaluation.pooling import group_means, group_target, groups_of
from model_bisect.exitcodes import ExitCode
from tests.clirun import call_main
from tests.test_tensors import SCALE, SIZE, _by_hand, _nr_timeline, _tensor, nr_cnn

FRAMES = 3


def _clip_cache(path: Path, clips: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``FRAMES`` uint8 frames per clip (rows of one clip not adjacent), one MOS per clip."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(0, 1, clips)
    mos_per_clip = 1 + 4 * level + rng.normal(0, 0.3, clips)
    order = rng.permutation(clips * FRAMES) % clips  # each clip appears FRAMES times, shuffled
    noise = rng.uniform(0, 55, (len(order), 1, SIZE, SIZE))
    frames = (level[order][:, None, None, None] * 200 + noise).astype(np.uint8)
    names = [f"clip{c:03d}" for c in order]
    table = pa.table({"frame": _tensor(frames), "mos": mos_per_clip[order], "clip": names})
    pq.write_table(table, path, row_group_size=50)
    return frames, mos_per_clip[order], names


def _report(tmp_path: Path, cache: Path, *extra: str) -> tuple[int, str, dict]:  # type: ignore[type-arg]
    out = tmp_path / "report.json"
    done = call_main(
        "model_bisect",
        "run",
        "--timeline",
        _nr_timeline(tmp_path, SCALE),
        "--features",
        cache,
        "--min-plcc",
        "0.1",
        "--scan",
        "--no-cache",
        "--json",
        out,
        *extra,
    )
    report = json.loads(out.read_text()) if done.code == ExitCode.OK else {}
    return done.code, done.err, report


def test_pooled_metrics_equal_metrics_on_per_clip_means(tmp_path: Path) -> None:
    cache = tmp_path / "clips.parquet"
    frames, mos, names = _clip_cache(cache, clips=40, seed=4)
    models = [nr_cnn(tmp_path / f"nr_{i}.onnx", seed=i) for i in range(2)]
    code, err, report = _report(tmp_path, cache, "--pool-by", "clip")
    assert code == ExitCode.OK, err
    scaled = frames.astype(np.float32) * np.float32(SCALE)
    clips = sorted(set(names))
    for step in report["steps"]:
        per_frame = _by_hand(models[step["index"]], [{"frame": scaled}], "mos")
        means = [
            np.mean([p for p, n in zip(per_frame, names, strict=True) if n == c]) for c in clips
        ]
        targets = [mos[names.index(c)] for c in clips]
        assert step["metrics"]["plcc"] == pytest.approx(
            scipy.stats.pearsonr(means, targets).statistic, abs=1e-5
        )
        assert step["metrics"]["srocc"] == pytest.approx(
            scipy.stats.spearmanr(means, targets).statistic, abs=1e-5
        )
        rmse = np.sqrt(np.mean((np.asarray(means) - np.asarray(targets)) ** 2))
        assert step["metrics"]["rmse"] == pytest.approx(rmse, abs=1e-5)
    assert report["features"]["pool_by"] == "clip"
    assert report["features"]["groups"] == 40
    assert report["features"]["rows"] == 40 * FRAMES


def test_unpooled_metrics_are_over_frames(tmp_path: Path) -> None:
    cache = tmp_path / "clips.parquet"
    _clip_cache(cache, clips=40, seed=4)
    for i in range(2):
        nr_cnn(tmp_path / f"nr_{i}.onnx", seed=i)
    _, _, pooled = _report(tmp_path, cache, "--pool-by", "clip")
    _, _, frames = _report(tmp_path, cache)
    assert "groups" not in frames["features"]
    assert pooled["steps"][0]["metrics"]["plcc"] != pytest.approx(
        frames["steps"][0]["metrics"]["plcc"], abs=1e-4
    )


def test_a_clip_whose_target_differs_within_is_exit_3_naming_it(tmp_path: Path) -> None:
    cache = tmp_path / "clips.parquet"
    frames, mos, names = _clip_cache(cache, clips=20, seed=6)
    for i in range(2):
        nr_cnn(tmp_path / f"nr_{i}.onnx", seed=i)
    changed = mos.copy()
    second = [i for i, n in enumerate(names) if n == "clip007"][1]
    changed[second] += 0.5
    table = pa.table({"frame": _tensor(frames), "mos": changed, "clip": names})
    pq.write_table(table, cache)
    code, err, _ = _report(tmp_path, cache, "--pool-by", "clip")
    assert code == ExitCode.INPUT
    assert err.count("\n") == 1
    assert "group 'clip007' has rows whose 'mos' differ" in err
    assert str(cache) in err


def test_judge_takes_pool_by(tmp_path: Path) -> None:
    cache = tmp_path / "clips.parquet"
    _clip_cache(cache, clips=30, seed=9)
    model = nr_cnn(tmp_path / "nr_0.onnx", seed=0)
    (tmp_path / "nr_0.json").write_text(
        json.dumps({"inputs": {"frame": {"tensor": "frame", "scale": SCALE}}})
    )
    done = call_main(
        "model_bisect",
        "judge",
        model,
        "--features",
        cache,
        "--min-plcc",
        "0.1",
        "--pool-by",
        "nope",
        "--no-cache",
    )
    assert done.code == 128
    assert "no --pool-by column 'nope'" in done.err


def test_group_means_and_targets_by_hand() -> None:
    values = np.asarray(["b", "a", "b", "c", "a", "b"], dtype=object)
    groups = groups_of(values)
    assert groups.names == ("b", "a", "c")  # in order of first appearance
    predictions = np.asarray([1.0, 2.0, 3.0, 4.0, 6.0, 5.0])
    expected = [np.mean(predictions[values == g]) for g in groups.names]
    np.testing.assert_allclose(group_means(predictions, groups), expected)
    target, differs = group_target(np.asarray([1.0, 2.0, 1.0, 3.0, 2.0, 1.0]), groups)
    np.testing.assert_allclose(target, [1.0, 2.0, 3.0])
    assert differs is None
    _, differs = group_target(np.asarray([1.0, 2.0, 1.0, 3.0, 2.5, 1.0]), groups)
    assert differs == "a"
    rows32 = np.asarray([1.1, 2.0, 1.1, 3.0, 2.0, 1.1], dtype=np.float32)
    target, differs = group_target(rows32, groups)  # a float32 target, as the file stores it
    assert target.dtype == np.float64  # the pooled target is its exact float64 copy
    np.testing.assert_array_equal(target, rows32.astype(np.float64)[[0, 1, 3]])
    assert differs is None


def test_a_feature_cache_pools_too_with_its_dropped_rows_left_out(tmp_path: Path) -> None:
    """Rows dropped for a non-finite feature must not shift the clip ids onto other rows."""
    from model_bisect.evaluation.features import CANONICAL_FEATURES
    from tests.modelkit import default_weights, linear_model

    rng = np.random.default_rng(12)
    clips = 30
    clip_of_row = np.repeat(np.arange(clips), FRAMES)
    x = rng.uniform(0, 1, (clips * FRAMES, len(CANONICAL_FEATURES))).astype(np.float32)
    x[4, 2] = np.nan  # clip 1 keeps two of its rows
    mos = rng.uniform(1, 5, clips)[clip_of_row]
    columns: dict[str, object] = {n: x[:, i] for i, n in enumerate(CANONICAL_FEATURES)}
    columns |= {"mos": mos, "clip": [f"c{c}" for c in clip_of_row]}
    cache = tmp_path / "features.parquet"
    pq.write_table(pa.table(columns), cache)
    weights = np.asarray(default_weights(len(CANONICAL_FEATURES)), dtype=np.float32)
    models = [linear_model(tmp_path / f"m{i}.onnx", list(weights * (i + 1))) for i in range(2)]
    out = tmp_path / "r.json"
    done = call_main(
        "model_bisect",
        *("run", *models, "--features", cache, "--min-plcc", "-1"),
        *("--pool-by", "clip", "--no-cache", "--json", out),
    )
    assert done.code == ExitCode.OK, done.err
    report = json.loads(out.read_text())
    kept = np.isfinite(x).all(axis=1)
    per_row = x[kept] @ weights
    means = [per_row[clip_of_row[kept] == c].mean() for c in range(clips)]
    plcc = scipy.stats.pearsonr(means, mos[::FRAMES]).statistic
    assert report["steps"][-1]["metrics"]["plcc"] == pytest.approx(plcc, abs=1e-5)
    assert report["features"]["groups"] == clips
    assert report["features"]["dropped_rows"] == 1
