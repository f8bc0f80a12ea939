"""The drift matrix summary: one row per library combination, from the `check --json` files.

`nox -s drift_matrix` runs `python -m cache_builder check --require content --json
DIR/py<X.Y>-<combination>.json` once per combination, then `python -m cache_builder matrix DIR`
reads those files into rows of combination -> identical / metadata-only / content (saying
what), prints them as a table and writes drift-matrix.json. Only content drift or a
missing/extra artifact fails it: metadata-only differences are what a bump of a writer
library is expected to cause. This module holds the logic; `cache_builder.cli` speaks.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table

__all__ = [
    "LIBRARIES",
    "SEVERITY",
    "MatrixRow",
    "failing",
    "load_row",
    "summarise",
    "table",
    "to_json",
]

SCHEMA_VERSION = 1
# Worst first decides a row's verdict; the check's own kinds, plus `unreadable` for a result
# file that is not a `check --json` report (a crashed or interrupted session).
SEVERITY = ("identical", "metadata-only", "content", "missing", "extra", "unreadable")
FAILING = frozenset({"content", "missing", "extra", "unreadable"})
# The libraries that can change a fixture byte, shown for each row from the versions the check
# ran under (the combinations also install a pandas line, which the manifest no longer records:
# the writers never import it).
LIBRARIES = ("pyarrow", "onnx", "numpy", "protobuf")
MAX_RESULT_BYTES = 16 << 20  # a `check --json` file is a few KB
# What `nox -s drift_matrix` names a result; another .json in the folder is no combination.
_RESULT_NAME = re.compile(r"py[0-9]+\.[0-9]+-.+", re.DOTALL)


@dataclass(frozen=True)
class MatrixRow:
    """One combination's outcome; ``what`` explains every non-identical artifact in a line."""

    name: str
    python: str
    versions: Mapping[str, str]
    verdict: str
    what: tuple[str, ...]

    @property
    def fails(self) -> bool:
        return self.verdict in FAILING


def _group(lines: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """`(path, detail)` pairs -> one line per detail, naming every file it applies to."""
    paths_by_detail: dict[str, list[str]] = {}
    for path, detail in lines:
        paths_by_detail.setdefault(detail, []).append(path)
    grouped = []
    for detail, paths in paths_by_detail.items():
        where = paths[0] if len(paths) == 1 else f"{len(paths)} files ({paths[0]} .. {paths[-1]})"
        grouped.append(f"{where}: {detail}")
    return tuple(grouped)


def _row_from_report(name: str, report: Mapping[str, Any]) -> MatrixRow:
    findings = report["findings"]
    kinds = [str(finding["kind"]) for finding in findings] or ["identical"]
    verdict = max(kinds, key=SEVERITY.index)
    lines = []
    for finding in findings:
        details = [str(detail) for detail in finding.get("details") or ()] or [finding["kind"]]
        if verdict == "metadata-only" and finding["kind"] == "metadata-only":
            lines += [(str(finding["path"]), detail) for detail in details]
        elif verdict in FAILING and finding["kind"] in FAILING:
            # the first line is what fails it (content details come before metadata ones)
            lines.append((str(finding["path"]), f"{finding['kind']}: {details[0]}"))
    current = report.get("toolchain", {}).get("current", {})
    versions = {lib: str(current[lib]) for lib in LIBRARIES if lib in current}
    return MatrixRow(name, str(current.get("python", "?")), versions, verdict, _group(lines))


def load_row(path: Path) -> MatrixRow:
    """Read one `check --json` file; a file that is not one becomes an `unreadable` row."""
    name = path.stem
    python = name.split("-", 1)[0].removeprefix("py") if name.startswith("py") else "?"
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the read forever
            raise OSError("not a regular file")
        with path.open("rb") as handle:
            data = handle.read(MAX_RESULT_BYTES + 1)
        if len(data) > MAX_RESULT_BYTES:
            raise OSError(f"larger than {MAX_RESULT_BYTES:,} bytes")
        report = json.loads(data.decode("utf-8"))
        return _row_from_report(name, report)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        said = " ".join(str(exc).split())[:200] or exc.__class__.__name__
        return MatrixRow(name, python, {}, "unreadable", (f"{path.name}: {said}",))


def summarise(results: Path, combos: Sequence[str] = ()) -> list[MatrixRow]:
    """Rows for the result files in ``results``, in matrix order when ``combos`` names it.

    Files named `py<X.Y>-<combination>.json` for a combination not in ``combos`` are left out,
    so results of combinations since removed from the noxfile do not linger in the table; a
    `.json` of any other name (a stray `model-bisect-*.json` report) is not a result at all.
    """
    rows = []
    for path in sorted(results.glob("*.json")):
        if _RESULT_NAME.fullmatch(path.stem) is None:
            continue  # not a result (a stray report, a copy): a result is py<X.Y>-<combination>
        combination = path.stem.split("-", 1)[-1]
        if combos and combination not in combos:
            continue
        rows.append(load_row(path))

    def order(row: MatrixRow) -> tuple[int, str]:
        combination = row.name.split("-", 1)[-1]
        return (list(combos).index(combination) if combination in combos else 0, row.name)

    return sorted(rows, key=order)


def to_json(rows: Sequence[MatrixRow]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "failed": any(row.fails for row in rows),
        "combinations": [
            {
                "name": row.name,
                "python": row.python,
                "versions": dict(row.versions),
                "verdict": row.verdict,
                "what": list(row.what),
            }
            for row in rows
        ],
    }


def failing(rows: Sequence[MatrixRow]) -> list[str]:
    """The names of the combinations that fail the matrix (content drift or worse)."""
    return [row.name for row in rows if row.fails]


def table(rows: Sequence[MatrixRow]) -> Table:
    """The rows as a rich table, one line per library version and per difference."""
    from rich.table import Table
    from rich.text import Text

    styles = {"identical": "green", "metadata-only": "yellow"}
    grid = Table(title="drift matrix: the fixture regenerated under each combination")
    for column in ("combination", "python", "versions", "verdict"):
        grid.add_column(column, no_wrap=True)
    grid.add_column("what differs", overflow="fold")
    for row in rows:
        combination = row.name.split("-", 1)[1] if row.name.startswith("py") else row.name
        versions = "\n".join(f"{lib} {version}" for lib, version in row.versions.items())
        style = styles.get(row.verdict, "bold red")
        # Text, not markup: every cell comes from a result file (`[/]x` is shown as written).
        cells = (combination, row.python, versions)
        verdict = Text(row.verdict, style=style)
        what = Text("\n".join(row.what) or "-")
        grid.add_row(*map(Text, cells), verdict, what)
    return grid
