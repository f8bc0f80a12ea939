"""The swap path: a real DMOS/MOS-labelled feature parquet becomes the fixture.

The source is cleaned (non-finite rows dropped and counted, target renamed to ``mos``) and
the good weights are fitted to it by least squares before the timeline perturbs them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from model_bisect.errors import InputError, first_line
from model_bisect.evaluation.arrow import float_values
from model_bisect.evaluation.features import CANONICAL_FEATURES, TARGET_COLUMN
from model_bisect.files import file_sha256

from .fixture import TIMELINE_SEED, Fixture, FixtureData, LinearWeights, Origin, OriginKind, perturb
from .layout import MODEL_COUNT
from .limits import MAX_ROWS

__all__ = ["TARGET_CANDIDATES", "build_from_source", "fit_linear"]

# Checked in this order; the first present wins (exact name first, then ignoring case).
TARGET_CANDIDATES = ("mos", "dmos", "target", "score")
# Fitted weights keep 7 significant digits: LAPACK's solve can differ in the last bits
# between BLAS builds, and those bits must not reach the model bytes.
_SIGNIFICANT_DIGITS = 7


def build_from_source(
    path: Path,
    target_column: str | None,
    fixture_dir: Path,
    seed: int = TIMELINE_SEED,
    models: int = MODEL_COUNT,
) -> Fixture:
    """Read, clean and fit ``path``; ``fixture_dir`` only anchors the recorded relative path."""
    table = _read(path)
    target = _pick_target(table.schema.names, target_column, path)
    _require_numeric(table.schema, (*CANONICAL_FEATURES, target), path)

    # Nulls read as NaN, so one finiteness test drops null, NaN and inf alike.
    raw = {name: float_values(table.column(name)) for name in (*CANONICAL_FEATURES, target)}
    usable = np.ones(table.num_rows, dtype=bool)
    with np.errstate(over="ignore"):  # beyond float32's range is as unusable as inf
        for values in raw.values():
            usable &= np.isfinite(values.astype(np.float32))
    kept = int(usable.sum())
    if kept < len(CANONICAL_FEATURES) + 2:
        raise InputError(
            f"only {kept} usable rows of {table.num_rows} (the others hold null, NaN or inf)",
            str(path),
            f"a fit of {len(CANONICAL_FEATURES)} weights and a bias needs at least "
            f"{len(CANONICAL_FEATURES) + 2} rows with finite features and target",
        )

    columns = {name: raw[name][usable].astype(np.float32) for name in CANONICAL_FEATURES}
    columns[TARGET_COLUMN] = raw[target][usable].astype(np.float32)
    matrix = np.stack([columns[name] for name in CANONICAL_FEATURES], axis=1)
    try:
        good = fit_linear(matrix, columns[TARGET_COLUMN])
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise InputError(
            f"no linear model can be fitted to the source ({first_line(exc)})",
            str(path),
            "use features and a target of ordinary magnitude, as VMAF features are",
        ) from None

    origin = Origin(
        OriginKind.SOURCE,
        {"timeline": seed},
        kept,
        models,
        source_path=_relative(path, fixture_dir),
        source_sha256=file_sha256(path),
        target_column=target,
        rows_read=table.num_rows,
        dropped_rows=table.num_rows - kept,
    )
    return Fixture(FixtureData(columns, good), perturb(good, seed, models), origin)


def fit_linear(features: np.ndarray, target: np.ndarray) -> LinearWeights:
    """Least-squares weights and bias: the best a linear model can do on this data."""
    design = np.column_stack([features.astype(np.float64), np.ones(features.shape[0])])
    solution, *_ = np.linalg.lstsq(design, target.astype(np.float64), rcond=None)
    if not np.all(np.isfinite(solution.astype(np.float32))):
        raise ValueError("the fitted weights do not fit in float32")
    rounded = [float(f"{value:.{_SIGNIFICANT_DIGITS}g}") for value in solution.tolist()]
    return LinearWeights(np.array(rounded[:-1], dtype=np.float32), np.float32(rounded[-1]))


def _read(path: Path) -> pa.Table:
    fix = "pass a readable parquet file of feature vectors and a MOS/DMOS column"
    if not path.exists():
        raise InputError("file not found", str(path), fix)
    if not path.is_file():  # a FIFO or a device would block or never end
        raise InputError("not a regular file", str(path), fix)
    try:
        source = pq.ParquetFile(path)
        if source.metadata.num_rows > MAX_ROWS:
            raise InputError(
                f"{source.metadata.num_rows:,} rows, more than a fixture holds ({MAX_ROWS:,})",
                str(path),
                "sample the source down; a fixture is meant to be small and committed",
            )
        return source.read()
    except (OSError, pa.ArrowException) as exc:
        # pyarrow's message names the reason (e.g. "Parquet magic bytes not found").
        raise InputError(
            f"not a readable parquet file ({first_line(exc)})", str(path), fix
        ) from None


def _pick_target(names: list[str], requested: str | None, path: Path) -> str:
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:  # which of the two would be meant is anyone's guess
        raise InputError(
            f"duplicated column names {', '.join(map(repr, twice))}",
            str(path),
            "give every column of the source its own name",
        )
    missing = [name for name in CANONICAL_FEATURES if name not in names]
    if missing:
        raise InputError(
            f"missing feature columns {', '.join(missing)}",
            str(path),
            f"the source needs the canonical features {', '.join(CANONICAL_FEATURES)}",
        )
    if requested is not None:
        if requested not in names:
            raise InputError(
                f"no column {requested!r} (from --target-column)",
                str(path),
                f"pick one of {', '.join(n for n in names if n not in CANONICAL_FEATURES)}",
            )
        return requested
    for candidate in TARGET_CANDIDATES:
        if candidate in names:
            return candidate
    for candidate in TARGET_CANDIDATES:
        for name in names:
            if name.lower() == candidate:
                return name
    raise InputError(
        f"no target column (looked for {', '.join(TARGET_CANDIDATES)})",
        str(path),
        "name the subjective-score column with --target-column NAME",
    )


def _require_numeric(schema: pa.Schema, names: tuple[str, ...], path: Path) -> None:
    bad = []
    for name in names:
        kind = schema.field(name).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            bad.append(f"{name} ({kind})")
    if bad:
        raise InputError(
            f"non-numeric columns {', '.join(bad)}",
            str(path),
            "store the features and the target as integer or floating-point numbers",
        )


def _relative(path: Path, fixture_dir: Path) -> str:
    """Recorded relative to the fixture so no absolute path (user, machine) enters a byte."""
    try:
        relative = os.path.relpath(path.resolve(), fixture_dir.resolve())
    except ValueError:  # another drive on Windows: no relative path exists
        relative = path.name
    return Path(relative).as_posix()
