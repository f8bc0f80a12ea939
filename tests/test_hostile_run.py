"""`model-bisect run` on hostile inputs, through real processes: nothing hangs (every run has a
timeout), nothing is clobbered (inputs are compared by sha256), nothing escapes as a
traceback, and the evaluation cache never answers for other rows, mapping, target or columns.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from model_bisect.engine import MAX_JOBS, RunOptions, run
from model_bisect.evaluation.cache import EvalCache
from model_bisect.evaluation.features import CANONICAL_FEATURES
from model_bisect.exitcodes import JudgeExit
from model_bisect.gates import gate_specs
from model_bisect.report import Report
from model_bisect.timeline.arguments import from_arguments
from tests.clirun import REPO_ROOT, CliRun, call_main, run_module
from tests.hostilekit import (
    Ran,
    assert_one_line_error,
    external_location_model,
    fifo,
    loop_forever_model,
    no_output_model,
    run_cli,
    sha256s,
)
from tests.modelkit import (
    CODEC_BLOCK_WEIGHTS,
    CODEC_LAYOUT,
    IR_VERSION,
    codec_features_parquet,
    codec_regressor,
    features_parquet,
    linear_model,
    published_sidecar,
    sidecar_json,
    timeline_dir,
)

POSIX_ONLY = pytest.mark.skipif(os.name != "posix", reason="needs FIFOs, devices and symlinks")
pytestmark = POSIX_ONLY

GATE = ("--min-plcc", "0.85")
SIX = len(CANONICAL_FEATURES)


@dataclass(frozen=True)
class World:
    folder: Path
    models: list[Path]
    features: Path
    weights: list[float]


@pytest.fixture
def world(tmp_path: Path) -> World:
    features, weights = features_parquet(tmp_path / "features.parquet", rows=200, seed=5)
    good = [float(w) for w in weights]
    models = timeline_dir(tmp_path / "models", 4, None, weights=good, seed=4)
    return World(tmp_path / "models", models, features, good)


def _in_process(*args: str | Path) -> CliRun:
    """`model-bisect run` in this process: for cache semantics, where no input can block."""
    return call_main("model_bisect", "run", *args)


def _report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _scan(world: World, *models: str | Path, extra: tuple[str | Path, ...] = ()) -> Ran:
    out = world.folder.parent / "report.json"
    out.unlink(missing_ok=True)
    return run_cli(*models, "--features", world.features, *GATE, "--scan", "--json", out, *extra)


def _skip_reason(world: World, index: int) -> str:
    body = _report(world.folder.parent / "report.json")
    step = next(s for s in body["steps"] if s["index"] == index)
    assert step["status"] == "skip", step
    reason: str = step["reason"]
    return reason


# --- 1. special files never block ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "dev_zero_link", "dev_null_link"])
def test_a_special_file_as_a_model_is_a_skip_not_a_hang(world: World, kind: str) -> None:
    target = world.models[1]
    target.unlink()
    if kind == "fifo":
        fifo(target)
    else:
        target.symlink_to("/dev/zero" if kind == "dev_zero_link" else "/dev/null")
    ran = _scan(world, *world.models)
    assert "Traceback" not in ran.err
    assert ran.code in (0, 4), ran.err
    reason = _skip_reason(world, 1)
    expected = "a FIFO" if kind == "fifo" else "a character device"
    assert expected in reason
    assert "not a regular file" in reason


@pytest.mark.parametrize("kind", ["fifo", "dev_zero_link"])
def test_a_special_file_as_a_sidecar_is_a_skip_not_a_hang(world: World, kind: str) -> None:
    sidecar = world.models[2].with_suffix(".json")
    if kind == "fifo":
        fifo(sidecar)
    else:
        sidecar.symlink_to("/dev/zero")
    ran = _scan(world, world.folder)
    assert ran.code in (0, 4), ran.err
    assert "sidecar is not a regular file" in _skip_reason(world, 2)


@pytest.mark.parametrize("kind", ["fifo", "dev_zero_inside", "directory"])
def test_a_special_external_data_file_is_a_skip_not_a_hang(world: World, kind: str) -> None:
    model = linear_model(world.models[1], world.weights, external_data=True)
    data = model.with_name(model.name + ".data")
    data.unlink()
    if kind == "fifo":
        fifo(data)
    elif kind == "directory":
        data.mkdir()
    else:  # a device node reached through a link that stays inside the folder
        inner = world.folder / "zero"
        inner.symlink_to("/dev/zero")
        data.symlink_to("zero")
    ran = _scan(world, world.folder)
    assert ran.code in (0, 4), ran.err
    reason = _skip_reason(world, 1)
    assert ("not a regular file" in reason) or ("outside the model's folder" in reason), reason


def test_a_fifo_in_a_model_folder_is_listed_and_skipped(world: World) -> None:
    fifo(world.folder / "model_01b.onnx")
    ran = _scan(world, world.folder)
    assert ran.code in (0, 4), ran.err
    assert "a FIFO" in _skip_reason(world, 2)


def test_a_timeline_entry_naming_a_fifo_is_a_skip(world: World) -> None:
    fifo(world.folder / "pipe.onnx")
    timeline = world.folder / "t.json"
    names = [world.models[0].name, "pipe.onnx", world.models[2].name, world.models[3].name]
    timeline.write_text(json.dumps({"models": names}), encoding="utf-8")
    ran = _scan(world, "--timeline", timeline)
    assert ran.code in (0, 4), ran.err
    assert "a FIFO" in _skip_reason(world, 1)


@pytest.mark.parametrize("kind", ["fifo", "dev_zero_link", "directory"])
def test_features_that_are_not_a_regular_file_are_exit_3(world: World, kind: str) -> None:
    features = world.folder.parent / "special.parquet"
    if kind == "fifo":
        fifo(features)
    elif kind == "directory":
        features.mkdir()
    else:
        features.symlink_to("/dev/zero")
    ran = run_cli(world.folder, "--features", features, *GATE)
    assert_one_line_error(ran, "features path is a")


@pytest.mark.parametrize("kind", ["fifo", "dev_zero_link"])
def test_a_timeline_file_that_is_not_a_regular_file_is_exit_3(world: World, kind: str) -> None:
    timeline = world.folder.parent / "timeline.json"
    if kind == "fifo":
        fifo(timeline)
    else:
        timeline.symlink_to("/dev/zero")
    ran = run_cli("--timeline", timeline, "--features", world.features, *GATE)
    assert_one_line_error(ran, "timeline is not a regular file")


def test_a_huge_sidecar_is_a_skip_with_its_size(world: World) -> None:
    sidecar = world.models[1].with_suffix(".json")
    with sidecar.open("wb") as handle:
        handle.write(b'{"note": "')
        handle.write(b"x" * (5 << 20))
        handle.write(b'"}')
    ran = _scan(world, world.folder)
    assert ran.code in (0, 4), ran.err
    assert "sidecar is larger than" in _skip_reason(world, 1)


# --- 2. no traceback, whatever the input ---------------------------------------------------


@pytest.mark.parametrize(
    ("location", "says"),
    [
        ("weights\x00.bin", "NUL byte"),
        ("w" * 5000, "name too long"),
        ("/".join(["d"] * 2100), "name too long"),
    ],
    ids=["nul", "overlong_name", "overlong_path"],
)
def test_a_hostile_external_data_location_is_a_skip(world: World, location: str, says: str) -> None:
    external_location_model(world.models[2], world.weights, location)
    ran = _scan(world, world.folder)
    assert "Traceback" not in ran.err
    assert ran.code in (0, 4), ran.err
    assert says in _skip_reason(world, 2)


def test_non_utf8_file_names_reach_json_markdown_and_terminal(world: World) -> None:
    raw = os.fsencode(world.models[1])
    hostile = raw.replace(b"model_01", b"model_01_\xff\xfe")
    os.rename(raw, hostile)
    out, md = world.folder.parent / "r.json", world.folder.parent / "r.md"
    ran = run_cli(world.folder, "--features", world.features, *GATE, "--scan")
    assert ran.code == 0, ran.err
    ran = run_cli(
        *(world.folder, "--features", world.features, *GATE, "--scan"),
        *("--json", out, "--markdown", md),
    )
    assert ran.code == 0, ran.err
    labels = [m["label"] for m in _report(out)["timeline"]]
    assert "model_01_\\xff\\xfe.onnx" in labels
    assert "xff" in md.read_text(encoding="utf-8")  # valid UTF-8, the byte shown escaped
    assert "model_01_\\xf" in ran.out  # the table printed it (rich may cut the label)


def test_lone_surrogates_in_timeline_labels_are_escaped_not_fatal(world: World) -> None:
    timeline = world.folder / "t.json"
    text = json.dumps(
        {"models": [{"path": m.name, "label": f"v{i}"} for i, m in enumerate(world.models)]}
    )
    timeline.write_text(text.replace('"v1"', '"v1 \\ud800 \\udfff"'), encoding="utf-8")
    out, md = world.folder.parent / "r.json", world.folder.parent / "r.md"
    ran = run_cli(
        *("--timeline", timeline, "--features", world.features, *GATE, "--scan"),
        *("--json", out, "--markdown", md),
    )
    assert ran.code == 0, ran.err
    assert _report(out)["timeline"][1]["label"] == "v1 \\ud800 \\udfff"
    assert "ud800" in md.read_text(encoding="utf-8")


def test_duplicated_feature_columns_are_exit_3(world: World) -> None:
    table = pq.read_table(world.features)
    arrays = [*table.columns, table.column("adm2")]
    doubled = pa.Table.from_arrays(arrays, names=[*table.column_names, "adm2"])
    features = world.folder.parent / "dup.parquet"
    pq.write_table(doubled, features)
    ran = run_cli(world.folder, "--features", features, *GATE)
    assert_one_line_error(ran, "column 'adm2' appears more than once")


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_a_timeline_nested_100000_levels_deep_is_exit_3(world: World, suffix: str) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    timeline = world.folder / f"deep{suffix}"
    text = f'{{"models": {deep}}}' if suffix == ".json" else f"models = {deep}\n"
    timeline.write_text(text, encoding="utf-8")
    ran = run_cli("--timeline", timeline, "--features", world.features, *GATE)
    assert_one_line_error(ran, "timeline nests too deeply")


def test_a_sidecar_nested_100000_levels_deep_is_a_skip(world: World) -> None:
    sidecar = world.models[1].with_suffix(".json")
    sidecar.write_text('{"features": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    ran = _scan(world, world.folder)
    assert ran.code in (0, 4), ran.err
    assert "nests too deeply" in _skip_reason(world, 1)


def test_a_model_with_no_outputs_is_a_skip_with_that_reason(world: World) -> None:
    no_output_model(world.models[2], SIX)
    ran = _scan(world, world.folder)
    assert ran.code in (0, 4), ran.err
    assert "no outputs" in _skip_reason(world, 2)


@pytest.mark.parametrize("kind", ["a_file", "under_a_file"])
def test_an_unusable_cache_folder_is_exit_3_before_any_work(world: World, kind: str) -> None:
    blocker = world.folder.parent / "blocker"
    blocker.write_text("not a folder")
    folder = blocker if kind == "a_file" else blocker / "cache"
    env = {**os.environ, "MODEL_BISECT_CACHE_DIR": str(folder)}
    out = world.folder.parent / "never.json"
    ran = run_cli(world.folder, "--features", world.features, *GATE, "--json", out, env=env)
    assert_one_line_error(ran, "the evaluation cache folder cannot be used")
    assert not out.exists()
    assert blocker.read_text() == "not a folder"


def test_an_overlong_features_path_is_exit_3(world: World) -> None:
    ran = run_cli(world.folder, "--features", "f" * 5000 + ".parquet", *GATE)
    assert_one_line_error(ran, "features file cannot be opened")


@pytest.mark.parametrize("name", ["new\nline", "esc\x1b[2Jape", "bell\x07"])
def test_a_missing_model_with_control_characters_in_its_name_is_one_line(
    world: World, name: str
) -> None:
    ran = run_cli(world.folder / name, world.models[0], "--features", world.features, *GATE)
    line = assert_one_line_error(ran)  # "model not found", or "glob matches no model file"
    assert "\x1b" not in line
    assert "\x07" not in line


# --- 3. the evaluation cache is never wrong -----------------------------------------------


def _comparable(report: Report) -> dict[str, Any]:
    """The report minus what may differ between a cached and an uncached run."""
    body = report.to_json()
    for step in body["steps"]:
        step.pop("seconds", None)
        step.pop("cached", None)
    body.pop("evaluations", None)
    body["settings"].pop("cache", None)
    if body.get("culprit"):  # whether the boundary came from the search or was run again
        body["culprit"].pop("predictions_from", None)
    return body


def _spotty_features(path: Path, rows: int, nan_rows: dict[str, list[int]]) -> Path:
    rng = np.random.default_rng(11)
    names = ["c0", "c1", "c2", "n0", "n1"]
    x = rng.uniform(0, 1, size=(rows, len(names)))
    columns: dict[str, Any] = {}
    for i, name in enumerate(names):
        values = x[:, i].copy()
        values[nan_rows.get(name, [])] = np.nan
        columns[name] = values.astype(np.float32)
    columns["mos"] = x[:, :3].sum(axis=1) + 0.3 * x[:, 3] + rng.normal(0, 0.05, rows)
    pq.write_table(pa.table(columns), path)
    return path


def _model_with(folder: Path, name: str, columns: list[str], seed: int) -> Path:
    rng = np.random.default_rng(seed)
    model = linear_model(folder / name, [float(w) for w in rng.uniform(0.2, 1.0, len(columns))])
    sidecar_json(model, columns)
    return model


@st.composite
def _cache_cases(
    draw: st.DrawFn,
) -> tuple[dict[str, list[int]], list[list[str]], list[int], list[int]]:
    rows = 24
    nan_rows = {
        name: draw(st.lists(st.integers(0, rows - 1), max_size=6, unique=True))
        for name in ("n0", "n1")
    }
    pool = ["c0", "c1", "c2", "n0", "n1"]
    n = draw(st.integers(3, 4))
    columns = [
        draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True)) for _ in range(n)
    ]
    first = draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=4))
    second = draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=4))
    return nan_rows, columns, first, second


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=_cache_cases(), mapping=st.sampled_from(["none", "linear"]))
def test_a_cached_report_equals_an_uncached_one_for_any_timelines_and_nan_patterns(
    case: tuple[dict[str, list[int]], list[list[str]], list[int], list[int]], mapping: str
) -> None:
    nan_rows, columns, first, second = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        features = _spotty_features(root / "f.parquet", 24, nan_rows)
        models = [
            _model_with(root / "m", f"model_{i}.onnx", cols, seed=i)
            for i, cols in enumerate(columns)
        ]
        cache = EvalCache(root / "cache")
        gates = gate_specs({"plcc": 0.1}, [])

        def report(order: list[int], with_cache: bool) -> Report:
            entries = from_arguments([str(models[i]) for i in order])
            options = RunOptions(
                gates=gates, mapping=mapping, scan=True, cache=cache if with_cache else None
            )
            return run(entries, features, options)

        report(first, True)  # fills the cache with the first timeline's rows
        cached = report(second, True)
        fresh = report(second, False)
        assert _comparable(cached) == _comparable(fresh)


def test_rows_dropped_for_another_models_column_do_not_leak_through_the_cache(
    tmp_path: Path,
) -> None:
    features = _spotty_features(tmp_path / "f.parquet", 60, {"n0": list(range(0, 60, 3))})
    a = _model_with(tmp_path / "m", "a.onnx", ["c0", "c1"], seed=1)
    b = _model_with(tmp_path / "m", "b.onnx", ["c0", "c2"], seed=2)
    spotty = _model_with(tmp_path / "m", "c.onnx", ["n0"], seed=3)
    out = tmp_path / "r.json"

    def rmse(*models: Path, cache: bool = True) -> tuple[float, bool]:
        flags = () if cache else ("--no-cache",)
        ran = _in_process(
            *models, "--features", features, "--min-plcc", "0.1", "--scan", "--json", out, *flags
        )
        assert ran.code in (0, 2), ran.err
        step = _report(out)["steps"][0]
        return step["metrics"]["rmse"], step["cached"]

    rmse(a, b, spotty)  # a is measured on the rows n0 leaves
    value, cached = rmse(a, b)
    truth, _ = rmse(a, b, cache=False)
    assert not cached
    assert value == truth


@pytest.fixture
def cache_world(tmp_path: Path) -> tuple[Path, list[Path]]:
    features, weights = features_parquet(
        tmp_path / "f.parquet",
        rows=150,
        seed=9,
        columns=[*CANONICAL_FEATURES, "extra"],
    )
    table = pq.read_table(features)
    table = table.append_column("dmos", pa.array(table.column("mos").to_numpy() * -10 + 100))
    pq.write_table(table, features)
    six = [float(w) for w in weights[:6]]
    models = timeline_dir(tmp_path / "models", 3, None, weights=six, seed=2)
    return features, models


def _cached_flags(out: Path) -> list[bool]:
    return [bool(s["cached"]) for s in _report(out)["steps"]]


@pytest.mark.parametrize("change", ["mapping", "target", "sidecar_columns"])
def test_changing_one_thing_that_decides_the_metrics_misses_the_cache(
    cache_world: tuple[Path, list[Path]], tmp_path: Path, change: str
) -> None:
    features, models = cache_world
    out = tmp_path / "r.json"
    base: list[str | Path] = [*models, "--features", features, "--min-srocc", "0.5", "--scan"]
    first = _in_process(*base, "--json", out)
    assert first.code == 0, first.err
    again = _in_process(*base, "--json", out)
    assert again.code == 0, again.err
    assert all(_cached_flags(out)), "an unchanged rerun must hit the cache"

    extra: list[str | Path] = []
    if change == "mapping":
        extra = ["--mapping", "linear"]
    elif change == "target":
        extra = ["--target", "dmos", "--min-srocc", "-1"]
    else:
        names = ["adm2", "vif_scale0", "vif_scale1", "vif_scale2", "vif_scale3", "extra"]
        for model in models:
            sidecar_json(model, names)
    changed = _in_process(*base, *extra, "--json", out)
    assert changed.code in (0, 2), changed.err
    assert not any(_cached_flags(out)), f"changing {change} must miss the cache"


def test_a_sidecar_edit_that_keeps_the_columns_still_hits(
    cache_world: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    features, models = cache_world
    out = tmp_path / "r.json"
    names = ["adm2", "vif_scale0", "vif_scale1", "vif_scale2", "vif_scale3", "motion2"]
    for model in models:
        sidecar_json(model, names)
    base: list[str | Path] = [*models, "--features", features, *GATE, "--scan", "--json", out]
    assert _in_process(*base).code == 0
    for model in models:
        model.with_suffix(".json").write_text(json.dumps({"features": names, "note": "edited"}))
    assert _in_process(*base).code == 0
    assert all(_cached_flags(out))


@pytest.mark.parametrize("kind", ["nested_100000_deep", "fifo", "dev_zero_link"])
def test_a_hostile_cache_entry_is_a_miss_not_a_crash_or_a_hang(world: World, kind: str) -> None:
    out = world.folder.parent / "r.json"
    base = (world.folder, "--features", world.features, *GATE, "--scan", "--json", out)
    assert run_cli(*base).code == 0
    cache = Path(os.environ["MODEL_BISECT_CACHE_DIR"])
    entries = sorted(cache.glob("*.json"))
    assert entries
    for entry in entries:
        if kind == "fifo":
            fifo(entry)
        elif kind == "dev_zero_link":
            entry.unlink()
            entry.symlink_to("/dev/zero")
        else:
            entry.write_text("[" * 100_000 + "]" * 100_000)
    ran = run_cli(*base)
    assert ran.code == 0, ran.err
    assert not any(_cached_flags(out))


@pytest.mark.parametrize("plant", ["npy_link_to_a_file", "json_dangling_link", "json_directory"])
def test_a_planted_cache_entry_is_a_miss_and_nothing_is_written_through_it(
    world: World, plant: str
) -> None:
    out = world.folder.parent / "r.json"
    base = (
        world.folder,
        "--features",
        world.features,
        "--max-drop",
        "plcc=0.05",
        "--significance",
        "0.05",
        "--scan",
        "--json",
        out,
    )
    assert run_cli(*base).code == 0
    cache = Path(os.environ["MODEL_BISECT_CACHE_DIR"])
    npys = sorted(cache.glob("*.npy"))
    assert npys, "--significance stores predictions"
    victim = world.folder.parent / "victim.txt"
    victim.write_text("the user's own file\n")
    before = sha256s([victim])
    ghost = world.folder.parent / "ghost"
    for npy in npys:
        meta = npy.with_suffix(".json")
        if plant == "npy_link_to_a_file":
            meta.unlink()
            npy.unlink()
            npy.symlink_to(victim)
        elif plant == "json_dangling_link":
            meta.unlink()
            meta.symlink_to(ghost / meta.name)
        else:
            meta.unlink()
            meta.mkdir()
    ran = run_cli(*base)
    assert ran.code == 0, ran.err
    assert not any(_cached_flags(out))
    assert sha256s([victim]) == before
    assert not ghost.exists()
    for npy in npys:
        meta = npy.with_suffix(".json")
        if plant == "json_directory":
            assert meta.is_dir()  # left alone; the entry stays a miss
        else:
            assert meta.is_file()
            assert not meta.is_symlink()
            assert npy.is_file()
            assert not npy.is_symlink()


def test_a_cache_record_edited_to_pass_is_a_miss_not_an_answer(world: World) -> None:
    weak = [-w for w in world.weights]
    linear_model(world.models[3], weak)
    out = world.folder.parent / "r.json"
    base = (world.folder, "--features", world.features, *GATE, "--scan", "--json", out)
    assert run_cli(*base).code == 0
    assert _report(out)["verdict"]["kind"] == "regression", "the tail must fail the gate"
    cache = Path(os.environ["MODEL_BISECT_CACHE_DIR"])
    for entry in cache.glob("*.json"):
        meta = json.loads(entry.read_text(encoding="utf-8"))
        metrics = meta["record"].get("metrics")
        if isinstance(metrics, dict) and "plcc" in metrics:
            metrics["plcc"] = 0.999
            entry.write_text(json.dumps(meta), encoding="utf-8")
    ran = run_cli(*base)
    assert ran.code == 0, ran.err
    assert _report(out)["verdict"]["kind"] == "regression"
    assert not any(_cached_flags(out))


# --- 4. outputs never clobber --------------------------------------------------------------


def _inputs_world(world: World) -> dict[str, Path]:
    external = linear_model(world.models[3], world.weights, external_data=True)
    sidecar = sidecar_json(
        world.models[2], ["adm2", "vif_scale0", "vif_scale1", "vif_scale2", "vif_scale3", "motion2"]
    )
    timeline = world.folder / "timeline.json"
    timeline.write_text(json.dumps({"models": [m.name for m in world.models]}), encoding="utf-8")
    hard = world.folder.parent / "hard.parquet"
    os.link(world.features, hard)
    soft = world.folder.parent / "soft.parquet"
    soft.symlink_to(world.features)
    return {
        "features": world.features,
        "model": world.models[1],
        "sidecar": sidecar,
        "external_data": external.with_name(external.name + ".data"),
        "timeline": timeline,
        "hard_link_to_features": hard,
        "symlink_to_features": soft,
    }


@pytest.mark.parametrize("flag", ["--json", "--markdown"])
@pytest.mark.parametrize(
    "which",
    [
        "features",
        "model",
        "sidecar",
        "external_data",
        "timeline",
        "hard_link_to_features",
        "symlink_to_features",
    ],
)
def test_an_output_that_is_one_of_the_inputs_is_refused(
    world: World, flag: str, which: str
) -> None:
    inputs = _inputs_world(world)
    before = sha256s({*inputs.values(), *world.models})
    ran = run_cli(
        "--timeline", inputs["timeline"], "--features", world.features, *GATE, flag, inputs[which]
    )
    assert_one_line_error(ran, f"{flag} would overwrite the run's input")
    assert sha256s(before) == before
    assert inputs["symlink_to_features"].is_symlink()


@pytest.mark.parametrize(
    "kind",
    ["directory", "parent_is_a_file", "same_file_twice", "both_stdout", "fifo_nobody_reads"],
)
def test_an_unusable_output_is_exit_3_before_any_work(world: World, kind: str) -> None:
    blocker = world.folder.parent / "plain.txt"
    blocker.write_text("x")
    targets = {
        "directory": ("--json", world.folder),
        "parent_is_a_file": ("--json", blocker / "r.json"),
        "same_file_twice": ("--json", blocker, "--markdown", blocker),
        "both_stdout": ("--json", "-", "--markdown", "-"),
        # Writing the report into it would block forever; it is refused like the others.
        "fifo_nobody_reads": ("--markdown", world.folder.parent / "nobody-reads.md"),
    }[kind]
    if kind == "fifo_nobody_reads":
        fifo(world.folder.parent / "nobody-reads.md")
    cache = Path(os.environ["MODEL_BISECT_CACHE_DIR"])
    # The model folder holds a FIFO: any work at all would report on it; none is done.
    fifo(world.folder / "model_00b.onnx")
    ran = run_cli(world.folder, "--features", world.features, *GATE, *targets)
    assert_one_line_error(ran)
    assert "--json" in ran.err or "--markdown" in ran.err
    assert blocker.read_text() == "x"
    assert not list(cache.glob("*.json")), "no model may be evaluated"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_an_output_in_a_read_only_folder_is_exit_3_before_any_work(world: World) -> None:
    locked = world.folder.parent / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        ran = run_cli(world.folder, "--features", world.features, *GATE, "--json", locked / "r")
        assert_one_line_error(ran, "--json target is in a read-only folder")
    finally:
        locked.chmod(0o755)


def test_an_output_through_a_symlink_keeps_the_link(world: World) -> None:
    real = world.folder.parent / "reports" / "real.json"
    real.parent.mkdir()
    real.write_text("{}")
    link = world.folder.parent / "latest.json"
    link.symlink_to(real)
    ran = run_cli(world.folder, "--features", world.features, *GATE, "--json", link)
    assert ran.code == 0, ran.err
    assert link.is_symlink()
    assert os.readlink(link) == str(real)
    assert _report(real)["verdict"]["kind"] == "no_regression"


def test_new_outputs_get_the_umask_mode(world: World) -> None:
    out, md = world.folder.parent / "r.json", world.folder.parent / "r.md"
    ran = run_cli(
        *(world.folder, "--features", world.features, *GATE, "--json", out, "--markdown", md),
        umask=0o027,
    )
    assert ran.code == 0, ran.err
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert stat.S_IMODE(md.stat().st_mode) == 0o640


@pytest.mark.parametrize("flag", ["--json", "--markdown"])
def test_dash_sends_the_output_to_stdout_and_the_table_to_stderr(world: World, flag: str) -> None:
    ran = run_cli(world.folder, "--features", world.features, *GATE, flag, "-")
    assert ran.code == 0, ran.err
    assert not (world.folder.parent / "-").exists()
    if flag == "--json":
        assert json.loads(ran.out)["verdict"]["kind"] == "no_regression"
    else:
        assert ran.out.startswith("<!--") or "no regression" in ran.out.lower()
    assert world.models[-1].name in ran.err  # the table (the passing tail) moved to stderr


@pytest.mark.skipif(not os.path.islink("/dev/stdout"), reason="/dev/stdout is not a link here")
def test_dev_stdout_as_output_stays_a_device_link(world: World) -> None:
    before = os.lstat("/dev/stdout")
    ran = run_cli(
        world.folder, "--features", world.features, *GATE, "--json", "/dev/stdout", "--quiet"
    )
    assert ran.code == 0, ran.err
    assert json.loads(ran.out)["verdict"]["kind"] == "no_regression"
    after = os.lstat("/dev/stdout")
    assert (stat.S_IFMT(after.st_mode), after.st_ino) == (
        stat.S_IFMT(before.st_mode),
        before.st_ino,
    )


# --- 7. terminal safety --------------------------------------------------------------------


ESCAPES = {
    "csi_clear": "\x1b[2J\x1b[H",
    "osc_title": "\x1b]0;pwned\x07",
    "c1_csi": "\x9b31m",
    "bell_backspace": "\x07\x08\x08",
    "bidi_override": "\u202eexe.onnx",
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_labels_and_reasons_reach_the_terminal_without_escape_sequences(
    world: World, name: str
) -> None:
    code = ESCAPES[name]
    # In a timeline label, in a file name (the label of a folder run), and in a skip reason
    # (a model that cannot run, named after its path).
    timeline = world.folder / "t.json"
    entries = [{"path": m.name, "label": f"m{i}{code}end"} for i, m in enumerate(world.models)]
    timeline.write_text(json.dumps({"models": entries}), encoding="utf-8")
    ran = run_cli("--timeline", timeline, "--features", world.features, *GATE, "--scan")
    assert ran.code == 0, ran.err
    assert all(f"m{i}" in ran.out for i in range(len(world.models)))
    hostile = world.folder / f"model_01{code}.onnx"
    world.models[1].rename(hostile)
    hostile.write_bytes(b"not a model")
    ran2 = run_cli(world.folder, "--features", world.features, *GATE, "--scan")
    assert ran2.code in (0, 4), ran2.err
    assert "invalid ONNX" in ran2.out
    for output in (ran.out, ran.err, ran2.out, ran2.err):
        for char in ("\x1b", "\x07", "\x08", "\x9b", "\u202e"):
            assert char not in output, (name, repr(char))


def test_commit_subjects_reach_the_terminal_without_escape_sequences(tmp_path: Path) -> None:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git not installed")

    repo = tmp_path / "repo"
    repo.mkdir()
    features, weights = features_parquet(tmp_path / "f.parquet", rows=120, seed=1)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t.invalid",
    }
    subprocess.run([git, "init", "-q"], cwd=repo, check=True, env=env)
    for i, subject in enumerate(["first \x1b]0;owned\x07", "second \x1b[2Jclear"]):
        linear_model(repo / "m.onnx", [float(w) + 0.01 * i for w in weights])
        subprocess.run([git, "add", "m.onnx"], cwd=repo, check=True, env=env)
        subprocess.run([git, "commit", "-qm", subject], cwd=repo, check=True, env=env)
    ran = run_cli("--git-path", repo / "m.onnx", "--features", features, *GATE, "--scan")
    assert ran.code == 0, ran.err
    assert "first" in ran.out
    assert "second" in ran.out
    assert "\x1b" not in ran.out
    assert "\x07" not in ran.out


# --- 8. bounded resources ------------------------------------------------------------------


def test_jobs_far_above_the_model_count_is_clamped(world: World) -> None:
    out = world.folder.parent / "r.json"
    ran = run_cli(
        world.folder,
        "--features",
        world.features,
        *GATE,
        "--scan",
        "--jobs",
        "100000",
        "--json",
        out,
    )
    assert ran.code == 0, ran.err
    jobs = _report(out)["settings"]["jobs"]
    assert jobs == min(len(world.models), 4 * (os.cpu_count() or 1), MAX_JOBS)


@pytest.mark.parametrize("usable", [1, 2])
def test_a_feature_cache_with_one_or_two_usable_rows_is_too_few_rows(
    world: World, usable: int
) -> None:
    table = pq.read_table(world.features).slice(0, 5)
    mos = table.column("mos").to_numpy().copy()
    mos[usable:] = np.nan
    table = table.set_column(table.column_names.index("mos"), "mos", pa.array(mos))
    small = world.folder.parent / "small.parquet"
    pq.write_table(table, small)
    ran = run_cli(world.folder, "--features", small, *GATE)
    assert_one_line_error(ran, "too few rows")


def test_a_label_that_looks_like_rich_markup_is_shown_literally_on_the_progress_line(
    world: World,
) -> None:
    import pty

    timeline = world.folder / "t.json"
    # The last model's label is on screen when the progress line is drawn for the last time.
    labels = ["[/]", "[bold]open", "\\[/]", "[link=https://example.invalid]click"]
    entries = [{"path": m.name, "label": lab} for m, lab in zip(world.models, labels, strict=True)]
    timeline.write_text(json.dumps({"models": entries}), encoding="utf-8")
    leader, follower = pty.openpty()  # stderr is a terminal: the progress line is drawn
    seen = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "model_bisect", "run", "--timeline", timeline),
                *("--features", world.features, *GATE, "--scan"),
            ],
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=90,
            check=False,
            cwd=Path(__file__).resolve().parent.parent,
        )
    finally:
        os.close(follower)
    reader.join(timeout=5)
    os.close(leader)
    assert done.returncode == 0, bytes(seen).decode("utf-8", "replace")
    assert b"Traceback" not in seen
    assert b"MarkupError" not in seen
    assert b"\x1b]8;" not in seen  # a label became a terminal hyperlink
    assert b"[link=https://example.invalid]click" in seen


def test_a_sidecar_naming_thousands_of_missing_columns_keeps_messages_short(
    world: World,
) -> None:
    for model in world.models:
        sidecar_json(model, [f"no_such_column_{i:05d}" for i in range(5000)])
    ran = run_cli(world.folder, "--features", world.features, *GATE)
    line = assert_one_line_error(ran, "missing feature columns no_such_column_00000")
    assert "and 4988 more" in line
    assert len(line) < 2000
    sidecar_json(world.models[1], [f"no_such_column_{i:05d}" for i in range(5000)])
    for model in (world.models[0], world.models[2], world.models[3]):
        model.with_suffix(".json").unlink()
    ran = _scan(world, world.folder)
    assert ran.code in (0, 4), ran.err
    reason = _skip_reason(world, 1)
    assert "and 4988 more" in reason
    assert len(reason) < 2000


def test_json_to_stdout_inside_actions_keeps_stdout_one_json_document(
    world: World, tmp_path: Path
) -> None:
    # Models that all fail (a bad head) give Actions something to annotate; its lines must
    # not join the JSON.
    for model in world.models:
        linear_model(model, [-w for w in world.weights])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GH_", "GITHUB_"))}
    (tmp_path / "runner-temp").mkdir()
    env.update(
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(tmp_path / "output"),
        GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"),
        RUNNER_TEMP=str(tmp_path / "runner-temp"),
    )
    ran = run_cli(world.folder, "--features", world.features, *GATE, "--json", "-", env=env)
    assert ran.code == 2, ran.err
    assert json.loads(ran.out)["verdict"]["kind"] == "head_bad"
    assert "::" in ran.err  # the workflow commands went to stderr with the table
    report_line = next(
        line for line in (tmp_path / "output").read_text().splitlines() if "runner-temp" in line
    )
    assert report_line.endswith(".json")


# --- 5. nothing foreign reaches our streams raw ---------------------------------------------

FORGED = "evil\x1b]0;PWNED\x07\x1b[2J\n::error title=forged::x\n::add-mask::secret"


def _forged_node_model(path: Path, n_features: int) -> Path:
    """Loads, then fails inside ONNX Runtime at its Reshape node, whose name is ``FORGED``:
    ORT's own logger and its exception both quote that name."""
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [7, 5])
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["input", "shape"], ["r"], name=FORGED),
            helper.make_node("ReduceSum", ["r"], ["score"], keepdims=0),
        ],
        "forged",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", n_features])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, None)],
        [shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = IR_VERSION
    onnx.save(model, path)
    return path


def _commands(*streams: str) -> list[str]:
    """Lines a GitHub runner would read as workflow commands (leading whitespace trimmed)."""
    return [
        line
        for text in streams
        for line in text.replace("\r", "\n").split("\n")
        if line.lstrip().startswith("::")
    ]


def _judge(*args: str | Path, env: dict[str, str] | None = None) -> Ran:
    done = subprocess.run(
        [sys.executable, "-m", "model_bisect", "judge", *map(str, args)],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=90,
        check=False,
        env=env,
    )
    return Ran(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
        done.stdout,
    )


def test_a_node_name_forging_commands_reaches_no_stream_of_run_or_judge(world: World) -> None:
    forged = _forged_node_model(world.models[3], SIX)
    ran = _scan(world, world.folder, extra=("--no-cache",))
    assert ran.code == 4, ran.err  # inconclusive: the tail could not be tested
    judged = _judge(forged, "--features", world.features, *GATE, "--no-cache")
    assert judged.code == 125, judged.err  # an untestable model: git bisect skip
    for streams in ((ran.out, ran.err), (judged.out, judged.err)):
        assert _commands(*streams) == []
        assert not any("\x1b" in s or "\x07" in s or "PWNED" in s for s in streams)
    assert "Reshape" in _skip_reason(world, 3)  # the reason survives, made printable
    assert "\x1b" not in _skip_reason(world, 3)


@pytest.mark.parametrize("where", ["file_name", "timeline_label"])
def test_untrusted_text_never_starts_a_line_with_a_command_at_80_columns(
    world: World, where: str
) -> None:
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    out = world.folder.parent / "report.json"
    if where == "file_name":
        for i, model in enumerate(world.models):  # the verdict line wraps right before `::`
            padding = "retrain " + "a" * 33
            model.rename(world.folder / f"{i}{padding} ::error title=forged::injected.onnx")
        args: tuple[str | Path, ...] = (world.folder,)
    else:
        timeline = world.folder / "timeline.json"
        labels = [
            "::set-output name=verdict::no_regression",
            "retrain " + "a" * 70 + " ::error::injected",
            "x " * 30 + "::add-mask::hidden",
            "\n::error::newline",
        ]
        entries = [
            {"path": m.name, "label": lab} for m, lab in zip(world.models, labels, strict=True)
        ]
        timeline.write_text(json.dumps({"models": entries}), encoding="utf-8")
        args = ("--timeline", timeline)
    ran = run_cli(*args, "--features", world.features, *GATE, "--scan", "--json", out, env=env)
    assert ran.code == 0, ran.err
    assert "injected" in ran.out or "verdict" in ran.out  # the text is shown, only inert
    assert _commands(ran.out, ran.err) == []


# --- 6. $GITHUB_OUTPUT / $GITHUB_STEP_SUMMARY naming an input ------------------------------


@pytest.mark.parametrize("variable", ["GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"])
@pytest.mark.parametrize("which", ["features", "model", "report"])
def test_an_actions_file_that_is_an_input_is_left_alone_and_the_run_goes_on(
    world: World, variable: str, which: str
) -> None:
    out = world.folder.parent / "report.json"
    out.write_text("{}", encoding="utf-8")
    target = {"features": world.features, "model": world.models[1], "report": out}[which]
    other = "GITHUB_STEP_SUMMARY" if variable == "GITHUB_OUTPUT" else "GITHUB_OUTPUT"
    env = {
        **os.environ,
        "GITHUB_ACTIONS": "true",
        variable: str(target),
        other: str(world.folder.parent / "other.txt"),
    }
    before = sha256s([world.features, *world.models])
    ran = run_cli(world.folder, "--features", world.features, *GATE, "--json", out, env=env)
    assert ran.code == 0, ran.err
    assert sha256s(before) == before
    assert _report(out)["verdict"]["kind"] == "no_regression"  # the report is whole
    warnings = [line for line in ran.out.splitlines() if line.startswith("::warning")]
    assert any(f"{variable} (" in w and "one of this step" in w for w in warnings), ran.out
    assert (world.folder.parent / "other.txt").stat().st_size > 0  # the other one still written


def test_a_commit_subject_forging_commands_never_starts_a_line_in_a_git_path_run(
    world: World,
) -> None:
    from tests.repokit import git

    repo = world.folder.parent / "repo"
    (repo / "models").mkdir(parents=True)
    git(repo, "init", "-q")
    for i, subject in enumerate(
        ["retrain " + "a" * 70 + " ::error::injected", "::set-output name=verdict::bad", "plain"]
    ):
        linear_model(repo / "models" / "m.onnx", [w + i * 0.01 for w in world.weights])
        git(repo, "add", "models")
        git(repo, "commit", "-q", "-m", subject)
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    out = world.folder.parent / "report.json"
    ran = run_cli(
        "--git-path", repo / "models" / "m.onnx", "--features", world.features, *GATE,
        "--scan", "--json", out, env=env, cwd=repo,
    )  # fmt: skip
    assert ran.code == 0, ran.err
    assert "injected" in ran.out
    assert _commands(ran.out, ran.err) == []


# --- every per-model failure is that model's skip (run) and 125 (judge) ---------------------


Scaler = dict[str, list[float]]


def _codec_model(path: Path, scaler: Scaler, layout: list[str] | None = None) -> Path:
    """A two-input codec regressor with a published sidecar; ``layout`` replaces its codec
    block (a one-column block, so the graph still fits it)."""
    block = list(CODEC_LAYOUT) if layout is None else layout
    weights = CODEC_BLOCK_WEIGHTS if layout is None else [0.5] * len(layout)
    model = codec_regressor(path, block_weights=weights)
    published_sidecar(
        model,
        input_names=["features", "codec"],
        feature_order=list(CANONICAL_FEATURES),
        codec_block_layout=block,
        **scaler,
    )
    return model


def _non_utf8_location(path: Path, _: Scaler) -> Path:
    external_location_model(path, [1.0] * SIX, "wxyz.data")
    path.write_bytes(path.read_bytes().replace(b"wxyz.data", b"w\xff\xfez.data"))
    return path


def _huge_mean(path: Path, _: Scaler) -> Path:
    model = linear_model(path, [1.0] * SIX)
    published_sidecar(
        model,
        feature_order=list(CANONICAL_FEATURES),
        feature_mean=[10**400] + [0] * (SIX - 1),
        feature_std=[1] * SIX,
    )
    return model


def _dangling_sidecar(path: Path, _: Scaler) -> Path:
    model = linear_model(path, [1.0] * SIX)
    model.with_suffix(".json").symlink_to(path.parent / "gone.json")
    return model


_UNTESTABLE: dict[str, tuple[Callable[[Path, Scaler], Path], str]] = {
    "non_utf8_external_location": (_non_utf8_location, "not valid UTF-8"),
    "sidecar_mean_of_400_digits": (_huge_mean, "too large for a float"),
    "onehot_of_a_numeric_feature": (
        lambda p, s: _codec_model(p, s, ["crf_norm_onehot[1]"]),
        "'crf_norm' is float, not a string column",
    ),
    "onehot_of_the_target": (
        lambda p, s: _codec_model(p, s, ["mos_onehot[3]"]),
        "'mos' is double, not a string column",
    ),
    "onehot_of_motion2": (
        lambda p, s: _codec_model(p, s, ["motion2_onehot[1]"]),
        "'motion2' is float, not a string column",
    ),
    "string_column_fed_as_a_number": (
        lambda p, s: _codec_model(p, s, ["encoder"]),
        "'encoder' is string, not numeric",
    ),
    "dangling_sidecar_symlink": (_dangling_sidecar, "sidecar is a symlink to a missing file"),
}


@pytest.mark.parametrize("case", sorted(_UNTESTABLE))
def test_an_untestable_model_is_a_skip_in_run_and_125_in_judge(tmp_path: Path, case: str) -> None:
    make, says = _UNTESTABLE[case]
    features, mean, std = codec_features_parquet(tmp_path / "codec.parquet", rows=200)
    scaler = {"feature_mean": mean, "feature_std": std}
    folder = tmp_path / "models"
    folder.mkdir()
    models = [_codec_model(folder / f"m{i}.onnx", scaler) for i in range(4)]
    models[1].unlink()
    models[1].with_suffix(".json").unlink()
    make(models[1], scaler)
    out = tmp_path / "report.json"
    ran = run_cli(*models, "--features", features, "--min-plcc", "0.5", "--scan", "--json", out)
    assert "Traceback" not in ran.err, ran.err
    assert ran.code == 0, ran.err
    steps = {s["index"]: s for s in _report(out)["steps"]}
    assert steps[1]["status"] == "skip", steps[1]
    assert says in steps[1]["reason"]
    assert [steps[i]["status"] for i in (0, 2, 3)] == ["good"] * 3
    judged = run_module("model_bisect", "judge", models[1], "--features", features, *GATE)
    assert "Traceback" not in judged.err, judged.err
    assert judged.code == JudgeExit.SKIP, (judged.code, judged.out, judged.err)
    assert judged.out.startswith("skip: ")
    assert says in judged.out


def test_an_empty_model_argument_is_refused_not_read_as_the_current_folder(world: World) -> None:
    ran = run_cli("", world.models[0], "--features", world.features, *GATE, cwd=world.folder)
    assert_one_line_error(ran, "an empty MODEL argument")


# --- bounds: name lists are checked in linear time -----------------------------------------

# A duplicate check of list.count per name took 31 s for 40,000 names; these lists would take
# an hour. Linear, each run is a couple of seconds: the timeout is a generous bound, not a
# measurement.
NAME_LIST_TIMEOUT = 60.0


def test_a_sidecar_of_380000_distinct_names_is_checked_in_linear_time(world: World) -> None:
    names = [f"n{i}" for i in range(380_000)]
    sidecar = world.models[1].with_suffix(".json")
    sidecar.write_text(json.dumps({"features": names}, separators=(",", ":")), encoding="utf-8")
    assert sidecar.stat().st_size < 4 << 20  # under the read bound: it is parsed, not refused
    ran = run_cli(
        *world.models, "--features", world.features, *GATE, "--scan", "--json",
        world.folder.parent / "report.json", timeout=NAME_LIST_TIMEOUT,
    )  # fmt: skip
    assert ran.code == 0, ran.err
    assert "needs feature columns 'n0'" in _skip_reason(world, 1)


def test_a_timeline_inputs_table_of_60000_names_is_checked_in_linear_time(world: World) -> None:
    columns = ", ".join(f'"c{i}"' for i in range(60_000))
    entries = [f'[[models]]\npath = "{model}"\n' for model in world.models]
    entries[1] += f"inputs = {{ input = [{columns}] }}\n"
    timeline = world.folder.parent / "timeline.toml"
    timeline.write_text("".join(entries), encoding="utf-8")
    out = world.folder.parent / "report.json"
    ran = run_cli(
        "--timeline", timeline, "--features", world.features, *GATE, "--scan", "--json", out,
        timeout=NAME_LIST_TIMEOUT,
    )  # fmt: skip
    assert ran.code == 0, ran.err
    assert "needs feature columns 'c0'" in _skip_reason(world, 1)
    # ...and a repeat at the very end of the list is still found.
    timeline.write_text("".join(entries).replace(f'"c{59_999}"', '"c0"'), encoding="utf-8")
    ran = run_cli(
        "--timeline", timeline, "--features", world.features, *GATE, "--scan",
        timeout=NAME_LIST_TIMEOUT,
    )  # fmt: skip
    assert_one_line_error(ran, "")
    assert "repeats 'c0'" in ran.err


# --- bounds: a model whose inference never ends is stopped and skipped ---------------------

# Generous for two shared CPUs: without the bound the Loop model would run for days.
NEVER_ENDS = 120.0


def test_a_model_that_would_run_for_days_is_stopped_and_skipped(world: World) -> None:
    world.models[1].unlink()
    loop_forever_model(world.models[1], SIX)
    out = world.folder.parent / "report.json"
    ran = run_cli(
        *world.models, "--features", world.features, *GATE, "--scan", "--json", out,
        "--model-timeout", "2", timeout=NEVER_ENDS,
    )  # fmt: skip
    assert "Traceback" not in ran.err, ran.err
    assert ran.code == 0, ran.err
    assert "took longer than 2 s" in _skip_reason(world, 1)
    steps = {s["index"]: s["status"] for s in _report(out)["steps"]}
    assert [steps[i] for i in (0, 2, 3)] == ["good"] * 3
    judged = run_module(
        "model_bisect", "judge", world.models[1], "--features", world.features, *GATE,
        "--model-timeout", "2", timeout=NEVER_ENDS,
    )  # fmt: skip
    assert judged.code == JudgeExit.SKIP, (judged.out, judged.err)
    assert "took longer than 2 s" in judged.out


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0", "must be above 0, not 0"),
        ("-1", "must be above 0, not -1"),
        ("-0", "must be above 0, not -0"),
        ("inf", "must be finite and above 0, not inf"),
        ("nan", "must be finite and above 0, not nan"),
    ],
)
def test_a_model_timeout_that_is_not_a_positive_number_is_exit_3(
    world: World, value: str, problem: str
) -> None:
    ran = run_cli(*world.models, "--features", world.features, *GATE, "--model-timeout", value)
    line = assert_one_line_error(ran, f"--model-timeout {problem}")
    assert line.endswith(" in model-bisect run: use e.g. --model-timeout 600"), line


# --- a model beyond protobuf's bound is refused on its size, before any read ---------------


def test_a_3_gib_model_is_refused_on_its_size_without_reading_it(world: World) -> None:
    import tracemalloc

    from model_bisect.evaluation.onnxfile import MAX_MODEL_BYTES
    from model_bisect.files import TooLargeError, read_bytes_bounded

    huge = world.models[1]
    with huge.open("r+b") as handle:  # sparse: 3 GiB of size, no blocks on disk
        handle.truncate(3 << 30)
    tracemalloc.start()
    try:
        with pytest.raises(TooLargeError):
            read_bytes_bounded(huge, MAX_MODEL_BYTES)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # reading up to the bound first would have held 2 GiB
    ran = _scan(world, *world.models)
    assert ran.code == 0, ran.err
    assert "2 GiB or larger" in _skip_reason(world, 1)


def test_a_subnormal_sidecar_std_is_a_skip_with_its_reason_and_no_numpy_warning(
    world: World,
) -> None:
    published_sidecar(
        world.models[1],
        feature_order=list(CANONICAL_FEATURES),
        feature_mean=[0.0] * SIX,
        feature_std=[1.0] * (SIX - 1) + [1e-45],
    )
    ran = _scan(world, *world.models)
    assert ran.code == 0, ran.err
    assert "RuntimeWarning" not in ran.err
    assert "below 1.2e-38 (float32's smallest normal number) at position 5" in _skip_reason(
        world, 1
    )


@pytest.mark.parametrize("command", ["run", "publish"])
def test_an_empty_marker_is_refused_not_replaced_by_nightly(world: World, command: str) -> None:
    report = world.folder.parent / "report.json"
    if command == "run":
        args: tuple[str | Path, ...] = (*world.models, "--features", world.features, *GATE)
    else:
        assert _scan(world, *world.models).code == 0
        args = ("--dry-run", "--report", report)
    done = run_module("model_bisect", command, *args, "--marker", "")
    assert "Traceback" not in done.err
    assert done.code == 3, done.err
    assert done.err.startswith("error: invalid marker key ''")


# --- a SIGTERM removes the temporary copies of --git-path versions -------------------------


def test_sigterm_during_a_git_path_run_removes_its_temporary_folder(world: World) -> None:
    import signal
    import time

    from tests.repokit import git

    repo = world.folder.parent / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    model = repo / "m.onnx"
    for step in range(3):  # the newest, probed first, runs until --model-timeout stops it
        if step < 2:
            linear_model(model, [w + 0.01 * step for w in world.weights])
        else:
            loop_forever_model(model, SIX)
        git(repo, "add", "m.onnx")
        git(repo, "commit", "-q", "-m", f"step {step}")
    scratch = world.folder.parent / "tmp"
    scratch.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "model_bisect", "run", "--git-path", str(model),
         "--features", str(world.features), *GATE, "--model-timeout", "5", "--quiet"],
        cwd=repo, env={**os.environ, "TMPDIR": str(scratch)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + NEVER_ENDS
        while not list(scratch.glob("model-bisect-*")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no temporary folder appeared"
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=NEVER_ENDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert "error: terminated by SIGTERM" in err
    assert list(scratch.iterdir()) == []


# --- a token of any shape, in a label, never reaches run's outputs -------------------------


def test_a_token_that_is_not_github_shaped_is_masked_in_every_output_of_run(
    world: World,
) -> None:
    token = "s3cr3t-of-no-known-shape-42"
    entries = [
        f'[[models]]\npath = "{model}"\nlabel = "retrain {token} #{i}"\n'
        for i, model in enumerate(world.models)
    ]
    timeline = world.folder.parent / "timeline.toml"
    timeline.write_text("".join(entries), encoding="utf-8")
    out, markdown = world.folder.parent / "r.json", world.folder.parent / "r.md"
    env = {**os.environ, "GH_TOKEN": token, "COLUMNS": "200"}
    ran = run_cli(
        "--timeline", timeline, "--features", world.features, *GATE, "--scan",
        "--json", out, "--markdown", markdown, env=env,
    )  # fmt: skip
    assert ran.code == 0, ran.err
    for text in (ran.out, ran.err, out.read_text("utf-8"), markdown.read_text("utf-8")):
        assert token not in text
    labels = [ref["label"] for ref in _report(out)["timeline"]]
    assert labels == [f"retrain *** #{i}" for i in range(len(world.models))]
