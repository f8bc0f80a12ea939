"""`cache_builder frames`: PNGs written here with Pillow become a tensor cache whose pixels are
exactly what Pillow's own convert-then-resize gives; bad input is one line and exit 3."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tests.clirun import call_main, run_module


def _write_pngs(folder: Path, sizes: list[tuple[int, int]], seed: int = 3) -> list[str]:
    """Random RGB images of the given (width, height), one PNG each."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index, (width, height) in enumerate(sizes):
        name = f"img_{index}.png"
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(
            folder / name
        )
        names.append(name)
    return names


def _by_hand(
    path: Path, mode: str, size: tuple[int, int], resample: Image.Resampling
) -> np.ndarray:
    """Pillow by hand: convert, resize, channels first."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert(mode).resize(size, resample), dtype=np.uint8)
    return pixels[np.newaxis] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _tensor(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).combine_chunks().to_numpy_ndarray()


def test_grey_frames_hold_exactly_the_resized_pixels_with_scores_and_clips(
    tmp_path: Path,
) -> None:
    images = tmp_path / "images"
    names = _write_pngs(images, [(40, 30), (64, 48), (33, 21)])
    scores = tmp_path / "scores.csv"
    scores.write_text(
        "file,score,clip\n" + f"{names[0]},3.5,a\n{names[1]},2.25,a\n{names[2]},4,b\n"
    )
    out = tmp_path / "cache.parquet"
    result = call_main(
        "cache_builder", "frames", images, "--scores", scores, "--out", out,
        "--size", "24x16", "--clip-column", "clip",
    )  # fmt: skip
    assert result.code == 0, result.err
    table = pq.read_table(out)
    kind = table.schema.field("frame").type
    assert isinstance(kind, pa.FixedShapeTensorType)
    assert kind.value_type == pa.uint8()
    assert list(kind.shape) == [1, 16, 24]
    frames = _tensor(table, "frame")
    for row, name in enumerate(names):
        expected = _by_hand(images / name, "L", (24, 16), Image.Resampling.BICUBIC)
        np.testing.assert_array_equal(frames[row], expected)
    assert table.column("mos").to_pylist() == [3.5, 2.25, 4.0]
    assert table.schema.field("mos").type == pa.float64()
    assert table.column("clip").to_pylist() == ["a", "a", "b"]
    assert table.column("file").to_pylist() == names


def test_rgb_pairs_fill_ref_and_dist_with_the_named_filter(tmp_path: Path) -> None:
    images = tmp_path / "images"
    names = _write_pngs(images, [(50, 40), (50, 40), (37, 29)])
    scores = tmp_path / "scores.csv"
    scores.write_text(
        f"image,mos,reference\n{names[1]},1.5,{names[0]}\n{names[2]},4.5,{names[0]}\n"
    )
    out = tmp_path / "pairs.parquet"
    result = call_main(
        "cache_builder", "frames", images, "--scores", scores, "--out", out, "--size", "20x12",
        "--mode", "rgb", "--resample", "nearest", "--file-column", "image",
        "--score-column", "mos", "--reference-column", "reference",
    )  # fmt: skip
    assert result.code == 0, result.err
    table = pq.read_table(out)
    assert list(table.schema.field("dist").type.shape) == [3, 12, 20]
    nearest = Image.Resampling.NEAREST
    reference = _by_hand(images / names[0], "RGB", (20, 12), nearest)
    for row, name in enumerate(names[1:]):
        np.testing.assert_array_equal(_tensor(table, "ref")[row], reference)
        np.testing.assert_array_equal(
            _tensor(table, "dist")[row], _by_hand(images / name, "RGB", (20, 12), nearest)
        )
    bicubic = _by_hand(images / names[2], "RGB", (20, 12), Image.Resampling.BICUBIC)
    assert not np.array_equal(_tensor(table, "dist")[1], bicubic)  # the filter was honoured


@pytest.mark.parametrize(
    ("csv", "named", "problem"),
    [
        ("file,score\nmissing.png,3\n", "missing.png", "image 'missing.png' of line 2 not found"),
        ("file,score\nbroken.png,3\n", "broken.png", "cannot decode the image 'broken.png'"),
        ("name,mos\nimg_0.png,3\n", "scores.csv", "scores CSV has no column 'file', 'score'"),
        ("file,score\nimg_0.png,good\n", "scores.csv", "line 2 has no file name or a score"),
        ("file,score\n../img_0.png,3\n", "scores.csv", "outside the image folder"),
    ],
)
def test_bad_input_is_one_line_exit_3_and_leaves_the_old_cache(
    tmp_path: Path, csv: str, named: str, problem: str
) -> None:
    images = tmp_path / "images"
    _write_pngs(images, [(8, 8)])
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    scores = tmp_path / "scores.csv"
    scores.write_text(csv)
    out = tmp_path / "cache.parquet"
    out.write_bytes(b"previous")
    result = run_module(
        "cache_builder", "frames", str(images), "--scores", str(scores), "--out", str(out),
        "--size", "4x4",
    )  # fmt: skip
    assert result.code == 3
    assert result.err.count("\n") == 1
    assert result.err.startswith("error: ")
    assert problem in result.err
    assert named in result.err
    assert "Traceback" not in result.err
    assert out.read_bytes() == b"previous"


def test_a_size_that_is_not_width_x_height_is_a_usage_error(tmp_path: Path) -> None:
    result = call_main(
        "cache_builder", "frames", tmp_path, "--scores", tmp_path / "s.csv",
        "--out", tmp_path / "c.parquet", "--size", "224",
    )  # fmt: skip
    assert result.code == 3
    assert "--size '224' is not WIDTHxHEIGHT" in result.err


def test_pillow_is_imported_only_when_frames_decodes_an_image() -> None:
    code = (
        "import sys, cache_builder.cli, cache_builder.frames, cache_builder.actions; "
        "print('PIL' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "False"


def test_large_rows_are_written_in_row_groups_bounded_by_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cache_builder.frames as frames

    pair_bytes = 2 * 3 * 8 * 8  # ref and dist, RGB 8x8
    monkeypatch.setattr(frames, "ROW_GROUP_BYTES", 2 * pair_bytes + 1)
    images = tmp_path / "images"
    names = _write_pngs(images, [(16, 16)] * 8)
    scores = tmp_path / "scores.csv"
    lines = [f"{name},{row},{names[0]}" for row, name in enumerate(names[1:])]
    scores.write_text("file,score,ref\n" + "\n".join(lines) + "\n")
    out = tmp_path / "pairs.parquet"
    result = call_main(
        "cache_builder", "frames", images, "--scores", scores, "--out", out, "--size", "8x8",
        "--mode", "rgb", "--reference-column", "ref",
    )  # fmt: skip
    assert result.code == 0, result.err
    metadata = pq.ParquetFile(out).metadata
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sizes == [2, 2, 2, 1]
    dist = _tensor(pq.read_table(out), "dist")
    for row, name in enumerate(names[1:]):
        expected = _by_hand(images / name, "RGB", (8, 8), Image.Resampling.BICUBIC)
        np.testing.assert_array_equal(dist[row], expected)


def test_an_image_that_fails_after_row_groups_were_streamed_leaves_the_old_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cache_builder.frames as frames

    monkeypatch.setattr(frames, "ROW_GROUP_BYTES", 2 * 8 * 8)  # two grey 8x8 rows a group
    images = tmp_path / "images"
    names = _write_pngs(images, [(8, 8)] * 6)
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    scores = tmp_path / "scores.csv"
    scores.write_text("file,score\n" + "".join(f"{n},3\n" for n in names) + "broken.png,2\n")
    out = tmp_path / "cache.parquet"
    out.write_bytes(b"previous")
    result = call_main(
        "cache_builder", "frames", images, "--scores", scores, "--out", out, "--size", "8x8"
    )
    assert result.code == 3
    assert "broken.png" in result.err
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.parquet", "images", "scores.csv"]
