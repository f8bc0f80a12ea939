"""The parquet differ's edges the mutation session's second pass found unpinned: keys that
are not UTF-8, several extra columns, a regenerated file with more rows, unsigned and null
tensor values, empty tensor columns, a column whose type changed kind, and gaps past the
float range. Each file is built here with pyarrow; the expected lines are written out.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cache_builder.parquet_diff import compare_parquet
from model_bisect.errors import first_line


def _write(path: Path, table: pa.Table) -> Path:
    pq.write_table(table, path)
    return path


def test_an_unreadable_committed_parquet_quotes_pyarrows_own_first_line(tmp_path: Path) -> None:
    old = tmp_path / "old.parquet"
    old.write_bytes(b"not parquet at all")
    new = _write(tmp_path / "new.parquet", pa.table({"a": [1]}))
    with pytest.raises((OSError, pa.ArrowException)) as raised:
        pq.ParquetFile(old)
    assert compare_parquet(old, new).content == (
        f"committed file is not readable parquet: {first_line(raised.value)}",
    )


@pytest.mark.parametrize("side", ["old", "new"])
def test_a_key_that_is_not_utf8_is_named_with_a_replacement_character(
    tmp_path: Path, side: str
) -> None:
    table = pa.table({"a": [1, 2]})
    odd = table.replace_schema_metadata({b"k\xff": b"1"})
    plain = table.replace_schema_metadata({b"k\xff": b"2"} if side == "old" else {b"k": b"2"})
    old = _write(tmp_path / "old.parquet", odd if side == "old" else plain)
    new = _write(tmp_path / "new.parquet", plain if side == "old" else odd)
    lines = compare_parquet(old, new).metadata
    if side == "old":
        assert "key-value metadata 'k\ufffd' differs" in lines
    else:
        assert "key-value metadata 'k\ufffd' only in the regenerated file" in lines


def test_several_extra_columns_are_named_comma_separated(tmp_path: Path) -> None:
    old = _write(tmp_path / "old.parquet", pa.table({"a": [1], "x": [2], "y": [3]}))
    new = _write(tmp_path / "new.parquet", pa.table({"a": [1]}))
    assert compare_parquet(old, new).content == (
        "schema: extra columns x, y in the committed file",
    )


def test_rows_only_the_regenerated_file_has_are_the_row_count_alone(tmp_path: Path) -> None:
    old = _write(tmp_path / "old.parquet", pa.table({"v": [1.0, 2.0], "s": ["a", "b"]}))
    new = _write(tmp_path / "new.parquet", pa.table({"v": [1.0, 2.0, 3.0], "s": ["a", "b", "c"]}))
    assert compare_parquet(old, new).content == ("rows: 2 -> 3",)


def test_an_unsigned_tensor_that_grows_reports_the_true_gap(tmp_path: Path) -> None:
    kind = pa.list_(pa.uint8(), 2)
    old = _write(tmp_path / "old.parquet", pa.table({"u": pa.array([[3, 9]], kind)}))
    new = _write(tmp_path / "new.parquet", pa.table({"u": pa.array([[5, 9]], kind)}))
    assert compare_parquet(old, new).content == (
        "column u: 1 of 1 tensors differ, first at row 0 index [0] (3 -> 5), "
        "largest absolute difference 2",
    )


def test_a_null_inside_a_tensor_is_read_as_nan(tmp_path: Path) -> None:
    kind = pa.list_(pa.float64(), 2)
    old = _write(tmp_path / "old.parquet", pa.table({"f": pa.array([[1.0, None]], kind)}))
    new = _write(tmp_path / "new.parquet", pa.table({"f": pa.array([[1.0, 2.0]], kind)}))
    assert compare_parquet(old, new).content == (
        "column f: 1 of 1 tensors differ, first at row 0 index [1] (nan -> 2), "
        "largest absolute difference nan",
    )


def test_tensor_columns_without_rows_differ_in_nothing(tmp_path: Path) -> None:
    kind = pa.list_(pa.float32(), 3)
    empty = pa.table({"f": pa.array([], kind)})
    old = _write(tmp_path / "old.parquet", empty)
    new = _write(tmp_path / "new.parquet", empty)
    assert compare_parquet(old, new).content == ()


def test_a_tensor_column_turned_into_a_list_is_compared_row_by_row(tmp_path: Path) -> None:
    fixed = pa.array([[1.0, 2.0], [3.0, 4.0]], pa.list_(pa.float64(), 2))
    free = pa.array([[1.0, 2.0], [3.0, 5.0]], pa.list_(pa.float64()))
    old = _write(tmp_path / "old.parquet", pa.table({"f": fixed}))
    new = _write(tmp_path / "new.parquet", pa.table({"f": free}))
    content = compare_parquet(old, new).content
    assert content[-1] == "column f: 1 of 2 rows differ, first at row 1 ([3.0, 4.0] -> [3.0, 5.0])"


def test_a_number_column_turned_into_text_is_compared_row_by_row(tmp_path: Path) -> None:
    old = _write(tmp_path / "old.parquet", pa.table({"c": [1, 2]}))
    new = _write(tmp_path / "new.parquet", pa.table({"c": ["1", "2"]}))
    assert compare_parquet(old, new).content[-1] == (
        "column c: 2 of 2 rows differ, first at row 0 (1 -> '1')"
    )


def test_a_gap_beyond_the_float_range_is_infinite_without_a_warning(tmp_path: Path) -> None:
    old = _write(tmp_path / "old.parquet", pa.table({"v": [1e308, 0.0]}))
    new = _write(tmp_path / "new.parquet", pa.table({"v": [-1e308, 0.0]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        content = compare_parquet(old, new).content
    assert content == (
        "column v: 1 of 2 rows differ, first at row 0 (1e+308 -> -1e+308), "
        "largest absolute difference inf",
    )
