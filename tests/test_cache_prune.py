"""The evaluation cache stays under its size bound: least recently used entries go first,
never one this run used, and nothing outside the cache folder is touched."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from model_bisect.evaluation.cache import EvalCache
from model_bisect.exitcodes import ExitCode
from tests.clirun import call_main
from tests.modelkit import default_weights, features_parquet, timeline_dir


def _fill(folder: Path, count: int, rows: int = 1000) -> list[str]:
    """``count`` entries with predictions, the i-th last used at time 1000 + i."""
    writer = EvalCache(folder)
    keys = []
    for i in range(count):
        key = EvalCache.key(model=f"m{i}")
        writer.put(key, {"metrics": {"plcc": i / count}}, np.full(rows, float(i)))
        os.utime(folder / f"{key}.json", (1000 + i, 1000 + i))
        keys.append(key)
    return keys


def _size(folder: Path, key: str) -> int:
    return sum(p.stat().st_size for p in folder.glob(f"{key}.*"))


def test_a_cache_over_the_bound_loses_its_least_recently_used_entries(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    keys = _fill(folder, 5)
    bound = _size(folder, keys[3]) + _size(folder, keys[4])  # room for the two newest
    pruned = EvalCache(folder).prune(bound)
    reader = EvalCache(folder)
    assert [reader.get(k) is not None for k in keys] == [False, False, False, True, True]
    assert pruned.removed == 3
    assert pruned.kept_bytes == bound == sum(p.stat().st_size for p in folder.iterdir())


def test_a_hit_makes_an_old_entry_recently_used(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    keys = _fill(folder, 3)
    assert EvalCache(folder).get(keys[0]) is not None  # another run read the oldest
    EvalCache(folder).prune(_size(folder, keys[0]) + _size(folder, keys[2]))
    reader = EvalCache(folder)
    assert [reader.get(k) is not None for k in keys] == [True, False, True]


def test_entries_this_run_used_stay_even_over_the_bound(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    keys = _fill(folder, 4)
    run = EvalCache(folder)
    assert run.get(keys[0]) is not None
    run.put(EvalCache.key(model="new"), {"metrics": {}}, None)
    pruned = run.prune(1)
    left = sorted(p.name.split(".")[0] for p in folder.iterdir())
    assert left == sorted([keys[0], keys[0], EvalCache.key(model="new")])
    assert pruned.removed == 3


def test_pruning_never_touches_what_a_planted_link_points_to(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    keys = _fill(folder, 2)
    outside = tmp_path / "precious.bin"
    outside.write_bytes(b"keep me" * 1000)
    (folder / f"{EvalCache.key(model='planted')}.json").symlink_to(outside)
    (folder / f"{keys[0]}.npy").unlink()
    (folder / f"{keys[0]}.npy").symlink_to(outside)  # beside a real record
    (folder / "notes.txt").write_text("not an entry", encoding="utf-8")
    EvalCache(folder).prune(1)
    assert outside.read_bytes() == b"keep me" * 1000
    assert (folder / f"{EvalCache.key(model='planted')}.json").is_symlink()
    assert (folder / f"{keys[0]}.npy").is_symlink()  # a link is not an entry's file
    assert (folder / "notes.txt").exists()
    assert not (folder / f"{keys[0]}.json").exists()
    assert not list(folder.glob(f"{keys[1]}.*"))


def test_an_interrupted_eviction_leaves_a_miss_that_is_pruned_first(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    keys = _fill(folder, 3)
    (folder / f"{keys[2]}.json").unlink()  # an eviction stopped after the record went
    assert EvalCache(folder).get(keys[2]) is None
    EvalCache(folder).prune(_size(folder, keys[0]) + _size(folder, keys[1]))
    reader = EvalCache(folder)
    assert [reader.get(k) is not None for k in keys[:2]] == [True, True]
    assert not (folder / f"{keys[2]}.npy").exists()


def test_run_prunes_the_cache_to_cache_max_mb_keeping_its_own_entries(tmp_path: Path) -> None:
    features, _ = features_parquet(tmp_path / "f.parquet", rows=200)
    weights = default_weights(6)
    timeline_dir(tmp_path / "old", 2, None, weights=weights, seed=1)
    timeline_dir(tmp_path / "new", 2, None, weights=weights, seed=2)
    cache = tmp_path / "cache"
    common = ["--features", features, "--min-plcc", "0.5", "--scan", "--quiet",
              "--cache-dir", cache]  # fmt: skip
    assert call_main("model_bisect", "run", tmp_path / "old", *common).code == 0
    old = sorted(cache.glob("*.json"))
    assert len(old) == 2
    for path in old:
        os.utime(path, (1000, 1000))
    done = call_main("model_bisect", "run", tmp_path / "new", *common, "--cache-max-mb", "0.000001")
    assert done.code == 0, done.err
    new = sorted(cache.glob("*.json"))
    assert len(new) == 2
    assert not set(new) & set(old)


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_a_cache_bound_that_is_not_a_positive_number_exits_3(tmp_path: Path, value: str) -> None:
    features, _ = features_parquet(tmp_path / "f.parquet", rows=50)
    timeline_dir(tmp_path / "m", 2, None, weights=default_weights(6))
    done = call_main("model_bisect", "run", tmp_path / "m", "--features", features,
                     "--min-plcc", "0.5", "--quiet", "--cache-max-mb", value)  # fmt: skip
    assert done.code == ExitCode.INPUT
    (line,) = done.err.splitlines()
    assert line.startswith("error: the evaluation cache bound must be a positive number")
    assert "--cache-max-mb" in line
