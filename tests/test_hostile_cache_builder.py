"""Hostile inputs to `python -m cache_builder`: a MANIFEST.json that asks for nonsense, a kill
in the middle of `check`, output paths that are files, FIFOs or the inputs themselves.

Every case ends as exit 3 with one line naming the field or the path, in bounded time, with
the fixture's bytes unchanged and no scratch folder left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cache_builder.actions import SCRATCH_PREFIX
from cache_builder.limits import MAX_MODELS, MAX_ROWS
from model_bisect.exitcodes import ExitCode
from tests.cachekit import source_columns, write_parquet
from tests.clirun import REPO_ROOT, CliRun, call_main, run_module

COMMITTED = REPO_ROOT / "testdata" / "bisect"
TIMEOUT = 120  # seconds: a hang fails the test instead of stalling CI


@pytest.fixture
def fixture_dir(tmp_path: Path) -> Path:
    out = tmp_path / "bisect"
    shutil.copytree(COMMITTED, out)
    return out


def tree_sums(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def refused(done: CliRun, *needles: str) -> str:
    assert done.code == ExitCode.INPUT, (done.out, done.err)
    assert "Traceback" not in done.out + done.err
    lines = done.err.splitlines()
    assert len(lines) == 1, done.err
    assert lines[0].startswith("error: "), done.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def scratch_env(tmp_path: Path) -> dict[str, str]:
    """This interpreter's environment with a private TMPDIR, to see what `check` leaves."""
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(scratch)}


def set_field(manifest: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = manifest
    for key in parents:
        node = node[key]
    node[last] = value


# -- 5. MANIFEST.json values are validated before use ---------------------------------------

HOSTILE_FIELDS = [
    ("origin.rows", -1, "outside 1..1,000,000"),
    ("origin.rows", 0, "outside"),
    ("origin.rows", MAX_ROWS + 1, "outside"),
    ("origin.rows", 10**100, "a 101-digit number"),
    ("origin.rows", 2.5, "must be an integer, not the number 2.5"),
    ("origin.rows", 256.0, "must be an integer"),
    ("origin.rows", True, "must be an integer, not a boolean"),
    ("origin.rows", "256", "must be an integer, not a string"),
    ("origin.rows", None, "must be an integer, not null"),
    ("origin.rows", "@NaN", "must be an integer, not the number nan"),
    ("origin.rows", "@Infinity", "must be an integer, not the number inf"),
    ("origin.rows", "@1e400", "must be an integer, not the number inf"),
    ("origin.models", 1_000_000, "outside 1..100"),
    ("origin.models", MAX_MODELS + 1, "outside"),
    ("origin.models", -3, "outside"),
    ("origin.models", 0, "outside"),
    ("origin.models", False, "must be an integer, not a boolean"),
    ("origin.models", 8.0, "must be an integer"),
    ("origin.seeds.features", -1, "outside"),
    ("origin.seeds.features", 2**64, "outside"),
    ("origin.seeds.features", 1.5, "must be an integer"),
    ("origin.seeds.timeline", "x", "must be an integer"),
    ("origin.seeds.good_weights", True, "must be an integer"),
    ("origin.seeds", [], "must be an object, not a list"),
    ("origin.kind", "alien", "must be 'synthetic', 'source' or 'images'"),
    ("origin", "synthetic", "must be an object"),
    ("artifacts", {"../../etc/passwd": {"sha256": "0" * 64, "size": 1}}, "relative path"),
    ("artifacts", {"/etc/passwd": {"sha256": "0" * 64, "size": 1}}, "relative path"),
    ("artifacts", {"a\x00b": {"sha256": "0" * 64, "size": 1}}, "control characters"),
    ("artifacts.features.parquet", {"sha256": "zz", "size": 1}, "64 lowercase hex"),
    ("artifacts.features.parquet", {"sha256": "0" * 64, "size": -1}, "outside"),
    ("artifacts.features.parquet", {"sha256": "0" * 64, "size": "@NaN"}, "must be an integer"),
    ("toolchain", {"numpy": 2}, "toolchain.numpy must be a string"),
    ("platform", ["Linux"], "must be an object"),
    ("python", 3.11, "must be a string"),
]


def _hostile_manifest(folder: Path, dotted: str, value: Any) -> None:
    path = folder / "MANIFEST.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if dotted.startswith("artifacts.") and dotted != "artifacts":
        manifest["artifacts"][dotted.removeprefix("artifacts.")] = value
    else:
        set_field(manifest, dotted, value)
    text = json.dumps(manifest, indent=2)
    for raw in ("NaN", "Infinity", "1e400"):  # JSON tokens Python only reads, never writes
        text = text.replace(f'"@{raw}"', raw)
    path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(("field", "value", "needle"), HOSTILE_FIELDS)
def test_hostile_manifest_value_is_exit_3_naming_the_field(
    fixture_dir: Path, field: str, value: Any, needle: str
) -> None:
    _hostile_manifest(fixture_dir, field, value)
    before = tree_sums(fixture_dir)
    done = call_main("cache_builder", "check", "--out", fixture_dir)
    line = refused(done, "MANIFEST.json field", needle)
    named = field if not field.startswith("artifacts.") else "artifacts.features.parquet"
    if field not in ("artifacts", "origin"):
        assert named in line
    assert tree_sums(fixture_dir) == before


@pytest.mark.parametrize(("field", "value"), [("origin.rows", -1), ("origin.models", 1_000_000)])
def test_huge_or_negative_counts_stop_a_real_check_before_any_file_is_written(
    fixture_dir: Path, tmp_path: Path, field: str, value: int
) -> None:
    _hostile_manifest(fixture_dir, field, value)
    before = tree_sums(fixture_dir)
    env = scratch_env(tmp_path)
    started = time.monotonic()
    done = run_module("cache_builder", "check", "--out", fixture_dir, env=env, timeout=TIMEOUT)
    refused(done, f"MANIFEST.json field {field} is {value}, outside")
    assert time.monotonic() - started < 30
    assert list((tmp_path / "tmp").iterdir()) == []
    assert tree_sums(fixture_dir) == before


def test_manifest_that_is_special_huge_nested_or_true_format_is_one_line(
    fixture_dir: Path, tmp_path: Path
) -> None:
    manifest = fixture_dir / "MANIFEST.json"
    original = manifest.read_text(encoding="utf-8")
    cases: list[tuple[str, str]] = [
        ("[" * 100_000 + "]" * 100_000, "unreadable manifest"),
        ("[]", "not a format-1 fixture manifest"),
        ('{"format": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "unreadable manifest"),
        (" " * (5 << 20), "larger than"),
        (original.replace('"format": 1', '"format": true'), "not a format-1"),
        ('{"format": 1, "rows": ' + "9" * 5000 + "}", "unreadable manifest"),
    ]
    for text, needle in cases:
        manifest.write_text(text, encoding="utf-8")
        refused(call_main("cache_builder", "check", "--out", fixture_dir), needle)
    manifest.unlink()
    os.mkfifo(manifest)
    done = run_module("cache_builder", "check", "--out", fixture_dir, timeout=TIMEOUT)
    refused(done, "unreadable manifest", "not a regular file")


def test_source_manifest_with_inconsistent_counts_is_refused(fixture_dir: Path) -> None:
    path = fixture_dir / "MANIFEST.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["origin"].update(kind="source", rows=10)
    manifest["origin"]["source"] = {
        "path": "../src.parquet",
        "sha256": "a" * 64,
        "target_column": "mos",
        "rows_read": 12,
        "dropped_rows": 5,
    }
    path.write_text(json.dumps(manifest), encoding="utf-8")
    refused(
        call_main("cache_builder", "check", "--out", fixture_dir),
        "origin.source.dropped_rows plus origin.rows is not rows_read",
    )


# -- 5. scratch folders do not outlive the check --------------------------------------------


def _slow_fixture(fixture_dir: Path) -> None:
    """Ask for a regeneration big enough to be caught in the act."""
    path = fixture_dir / "MANIFEST.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["origin"]["rows"] = MAX_ROWS
    path.write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, ExitCode.INTERRUPTED)],
)
def test_a_check_stopped_by_a_signal_removes_its_scratch_folder(
    fixture_dir: Path, tmp_path: Path, signum: int, code: int
) -> None:
    _slow_fixture(fixture_dir)
    scratch = tmp_path / "tmp"
    process = subprocess.Popen(
        [sys.executable, "-m", "cache_builder", "check", "--out", str(fixture_dir)],
        cwd=REPO_ROOT,
        env=scratch_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not list(scratch.glob(f"{SCRATCH_PREFIX}{process.pid}-*")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no scratch folder appeared"
            time.sleep(0.01)
        process.send_signal(signum)
        _, err = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == code, err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1
    assert list(scratch.iterdir()) == []


def test_a_scratch_folder_a_sigkill_left_is_removed_by_the_next_check(
    fixture_dir: Path, tmp_path: Path
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    env = scratch_env(tmp_path)
    scratch = tmp_path / "tmp"
    abandoned = scratch / f"{SCRATCH_PREFIX}{dead.pid}-abc123"
    (abandoned / "fixture").mkdir(parents=True)
    (abandoned / "fixture" / "features.parquet").write_bytes(b"x" * 1024)
    alive = scratch / f"{SCRATCH_PREFIX}{os.getpid()}-keepme"  # a live process's: kept
    alive.mkdir()
    done = run_module("cache_builder", "check", "--out", fixture_dir, env=env, timeout=TIMEOUT)
    assert done.code == ExitCode.OK, done.err
    assert sorted(p.name for p in scratch.iterdir()) == [alive.name]


# -- 4/5. outputs: regenerate --out, check --json, matrix --out ------------------------------


def test_regenerate_into_a_regular_file_or_fifo_is_refused_and_leaves_it(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n", encoding="utf-8")
    link = tmp_path / "link-to-notes"
    link.symlink_to(notes)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target in (notes, link):
        refused(call_main("cache_builder", "regenerate", "--out", target), "not a folder")
    done = run_module("cache_builder", "regenerate", "--out", fifo, timeout=TIMEOUT)
    refused(done, "not a folder")
    assert notes.read_text(encoding="utf-8") == "mine\n"
    assert link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "link-to-notes", "notes.txt"]


def test_regenerate_through_a_symlinked_folder_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "fixture-link"
    link.symlink_to(real, target_is_directory=True)
    for _ in range(2):  # the second run swaps a fixture that is already there
        done = call_main("cache_builder", "regenerate", "--out", link)
        assert done.code == ExitCode.OK, done.err
    assert link.is_symlink()
    assert (real / "MANIFEST.json").is_file()
    committed = {k: v for k, v in tree_sums(COMMITTED).items() if k != "README.md"}
    assert tree_sums(real) == committed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fixture-link", "real"]


def _user_folder(out: Path, manifest: str | None) -> Path:
    """A folder of the user's own files that merely holds a file named MANIFEST.json."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "important.txt").write_text("do not delete\n", encoding="utf-8")
    (out / "sub").mkdir(exist_ok=True)
    (out / "sub" / "notes.bin").write_bytes(b"\x00mine")
    if manifest is not None:
        (out / "MANIFEST.json").write_text(manifest, encoding="utf-8")
    return out


@pytest.mark.parametrize(
    ("manifest", "needle"),
    [
        ("{}", "MANIFEST.json does not parse"),
        ("not json at all", "MANIFEST.json does not parse"),
        (None, "no MANIFEST.json"),
    ],
    ids=["empty_object", "garbage", "no_manifest"],
)
def test_regenerate_never_replaces_a_folder_that_only_has_a_manifest_name(
    tmp_path: Path, manifest: str | None, needle: str
) -> None:
    out = _user_folder(tmp_path / "mine", manifest)
    before = tree_sums(out)
    done = run_module("cache_builder", "regenerate", "--out", out, timeout=TIMEOUT)
    refused(done, needle)
    assert tree_sums(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no staging left


def test_regenerate_names_the_stray_files_of_a_real_fixture_and_keeps_them(
    fixture_dir: Path, tmp_path: Path
) -> None:
    _user_folder(fixture_dir, None)
    victim = tmp_path / "victim.txt"
    victim.write_text("linked\n", encoding="utf-8")
    (fixture_dir / "models" / "link.onnx").symlink_to(victim)
    before = tree_sums(fixture_dir)
    done = run_module("cache_builder", "regenerate", "--out", fixture_dir, timeout=TIMEOUT)
    refused(done, "does not list important.txt", "models/link.onnx (a symlink)", "sub/notes.bin")
    assert tree_sums(fixture_dir) == before
    assert (fixture_dir / "models" / "link.onnx").is_symlink()


def test_regenerate_into_an_empty_folder_or_the_committed_fixture_copy_works(
    fixture_dir: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (empty, fixture_dir):
        done = call_main("cache_builder", "regenerate", "--out", out)
        assert done.code == ExitCode.OK, done.err
    assert (fixture_dir / "README.md").is_file()  # hand-written prose survives


def test_regenerate_out_root_is_one_line() -> None:
    refused(call_main("cache_builder", "regenerate", "--out", "/"), "root of the file system")


def test_check_with_a_job_summary_onto_the_manifest_leaves_it_and_still_checks(
    fixture_dir: Path,
) -> None:
    manifest = fixture_dir / "MANIFEST.json"
    before = tree_sums(fixture_dir)
    env = {**os.environ, "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(manifest)}
    done = run_module("cache_builder", "check", "--out", fixture_dir, env=env, timeout=TIMEOUT)
    assert done.code == ExitCode.OK, done.err
    assert tree_sums(fixture_dir) == before
    assert "::warning title=model-bisect::GITHUB_STEP_SUMMARY (" in done.out, done.out


def test_check_json_onto_an_input_or_a_directory_is_refused_before_any_work(
    fixture_dir: Path, tmp_path: Path
) -> None:
    before = tree_sums(fixture_dir)
    env = scratch_env(tmp_path)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    cases = {
        fixture_dir / "features.parquet": "would overwrite the input",
        fixture_dir / "MANIFEST.json": "would overwrite the input",
        fixture_dir / "models" / "model_03.onnx": "would overwrite the input",
        tmp_path: "is a directory",
        fixture_dir / "features.parquet" / "x.json": "a folder above it is a file",
        fifo: "FIFO that nothing reads",
    }
    for number, (target, needle) in enumerate(cases.items()):
        argv = ("check", "--out", fixture_dir, "--json", target)
        done = (  # the FIFO, which could hang, and one more in a real process
            run_module("cache_builder", *argv, env=env, timeout=TIMEOUT)
            if target == fifo or number == 0
            else call_main("cache_builder", *argv)
        )
        refused(done, "--json", needle)
        assert done.out == ""  # no table: nothing was regenerated
    assert tree_sums(fixture_dir) == before


def test_matrix_out_onto_a_result_file_is_refused_and_hostile_results_are_unreadable_rows(
    tmp_path: Path,
) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "py3.11-pinned.json").write_text("[" * 100_000 + "]" * 100_000, "utf-8")
    os.mkfifo(results / "py3.11-fifo.json")
    (results / "py3.11-dir.json").mkdir()
    target = results / "py3.11-pinned.json"
    before = target.read_bytes()
    done = run_module("cache_builder", "matrix", results, "--out", target, timeout=TIMEOUT)
    refused(done, "--out would overwrite the input")
    assert target.read_bytes() == before
    summary = tmp_path / "drift-matrix.json"
    done = run_module("cache_builder", "matrix", results, "--out", summary, timeout=TIMEOUT)
    assert done.code == ExitCode.DRIFT, done.err
    assert "Traceback" not in done.err
    rows = json.loads(summary.read_text(encoding="utf-8"))
    text = json.dumps(rows)
    assert text.count("unreadable") >= 3


def test_hostile_source_parquets_are_one_line(tmp_path: Path) -> None:
    names = list(source_columns(40))
    arrays = [pa.array(values) for values in source_columns(40).values()]
    duplicated = tmp_path / "duplicated.parquet"
    pq.write_table(pa.Table.from_arrays([*arrays, arrays[0]], names=[*names, names[0]]), duplicated)
    beyond = write_parquet(
        tmp_path / "beyond-float32.parquet",
        {name: values * 1e300 for name, values in source_columns(40).items()},
    )
    fifo = tmp_path / "fifo.parquet"
    os.mkfifo(fifo)
    cases = {
        duplicated: f"duplicated column names '{names[0]}'",
        beyond: "only 0 usable rows of 40",
        fifo: "not a regular file",
    }
    for source, needle in cases.items():
        out = tmp_path / f"out-{source.stem}"
        done = run_module(
            "cache_builder", "regenerate", "--out", out, "--source-features", source,
            timeout=TIMEOUT,
        )  # fmt: skip
        refused(done, needle)
        assert not out.exists()


# -- texts that look like rich markup are shown as written -----------------------------------


def test_check_of_a_fixture_whose_path_looks_like_markup_prints_it_and_matches(
    tmp_path: Path,
) -> None:
    out = tmp_path / "[" / "]x [bold]"  # the path holds `[/]x`, a closing tag with no opening
    shutil.copytree(COMMITTED, out)
    (out / "[red]stray[bold]").write_text("not an artifact", encoding="utf-8")
    done = run_module("cache_builder", "check", "--out", out, timeout=TIMEOUT)
    assert "Traceback" not in done.err, done.err
    assert done.code == ExitCode.DRIFT, done.err  # the stray artifact is real drift...
    assert "[red]stray[bold]" in done.out  # ...shown by its name
    (out / "[red]stray[bold]").unlink()
    done = run_module("cache_builder", "check", "--out", out, timeout=TIMEOUT)
    assert done.code == ExitCode.OK, done.err
    words = done.out.split()
    assert "[bold]" in words
    assert any(word.endswith("[/]x") for word in words)


def test_matrix_rows_whose_versions_look_like_markup_are_printed_literally(
    tmp_path: Path,
) -> None:
    from cache_builder.drift import DriftReport, Finding, Kind, Require

    results = tmp_path / "results"
    results.mkdir()
    findings = (Finding("[/]x.parquet", Kind.IDENTICAL),)
    current = {"pyarrow": "[/]x", "onnx": "[bold]1.0", "python": "3.11[/]"}
    report = DriftReport(findings, (), dict(current), current).to_json(Require.CONTENT)
    (results / "py3.11-pinned.json").write_text(json.dumps(report), encoding="utf-8")
    done = run_module("cache_builder", "matrix", results, "--out", tmp_path / "m.json")
    assert "Traceback" not in done.err, done.err
    assert done.code == ExitCode.OK, done.err
    for text in ("pyarrow [/]x", "onnx [bold]1.0", "3.11[/]"):
        assert text in done.out


def test_regenerate_into_the_root_folder_is_one_line_exit_3() -> None:
    done = run_module("cache_builder", "regenerate", "--out", "/", timeout=TIMEOUT)
    refused(done, "--out is the root of the file system")
