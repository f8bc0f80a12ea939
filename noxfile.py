"""Nox owns the environments: the pinned toolchain (drift, regenerate) and the drift matrix.

Every session delegates to the package (`python -m cache_builder ...`, `pytest`, ...); the
versions live in constraints/, never here.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path

import nox

# uv installs without compiling bytecode, and environments that set PYTHONDONTWRITEBYTECODE
# never cache it: every run would then recompile scipy and pandas (seconds of start-up that
# the benchmark would measure as the tool's own).
os.environ.setdefault("UV_COMPILE_BYTECODE", "1")

# uv when it can be found (nox also looks for the `uv` package installed beside itself, which
# is how the dev extra provides it), plain virtualenv otherwise.
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint", "drift"]
# The drift matrix names Python 3.11-3.13; an interpreter that is absent here is skipped, not
# downloaded (only the package registries are reachable, and CI's setup-python picks one).
nox.options.error_on_missing_interpreters = False
nox.options.download_python = "never"

TOOLCHAIN = "constraints/toolchain.txt"
MATRIX_PINS = Path("constraints/drift-matrix")
MATRIX_RESULTS = Path("bisect-out/drift-matrix")
MATRIX_SUMMARY = "drift-matrix.json"
MATRIX_PYTHONS = ["3.11", "3.12", "3.13"]
# The covering matrix, one requirements file each in constraints/drift-matrix/: pyarrow majors
# 18, 21, 24 and 26 (+ newest), pandas 2.2, 2.3, 3.0 and 3.1, onnx 1.21, 1.22 and 1.23, all with
# wheels for Python 3.11-3.13. `latest` installs the newest releases with --upgrade.
DRIFT_MATRIX = [
    "arrow18-pandas2.2-onnx1.21",
    "arrow21-pandas2.3-onnx1.22",
    "arrow24-pandas3.0-onnx1.23",
    "pinned",
    "latest",
]


def _workflows() -> list[str]:
    return sorted(str(path) for path in Path(".github/workflows").glob("*.yml"))


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite; arguments after `--` go to pytest."""
    session.install("-c", TOOLCHAIN, "-e", ".[dev]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (check and format), mypy --strict, and actionlint over the workflows."""
    session.install("-c", TOOLCHAIN, "-e", ".[dev]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("actionlint", *_workflows())


@nox.session
def drift(session: nox.Session) -> None:
    """Check testdata/bisect and testdata/bisect-images byte for byte under the pinned toolchain."""
    # Arguments after `--` go to one check instead: `invoke check` passes `--out` and `--json`.
    session.install("-r", TOOLCHAIN, "-c", TOOLCHAIN, "-e", ".")
    folders: list[list[str]] = (
        [[]] if session.posargs else [[], ["--out", "testdata/bisect-images"]]
    )
    for folder in folders:
        session.run("python", "-m", "cache_builder", "check", "--require", "bytes",
                    *folder, *session.posargs)  # fmt: skip


@nox.session(default=False)
def regenerate(session: nox.Session) -> None:
    """Rewrite testdata/bisect under the pinned toolchain."""
    session.install("-r", TOOLCHAIN, "-c", TOOLCHAIN, "-e", ".")
    session.run("python", "-m", "cache_builder", "regenerate", *session.posargs)


@nox.session(python=MATRIX_PYTHONS, default=False)
@nox.parametrize("combo", DRIFT_MATRIX)
def drift_matrix(session: nox.Session, combo: str) -> None:
    """Classify the fixture's drift under one library combination (`-- --out DIR` for a copy)."""
    result = MATRIX_RESULTS / f"py{session.python}-{combo}.json"
    result.unlink(missing_ok=True)
    session.notify("drift_matrix_summary")
    upgrade = ["--upgrade"] if combo == "latest" else []
    session.install(*upgrade, "-r", str(MATRIX_PINS / f"{combo}.txt"), "-e", ".")
    session.run(
        "python", "-m", "cache_builder", "check", "--require", "content",
        "--json", str(result), *session.posargs,
    )  # fmt: skip


@nox.session(default=False)
def drift_matrix_summary(session: nox.Session) -> None:
    """Tabulate the drift matrix results and write drift-matrix.json."""
    session.install("-c", TOOLCHAIN, "-e", ".")
    session.run(
        "python", "-m", "cache_builder", "matrix", str(MATRIX_RESULTS),
        "--out", MATRIX_SUMMARY, "--combos", *DRIFT_MATRIX,
    )  # fmt: skip


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Benchmark model-bisect alone, against benchmarks/baseline.py and on images (`--only`)."""
    # Installed as users install it (not editable: byte-compiled like every dependency), and
    # pandas for benchmarks/baseline.py only: model-bisect itself never imports it.
    session.install("-c", TOOLCHAIN, ".", "pandas")
    session.run("python", "benchmarks/bench.py", *session.posargs)


# What the wheel must carry: every module and py.typed of both packages, read from the source
# tree so that a new subpackage is covered without editing this list.
PACKAGES = ("model_bisect", "cache_builder")
# What the sdist must carry besides: the folders its own test suite reads.
SDIST_TREES = (*PACKAGES, "tests", "testdata", "constraints")
SDIST_FILES = ("LICENSE", "README.md", "pyproject.toml", "noxfile.py", "tasks.py")


def _tracked_files(root: Path, trees: tuple[str, ...]) -> set[str]:
    found = set()
    for tree in trees:
        for path in (root / tree).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                found.add(path.relative_to(root).as_posix())
    return found


def _check_dists(session: nox.Session, dist: Path) -> tuple[Path, str]:
    """The wheel and its version, after checking that wheel and sdist hold what they must."""
    root = Path(__file__).resolve().parent
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = set(archive.namelist())
        (metadata,) = (n for n in in_wheel if n.endswith(".dist-info/METADATA"))
        version = next(
            line.split(":", 1)[1].strip()
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Version:")
        )
    missing = sorted(_tracked_files(root, PACKAGES) - in_wheel)
    if not any(name.endswith(".dist-info/licenses/LICENSE") for name in in_wheel):
        missing.append("LICENSE")
    if missing:
        session.error(f"{wheel.name} lacks {', '.join(missing)}")
    with tarfile.open(sdist) as archive:
        prefix = archive.getnames()[0].split("/")[0]
        in_sdist = {name.removeprefix(prefix + "/") for name in archive.getnames()}
    missing = sorted((_tracked_files(root, SDIST_TREES) | set(SDIST_FILES)) - in_sdist)
    if missing:
        session.error(f"{sdist.name} lacks {', '.join(missing)}")
    return wheel, version


# Tests and README use editable installs, which put the source tree on sys.path and so hide a
# module or a dependency that the wheel lacks; `wheel` sees what a user sees.
@nox.session(default=False)
def wheel(session: nox.Session) -> None:
    """Build wheel and sdist, install the wheel outside the repository, and use both CLIs."""
    root = Path(__file__).resolve().parent
    session.install("build", "uv")
    scratch = Path(tempfile.mkdtemp(prefix="model-bisect-wheel-")).resolve()
    if scratch.is_relative_to(root):
        session.error(f"{scratch} is inside the repository; set TMPDIR elsewhere")
    try:
        dist, venv, work = scratch / "dist", scratch / "venv", scratch / "work"
        session.run(
            "python", "-m", "build", "--installer", "uv", "--outdir", str(dist), str(root),
            silent=True,
        )  # fmt: skip
        wheel_file, version = _check_dists(session, dist)
        session.log(f"{wheel_file.name} and its sdist hold every package file (version {version})")

        session.run(
            "uv", "venv", "--quiet", "--python", str(Path(session.bin) / "python"), str(venv)
        )
        python = str(venv / "bin" / "python")
        session.run(
            "uv", "pip", "install", "--quiet", "--python", python,
            "-c", str(root / TOOLCHAIN), str(wheel_file), silent=True,
        )  # fmt: skip
        shutil.copytree(root / "testdata" / "bisect", work / "fixture")
        # No PYTHONPATH and a working directory outside the repository: only the wheel is
        # importable. No token either: --dry-run must not need one.
        env = {"PYTHONPATH": None, "GH_TOKEN": None, "GITHUB_TOKEN": None}

        def installed(*args: str) -> str:
            output = session.run(*args, env=env, external=True, silent=True)
            session.log(str(output).strip())
            return str(output)

        def expect(condition: bool, problem: str) -> None:
            if not condition:
                session.error(problem)

        with session.chdir(work):
            where = installed(python, "-c", "import model_bisect; print(model_bisect.__file__)")
            expect(Path(where.strip()).is_relative_to(venv), f"model_bisect came from {where}")
            cli = str(venv / "bin" / "model-bisect")
            shown = installed(cli, "--version").strip()
            expect(shown == f"model-bisect {version}", f"model-bisect --version said {shown!r}")
            shown = installed(python, "-m", "cache_builder", "--version").strip()
            expect(shown.endswith(version), f"cache_builder --version said {shown!r}")
            builder = str(venv / "bin" / "cache-builder")
            shown = installed(builder, "--version").strip()
            expect(shown == f"cache-builder {version}", f"cache-builder --version said {shown!r}")
            installed(
                cli, "run", "fixture/models", "--features", "fixture/features.parquet",
                "--min-plcc", "0.85", "--cache-dir", "cache",
                "--markdown", "out.md", "--json", "report.json",
            )  # fmt: skip
            report = json.loads((work / "report.json").read_text(encoding="utf-8"))
            expect(report["tool_version"] == version, "the report names another version")
            comment = (work / "out.md").read_text(encoding="utf-8")
            expect(comment.startswith("<!-- model-bisect:"), "out.md lacks the comment marker")
            installed(
                cli, "publish", "--dry-run", "--report", "report.json",
                "--repo", "owner/name", "--issue", "1", "--body-out", "body.md",
            )  # fmt: skip
            body = (work / "body.md").read_text(encoding="utf-8")
            expect(body.splitlines()[0] == comment.splitlines()[0], "publish body lacks marker")
            installed(builder, "check", "--out", "fixture")
            # The whole chain from the wheel, in a repository of its own settings.
            (work / "pyproject.toml").write_text(
                "[tool.model-bisect]\nmin-plcc = 0.85\n", encoding="utf-8"
            )
            installed(cli, "nightly", "--fixture", "fixture", "--out", "nightly-out")
            body = (work / "nightly-out" / "comment.md").read_text(encoding="utf-8")
            expect("No regression" in body, "model-bisect nightly is not green on the fixture")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _floors() -> dict[str, str]:
    """Each runtime dependency of pyproject.toml and its lower bound."""
    from packaging.requirements import Requirement

    project = tomllib.loads(Path("pyproject.toml").read_text(encoding="utf-8"))["project"]
    floors = {}
    for text in project["dependencies"]:
        requirement = Requirement(text)
        (bound,) = (s.version for s in requirement.specifier if s.operator == ">=")
        floors[requirement.name] = bound
    return floors


# uv's lowest-direct resolution installs each declared floor; the fixture's bytes belong to the
# pinned toolchain, so the drift check asks for content only.
@nox.session(venv_backend="uv", default=False)
def floors(session: nox.Session) -> None:
    """Run the tool at the lower bound of every runtime dependency that pyproject declares."""
    from packaging.version import Version

    session.install("--resolution", "lowest-direct", "-e", ".")
    session.install("pytest", "pytest-timeout", "hypothesis", "pyyaml")
    wanted = _floors()
    report = "import json, sys; from importlib import metadata as m; "
    report += "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    got = json.loads(str(session.run("python", "-c", report, *wanted, silent=True)))
    for name, bound in wanted.items():
        session.log(f"floor {name} {bound}: installed {got[name]}")
        if Version(got[name]) != Version(bound):
            session.error(f"{name} {got[name]} is installed, not its floor {bound}")
    session.run("pytest", "-m", "not slow", "tests/test_publish.py", "tests/test_cli_run.py")
    session.run("python", "-m", "cache_builder", "check", "--require", "content")


# Mutation testing of the pure core and the drift classifier (docs/testing.md). Each module is
# mutated in a scratch copy of the project against only the test files that cover it; mutmut
# forks one child per mutant and runs only the tests that reached the mutated function.
MUTATION_OUT = Path("bisect-out/mutation")
_DRIFT_TESTS = ("tests/test_cache_builder_drift.py", "tests/test_drift_classes.py")
# ranks.py's deterministic tests: test_ranks.py's hypothesis tests reach every function, and a
# mutant they fail on is shrunk for seconds; tests/test_promises_ranks.py has deterministic twins
# of them (brute force and scipy on fixed seeds), so the session leaves them to `nox -s tests`,
# and test_rank_overlap.py too (the engine's ranking thread, which calls ranks.py as a whole).
_RANKS_FAST_TESTS = (
    "tests/test_promises_ranks.py",
    *(
        f"tests/test_ranks.py::test_{name}"
        for name in (
            "inversions_of_lengths_that_are_not_powers_of_two",
            "inversions_of_long_runs_with_and_without_ties",
            "inversions_of_sorted_and_reversed_sequences",
            "inversions_leave_the_input_alone_unless_told",
            "inversions_refuse_values_out_of_range",
            "rank_correlations_on_many_continuous_rows_agree_with_scipy",
            "values_closer_than_float32_keep_their_order",
            "negative_zero_ties_with_zero",
            "rank_correlations_refuse_arrays_of_different_lengths",
            "target_ranks_count_tie_pairs_and_spread",
            "low_halves_are_packed_in_place",
        )
    ),
)
MUTATION_TARGETS: dict[str, tuple[str, ...]] = {
    "model_bisect/search.py": ("tests/test_search.py", "tests/test_promises_search.py"),
    "model_bisect/gates.py": (
        "tests/test_gates.py",
        "tests/test_promises_gates.py",
        "tests/test_promises_gates_text.py",
    ),
    "model_bisect/metrics.py": (
        "tests/test_metrics.py",
        "tests/test_promises_metrics.py",
        "tests/test_promises_metrics_edges.py",
    ),
    "model_bisect/ranks.py": _RANKS_FAST_TESTS,
    "model_bisect/significance.py": (
        "tests/test_significance.py",
        "tests/test_promises_significance.py",
        "tests/test_promises_drop_p_value.py",
    ),
    "model_bisect/catalogue.py": (
        "tests/test_catalogue.py",
        "tests/test_gates.py",
        "tests/test_promises_catalogue.py",
    ),
    "cache_builder/drift.py": (
        *_DRIFT_TESTS,
        "tests/test_drift_report.py",
        "tests/test_cache_builder_source.py",  # a source fixture's origin
    ),
    "cache_builder/parquet_diff.py": (
        *_DRIFT_TESTS,
        "tests/test_promises_differs.py",
        "tests/test_promises_parquet_diff.py",
    ),
    "cache_builder/onnx_diff.py": (
        *_DRIFT_TESTS,
        "tests/test_promises_differs.py",
        "tests/test_promises_onnx_diff.py",
    ),
    # The ONNX differ cache_builder's drift check shares with the culprit section.
    "model_bisect/culprit/graph.py": (
        *_DRIFT_TESTS,
        "tests/test_culprit_graph.py",
        "tests/test_promises_graph.py",
    ),
}
# The whole session stays under 30 minutes on a 2-core machine: the budget is shared out
# among the modules still to run, in proportion to their weights, and a module that outgrows
# its share is stopped there (mutmut reports its unfinished mutants as "not checked").
MUTATION_BUDGET_SECONDS = 28 * 60
# Relative cost, from the by-hand runs of 2026-12-03 (docs/testing.md): metrics.py and
# significance.py take about 6-7 minutes, search.py and drift.py 2-5, the differs a minute in
# all; ranks.py (against its deterministic tests) and culprit/graph.py, about 600 mutants
# each, 1.5-2.5 minutes. A module not named here weighs 1.
MUTATION_WEIGHTS: dict[str, float] = {
    "model_bisect/metrics.py": 3,
    "model_bisect/significance.py": 3,
    "model_bisect/search.py": 2,
    "cache_builder/drift.py": 2,
}
MUTATION_CHILDREN = 2
_SCRATCH_IGNORED = (
    *(".git", ".venv", ".nox", "bisect-out", "mutants", "build", "*.egg-info"),
    *("__pycache__", ".hypothesis", ".mypy_cache", ".ruff_cache", ".pytest_cache"),
)


def _mutmut_table(sources: str, tests: tuple[str, ...]) -> str:
    return (
        "\n\n[tool.mutmut]\n"
        f"source_paths = [{json.dumps(sources)}]\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(list(tests))}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-m", "not slow"]\n'
        'also_copy = ["model_bisect", "cache_builder", "tests", "testdata", "constraints"]\n'
    )


@nox.session(default=False)
def mutation(session: nox.Session) -> None:
    """Mutation-test the pure core and drift classifier with mutmut; modules may be named."""
    session.install("-c", TOOLCHAIN, "-e", ".[dev]")
    chosen = session.posargs or list(MUTATION_TARGETS)
    unknown = [name for name in chosen if name not in MUTATION_TARGETS]
    if unknown:
        session.error(f"not a mutation target: {', '.join(unknown)}; pick from the noxfile")
    timeout = shutil.which("timeout")
    out = MUTATION_OUT.resolve()
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + MUTATION_BUDGET_SECONDS
    summary: dict[str, dict[str, object]] = {}
    for done, module in enumerate(chosen):
        weights = [MUTATION_WEIGHTS.get(name, 1.0) for name in chosen[done:]]
        share = int((deadline - time.monotonic()) * weights[0] / sum(weights))
        scratch = Path(tempfile.mkdtemp(prefix="mutation-"))
        try:
            project = scratch / "project"
            shutil.copytree(".", project, ignore=shutil.ignore_patterns(*_SCRATCH_IGNORED))
            with (project / "pyproject.toml").open("a", encoding="utf-8") as table:
                table.write(_mutmut_table(module, MUTATION_TARGETS[module]))
            started = time.monotonic()
            limit = [timeout, "--signal=INT", str(max(share, 60))] if timeout else []
            with session.chdir(project):
                session.run(
                    *limit, "mutmut", "run", "--max-children", str(MUTATION_CHILDREN),
                    external=bool(limit), success_codes=[0, 124],
                )  # fmt: skip
                listed = session.run("mutmut", "results", "--all", "true", silent=True)
            statuses: dict[str, int] = {}
            survivors = []
            for line in str(listed or "").splitlines():
                name, sep, status = line.strip().rpartition(": ")
                if sep and name.startswith(("model_bisect.", "cache_builder.")):
                    statuses[status] = statuses.get(status, 0) + 1
                    if status != "killed":
                        survivors.append(f"{name}: {status}")
            summary[module] = {
                "mutants": sum(statuses.values()),
                "statuses": statuses,
                "seconds": round(time.monotonic() - started),
                "not_killed": survivors,
            }
            session.log(f"{module}: {statuses} in {summary[module]['seconds']} s")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    session.log(f"survivors and scores in {out / 'summary.json'}; see docs/testing.md")
