"""Nox owns the environments: the pinned toolchain (drift, regenerate) and the drift matrix.

Every session delegates to the package (`python -m cache_builder ...`, `pytest`, ...); the
versions live in constraints/, never here.
"""

from __future__ import annotations

import os
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
    """Check testdata/bisect byte for byte under the pinned toolchain."""
    session.install("-r", TOOLCHAIN, "-c", TOOLCHAIN, "-e", ".")
    session.run("python", "-m", "cache_builder", "check", "--require", "bytes", *session.posargs)


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
        "python", "-m", "cache_builder.matrix", str(MATRIX_RESULTS),
        "--out", MATRIX_SUMMARY, "--combos", *DRIFT_MATRIX,
    )  # fmt: skip


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Benchmark model-bisect alone and against benchmarks/baseline.py (`-- --only baseline`)."""
    session.install("-c", TOOLCHAIN, "-e", ".")
    session.run("python", "benchmarks/bench.py", *session.posargs)
