"""`cache_builder frames`: a tensor cache from a folder of rated images and a CSV of scores.

Each image is decoded and converted by Pillow (imported here, when the command runs, and
nowhere else), then resized with the named filter, and stored channels first as uint8 in a
fixed-shape tensor column; pairs (a reference column in the CSV) give ``ref`` and ``dist``.
Rows are decoded and written a row group at a time, and the file is replaced in one step.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from model_bisect.errors import InputError, UsageError
from model_bisect.files import BoundedReadError, ReadProblem, open_atomic, read_text_bounded

from .writers import parquet_options

__all__ = [
    "FrameMode",
    "FramesRequest",
    "Resample",
    "Row",
    "build_frames",
    "parse_size",
    "read_scores",
]

MAX_CSV_BYTES = 64 << 20
_CSV_PROBLEMS = {
    ReadProblem.MISSING: "scores CSV not found",
    ReadProblem.NOT_REGULAR: "scores CSV is {detail}",
    ReadProblem.TOO_LARGE: "scores CSV is larger than 64 MiB",
    ReadProblem.UNREADABLE: "scores CSV is unreadable ({detail})",
}
MAX_SIDE = 8192
ROW_GROUP_ROWS = 256  # rows decoded and written at a time; also what a reader streams by
# ...fewer when the rows are large: Arrow's Parquet writer holds about eight bytes of levels
# and values per uint8 pixel of the row group it encodes, so 224x224 RGB pairs (300 kB a
# row) are written 55 at a time, which keeps the writer near 150 MB.
ROW_GROUP_BYTES = 16 << 20


class FrameMode(StrEnum):
    GREY = "grey"
    RGB = "rgb"

    @property
    def pillow(self) -> str:
        return "L" if self is FrameMode.GREY else "RGB"

    @property
    def channels(self) -> int:
        return 1 if self is FrameMode.GREY else 3


class Resample(StrEnum):
    """Pillow's resampling filters, by the name its ``Image.Resampling`` gives them."""

    NEAREST = "nearest"
    BOX = "box"
    BILINEAR = "bilinear"
    HAMMING = "hamming"
    BICUBIC = "bicubic"
    LANCZOS = "lanczos"


@dataclass(frozen=True)
class Row:
    """One CSV line: the image (and its reference, for a pair), its score, its clip."""

    line: int
    image: str
    score: float
    clip: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class FramesRequest:
    images: Path
    scores: Path
    out: Path
    size: tuple[int, int]  # width, height, as Pillow takes it
    mode: FrameMode = FrameMode.GREY
    resample: Resample = Resample.BICUBIC
    file_column: str = "file"
    score_column: str = "score"
    clip_column: str | None = None
    reference_column: str | None = None


def parse_size(text: str) -> tuple[int, int]:
    """``WxH`` (``224x224``) as (width, height)."""
    match = re.fullmatch(r"([1-9][0-9]*)x([1-9][0-9]*)", text.strip().lower())
    if not match or max(int(match[1]), int(match[2])) > MAX_SIDE:
        raise UsageError(
            f"--size {text!r} is not WIDTHxHEIGHT", None, f"write e.g. 224x224 (each 1..{MAX_SIDE})"
        )
    return int(match[1]), int(match[2])


def read_scores(request: FramesRequest) -> list[Row]:
    """The CSV's rows, every required column present and every score a finite number."""
    where = str(request.scores)
    try:
        text = read_text_bounded(request.scores, MAX_CSV_BYTES).removeprefix("\ufeff")
    except BoundedReadError as exc:
        problem = exc.worded(_CSV_PROBLEMS)
        raise InputError(problem, where, "pass a UTF-8 CSV of at most 64 MiB as --scores") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = list(reader.fieldnames or [])
    wanted = [request.file_column, request.score_column]
    wanted += [c for c in (request.clip_column, request.reference_column) if c is not None]
    missing = [name for name in wanted if name not in header]
    if missing:
        raise InputError(
            f"scores CSV has no column {', '.join(repr(m) for m in missing)} "
            f"(its header: {', '.join(header) or 'none'})",
            where,
            "name the columns with --file-column, --score-column, --clip-column, "
            "--reference-column",
        )
    rows = []
    for line, record in enumerate(reader, start=2):
        image = (record.get(request.file_column) or "").strip()
        value = (record.get(request.score_column) or "").strip()
        try:
            score = float(value)
        except ValueError:
            score = math.nan
        if not image or not math.isfinite(score):
            raise InputError(
                f"line {line} has no file name or a score that is not a finite number ({value!r})",
                where,
                "give every line a file name and a numeric score",
            )
        clip = record.get(request.clip_column) if request.clip_column else None
        reference = record.get(request.reference_column) if request.reference_column else None
        rows.append(Row(line, image, score, clip, reference))
    if not rows:
        raise InputError("scores CSV has no rows", where, "add one line per rated image")
    return rows


def build_frames(request: FramesRequest) -> int:
    """Write the tensor cache ``request.out``; returns the row count."""
    rows = read_scores(request)
    width, height = request.size
    shape = [request.mode.channels, height, width]
    tensor_type = pa.fixed_shape_tensor(pa.uint8(), shape)
    pairs = request.reference_column is not None
    fields = [pa.field(n, tensor_type) for n in (("ref", "dist") if pairs else ("frame",))]
    fields += [pa.field("mos", pa.float64()), pa.field("file", pa.string())]
    if request.clip_column is not None:
        fields.append(pa.field("clip", pa.string()))
    schema = pa.schema(fields)
    options = {**parquet_options(), "store_schema": True, "use_dictionary": True}
    options.pop("row_group_size", None)
    # Streamed: one row group of decoded frames in memory at a time, never the whole cache.
    with open_atomic(request.out) as sink, pq.ParquetWriter(sink, schema, **options) as writer:
        for chunk in _chunks(rows, group_rows(shape, pairs)):
            writer.write_table(_table(chunk, request, schema), row_group_size=len(chunk))
    return len(rows)


def group_rows(shape: Sequence[int], pairs: bool) -> int:
    """Rows per row group: ``ROW_GROUP_ROWS``, or fewer so one group's pixels stay within
    ``ROW_GROUP_BYTES``."""
    row_bytes = math.prod(shape) * (2 if pairs else 1)
    return max(1, min(ROW_GROUP_ROWS, ROW_GROUP_BYTES // row_bytes))


def _chunks(rows: Sequence[Row], size: int) -> Iterator[Sequence[Row]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _table(rows: Sequence[Row], request: FramesRequest, schema: pa.Schema) -> pa.Table:
    columns: dict[str, pa.Array] = {}
    if request.reference_column is not None:
        refs = [_pixels(request, row.reference or "", row.line) for row in rows]
        columns["ref"] = pa.FixedShapeTensorArray.from_numpy_ndarray(np.stack(refs))
        columns["dist"] = _tensor(request, rows)
    else:
        columns["frame"] = _tensor(request, rows)
    columns["mos"] = pa.array([row.score for row in rows], pa.float64())
    columns["file"] = pa.array([row.image for row in rows], pa.string())
    if request.clip_column is not None:
        columns["clip"] = pa.array([row.clip or "" for row in rows], pa.string())
    return pa.table(columns, schema=schema)


def _tensor(request: FramesRequest, rows: Sequence[Row]) -> pa.Array:
    stacked = np.stack([_pixels(request, row.image, row.line) for row in rows])
    return pa.FixedShapeTensorArray.from_numpy_ndarray(stacked)


def _pixels(request: FramesRequest, name: str, line: int) -> npt.NDArray[np.uint8]:
    """One image, converted to the mode, resized, as ``[C, H, W]`` uint8."""
    from PIL import Image

    path = _inside(request.images, name, request.scores, line)
    try:
        with Image.open(path) as image:
            converted = image.convert(request.mode.pillow)
            resized = converted.resize(request.size, Image.Resampling[request.resample.name])
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(
            f"cannot decode the image {name!r} of line {line} ({exc.__class__.__name__})",
            str(path),
            "replace it with a readable image file, or drop its line from the CSV",
        ) from None
    pixels = np.asarray(resized, dtype=np.uint8)
    if pixels.ndim == 2:
        return pixels[np.newaxis].copy()
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def _inside(folder: Path, name: str, scores: Path, line: int) -> Path:
    """The image ``name`` under ``folder``; names leaving the folder or missing are refused."""
    path = folder / name
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise InputError(
            f"line {line} names {name!r}, outside the image folder",
            str(scores),
            "give file names relative to the image folder",
        )
    if not path.is_file():
        raise InputError(
            f"image {name!r} of line {line} not found",
            str(path),
            "put the image in the image folder, or drop its line from the CSV",
        )
    return path
