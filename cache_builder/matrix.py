"""The drift matrix summary: one row per library combination, from the `check --json` files.

`nox -s drift_matrix` runs `python -m cache_builder check --require content --json
DIR/py<X.Y>-<combination>.json` once per combination, then `python -m cache_builder.matrix DIR`
reads those files, prints combination -> identical / metadata-only / content (saying what), and
writes drift-matrix.json. Only content drift or a missing/extra artifact fails it: metadata-only
differences are what a bump of a writer library is expected to cause.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_bisect.files import write_text_atomic as write_atomic

__all__ = ["LIBRARIES", "SEVERITY", "MatrixRow", "load_row", "main", "summarise", "to_json"]

SCHEMA_VERSION = 1
# Worst first decides a row's verdict; the check's own kinds, plus `unreadable` for a result
# file that is not a `check --json` report (a crashed or interrupted session).
SEVERITY = ("identical", "metadata-only", "content", "missing", "extra", "unreadable")
FAILING = frozenset({"content", "missing", "extra", "unreadable"})
# The libraries the matrix varies, shown for each row from the versions the check ran under.
LIBRARIES = ("pyarrow", "pandas", "onnx", "numpy", "protobuf")


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
        report = json.loads(path.read_text(encoding="utf-8"))
        return _row_from_report(name, report)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return MatrixRow(name, python, {}, "unreadable", (f"{path.name}: {exc}",))


def summarise(results: Path, combos: Sequence[str] = ()) -> list[MatrixRow]:
    """Rows for the result files in ``results``, in matrix order when ``combos`` names it.

    Files named `py<X.Y>-<combination>.json` for a combination not in ``combos`` are left out,
    so results of combinations since removed from the noxfile do not linger in the table.
    """
    rows = []
    for path in sorted(results.glob("*.json")):
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


def _print_table(rows: Sequence[MatrixRow]) -> None:
    from rich.console import Console
    from rich.table import Table

    styles = {"identical": "green", "metadata-only": "yellow"}
    table = Table(title="drift matrix: the fixture regenerated under each combination")
    for column in ("combination", "python", "versions", "verdict"):
        table.add_column(column, no_wrap=True)
    table.add_column("what differs", overflow="fold")
    for row in rows:
        combination = row.name.split("-", 1)[1] if row.name.startswith("py") else row.name
        versions = "\n".join(f"{lib} {version}" for lib, version in row.versions.items())
        style = styles.get(row.verdict, "bold red")
        verdict = f"[{style}]{row.verdict}[/{style}]"
        table.add_row(combination, row.python, versions, verdict, "\n".join(row.what) or "-")
    Console(width=max(160, Console().width)).print(table)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cache_builder.matrix",
        description="Summarise the drift matrix from its `check --json` result files.",
    )
    parser.add_argument("results", type=Path, help="folder of py<X.Y>-<combination>.json files")
    parser.add_argument("--out", type=Path, default=Path("drift-matrix.json"), help="summary")
    parser.add_argument(
        "--combos", nargs="*", default=[], metavar="NAME", help="the matrix, in order"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when every combination reads identical or metadata-only, 1 otherwise, 3 if none."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse's usage exit is 2, which means "regression" here
        return 0 if exc.code == 0 else 3
    rows = summarise(args.results, args.combos)
    if not rows:
        print(
            f"error: no drift-matrix results in {args.results}: run `nox -s drift_matrix`",
            file=sys.stderr,
        )
        return 3
    _print_table(rows)
    write_atomic(args.out, json.dumps(to_json(rows), indent=2) + "\n")
    failing = [row.name for row in rows if row.fails]
    if failing:
        print(f"content drift in: {', '.join(failing)} (see {args.out})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
