"""The on-disk evaluation cache: round trips, keys that change with every part, corruption."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model_bisect.engine import RunOptions, run
from model_bisect.errors import InputError
from model_bisect.evaluation.cache import EvalCache
from model_bisect.report import GateSpec
from model_bisect.timeline.arguments import from_arguments
from tests.modelkit import default_weights, features_parquet, timeline_dir

PARTS: dict[str, Any] = {
    "model_sha256": "a" * 64,
    "features_sha256": "b" * 64,
    "columns": ["adm2", "motion2"],
    "target": "mos",
    "mapping": "none",
    "tool_version": "0.1.0",
}


def test_round_trip_keeps_record_and_predictions(tmp_path: Path) -> None:
    cache = EvalCache(tmp_path / "c")
    key = EvalCache.key(**PARTS)
    predictions = np.array([1.5, -2.0, 3.25])
    record = {"ok": True, "reason": "", "seconds": 0.5, "metrics": {"plcc": 0.9}}
    cache.put(key, record, predictions)
    hit = cache.get(key)
    assert hit is not None
    assert hit[0] == record
    assert hit[1] is not None
    np.testing.assert_array_equal(hit[1], predictions)
    assert hit[1].dtype == np.float64


def test_record_without_predictions_round_trips(tmp_path: Path) -> None:
    cache = EvalCache(tmp_path)
    key = EvalCache.key(**PARTS)
    cache.put(key, {"ok": False, "reason": "invalid ONNX"})
    assert cache.get(key) == ({"ok": False, "reason": "invalid ONNX"}, None)


def test_overwriting_without_predictions_drops_the_old_ones(tmp_path: Path) -> None:
    cache = EvalCache(tmp_path)
    key = EvalCache.key(**PARTS)
    cache.put(key, {"n": 1}, np.zeros(4))
    cache.put(key, {"n": 2})
    assert cache.get(key) == ({"n": 2}, None)


def test_unknown_key_is_a_miss(tmp_path: Path) -> None:
    assert EvalCache(tmp_path / "never-created").get(EvalCache.key(**PARTS)) is None


def test_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    cache = EvalCache(tmp_path)
    key = EvalCache.key(**PARTS)
    cache.put(key, {"ok": True}, np.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{key}.json", f"{key}.npy"]


@pytest.mark.parametrize(
    ("part", "other"),
    [
        ("model_sha256", "c" * 64),
        ("features_sha256", "d" * 64),
        ("columns", ["motion2", "adm2"]),
        ("target", "dmos"),
        ("mapping", "logistic"),
        ("tool_version", "0.2.0"),
    ],
)
def test_key_changes_with_each_part(part: str, other: object) -> None:
    assert EvalCache.key(**{**PARTS, part: other}) != EvalCache.key(**PARTS)


def test_key_ignores_argument_order_and_tuple_vs_list() -> None:
    reordered = dict(reversed(list(PARTS.items())))
    reordered["columns"] = tuple(PARTS["columns"])
    assert EvalCache.key(**reordered) == EvalCache.key(**PARTS)
    assert len(EvalCache.key(**PARTS)) == 64


def test_key_accepts_paths() -> None:
    assert EvalCache.key(path=Path("a/b")) == EvalCache.key(path="a/b")


@pytest.mark.parametrize(
    "damage",
    ["truncate_json", "garble_npy", "delete_npy", "swap_npy", "wrong_layout"],
)
def test_corrupt_entry_is_a_miss_and_is_removed(tmp_path: Path, damage: str) -> None:
    cache = EvalCache(tmp_path)
    key = EvalCache.key(**PARTS)
    cache.put(key, {"ok": True}, np.arange(5, dtype=np.float64))
    meta, npy = tmp_path / f"{key}.json", tmp_path / f"{key}.npy"
    if damage == "truncate_json":
        meta.write_text(meta.read_text()[:10])
    elif damage == "garble_npy":
        npy.write_bytes(b"\x93NUMPY garbage")
    elif damage == "delete_npy":
        npy.unlink()
    elif damage == "swap_npy":  # a well-formed array that is not the one recorded
        np.save(npy, np.arange(5, dtype=np.float64) + 1)
    else:
        meta.write_text('{"format": 1, "record": [], "rows": null}')
    assert cache.get(key) is None
    assert not meta.exists()
    assert not npy.exists()


def test_default_folder_prefers_the_override(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MODEL_BISECT_CACHE_DIR", str(tmp_path / "override"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert EvalCache.default_folder() == tmp_path / "override"


def test_default_folder_uses_xdg_cache_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MODEL_BISECT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert EvalCache.default_folder() == tmp_path / "xdg" / "model-bisect"


def test_default_folder_falls_back_to_home_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MODEL_BISECT_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert EvalCache.default_folder() == tmp_path / ".cache" / "model-bisect"


def test_unwritable_cache_folder_is_an_input_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match="cannot write the evaluation cache"):
        EvalCache(blocker / "cache").put(EvalCache.key(**PARTS), {"ok": True})


def _needs_score(record: dict[str, Any]) -> float:
    return float(record["score"])


@pytest.mark.parametrize(
    "record",
    [{"metrics": {"plcc": 0.9}}, {"score": "high"}, {"score": [1, 2]}],
    ids=["old_shape", "wrong_value", "wrong_type"],
)
def test_record_the_decoder_cannot_read_is_a_miss_and_is_removed(
    tmp_path: Path, record: dict[str, Any]
) -> None:
    cache = EvalCache(tmp_path)
    key = EvalCache.key(**PARTS)
    cache.put(key, record, np.arange(3, dtype=np.float64))
    assert cache.get(key) is not None  # the entry itself is intact
    assert cache.get(key, _needs_score) is None
    assert list(tmp_path.iterdir()) == []


def test_decoder_result_is_returned_with_the_predictions(tmp_path: Path) -> None:
    cache = EvalCache(tmp_path)
    key = EvalCache.key(**PARTS)
    cache.put(key, {"score": 2.5}, np.arange(3, dtype=np.float64))
    hit = cache.get(key, _needs_score)
    assert hit is not None
    assert hit[0] == 2.5
    assert hit[1] is not None
    np.testing.assert_array_equal(hit[1], [0.0, 1.0, 2.0])


@pytest.mark.parametrize(
    "old_metrics",
    [
        {"plcc": 0.99, "srocc": 0.98, "rmse": 0.1},  # written before krocc and n existed
        {"plcc": "0.99", "srocc": 0.98, "krocc": 0.9, "rmse": 0.1, "n": "many"},
        ["plcc", 0.99],
    ],
    ids=["missing_keys", "wrong_types", "not_an_object"],
)
def test_run_with_an_entry_of_an_older_shape_evaluates_and_rewrites_it(
    tmp_path: Path, old_metrics: object
) -> None:
    features, _ = features_parquet(tmp_path / "f.parquet", rows=200)
    timeline_dir(tmp_path / "models", 2, None, weights=default_weights(6))
    entries = from_arguments([str(tmp_path / "models")])
    options = RunOptions(
        gates=(GateSpec("plcc", "min", 0.5),), scan=True, cache=EvalCache(tmp_path / "cache")
    )
    first = run(entries, features, options)
    assert first.evaluations == 2
    entry_files = sorted((tmp_path / "cache").glob("*.json"))
    assert len(entry_files) == 2
    edited = entry_files[0]
    meta = json.loads(edited.read_text(encoding="utf-8"))
    meta["record"]["metrics"] = old_metrics
    edited.write_text(json.dumps(meta), encoding="utf-8")

    second = run(entries, features, options)
    assert second.evaluations == 1  # the edited entry is a miss, the other a hit
    assert [s.cached for s in second.steps].count(False) == 1
    assert [s.metrics for s in second.steps] == [s.metrics for s in first.steps]
    rewritten = json.loads(edited.read_text(encoding="utf-8"))
    assert rewritten["record"]["metrics"] != old_metrics

    third = run(entries, features, options)
    assert third.evaluations == 0


def test_put_replaces_a_symlink_at_the_entry_and_leaves_its_target_alone(tmp_path: Path) -> None:
    cache = EvalCache(tmp_path / "c")
    key = EvalCache.key(**PARTS)
    cache.folder.mkdir()
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"precious")
    (cache.folder / f"{key}.npy").symlink_to(victim)
    (cache.folder / f"{key}.json").symlink_to(tmp_path / "nowhere" / "ghost.json")
    cache.put(key, {"ok": True}, np.ones(3))
    assert victim.read_bytes() == b"precious"
    assert not (tmp_path / "nowhere").exists()
    assert not (cache.folder / f"{key}.npy").is_symlink()
    assert cache.get(key) is not None


@pytest.mark.parametrize("where", ["json", "npy"])
def test_an_entry_that_is_a_symlink_to_a_good_entry_is_a_miss(tmp_path: Path, where: str) -> None:
    cache = EvalCache(tmp_path)
    key, other = EvalCache.key(**PARTS), EvalCache.key(**{**PARTS, "target": "dmos"})
    cache.put(key, {"ok": True}, np.ones(3))
    cache.put(other, {"ok": True}, np.ones(3))
    link = tmp_path / f"{other}.{where}"
    link.unlink()
    link.symlink_to(tmp_path / f"{key}.{where}")
    assert cache.get(other) is None
    assert cache.get(key) is not None, "the link's target is not removed"


def test_a_directory_named_like_an_entry_is_a_miss_and_put_skips_it(tmp_path: Path) -> None:
    cache = EvalCache(tmp_path)
    key = EvalCache.key(**PARTS)
    (tmp_path / f"{key}.json").mkdir()
    assert cache.get(key) is None
    cache.put(key, {"ok": True})
    assert cache.get(key) is None
    assert (tmp_path / f"{key}.json").is_dir()


@pytest.mark.parametrize("edit", ["record", "drop_checksum"])
def test_an_entry_that_fails_its_checksum_is_a_miss(tmp_path: Path, edit: str) -> None:
    cache = EvalCache(tmp_path)
    key = EvalCache.key(**PARTS)
    cache.put(key, {"metrics": {"plcc": 0.42}})
    path = tmp_path / f"{key}.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    if edit == "record":
        meta["record"]["metrics"]["plcc"] = 0.999
    else:
        del meta["checksum"]
    path.write_text(json.dumps(meta), encoding="utf-8")
    assert cache.get(key) is None
    assert not path.exists()
