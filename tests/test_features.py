"""The feature cache: only the needed columns, float32, bad rows dropped, one-line errors."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model_bisect.errors import InputError
from model_bisect.evaluation.features import (
    CANONICAL_FEATURES,
    TARGET_COLUMN,
    columns_for,
    load_features,
)
from tests.modelkit import features_parquet, sidecar_json


def _write(path: Path, columns: dict[str, object]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def _one_line(exc: pytest.ExceptionInfo[InputError]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_loads_requested_columns_as_float32_in_the_order_asked(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "f.parquet",
        {"a": [1.0, 2.0, 3.0], "b": [10, 20, 30], "mos": [4.0, 3.0, 2.0]},
    )
    table = load_features(path, ["b", "a"])
    assert table.names == ("b", "a")
    assert table.matrix.dtype == np.float32
    assert table.matrix.flags.c_contiguous
    np.testing.assert_array_equal(table.matrix, [[10, 1], [20, 2], [30, 3]])
    assert table.target.dtype == np.float64
    np.testing.assert_array_equal(table.target, [4.0, 3.0, 2.0])
    assert table.target_name == TARGET_COLUMN
    assert table.dropped_rows == 0
    assert table.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("stored", "kept"),
    [(pa.float32(), np.float32), (pa.float64(), np.float64), (pa.int16(), np.float64)],
)
def test_the_target_keeps_a_float32_column_s_precision_and_is_float64_otherwise(
    tmp_path: Path, stored: pa.DataType, kept: type
) -> None:
    """A float64 copy of a float32 target is 40 MB more at 10M rows (benchmarked peak)."""
    mos = pa.array([4.0, None, 2.0, 1.0], type=stored)
    path = _write(tmp_path / "f.parquet", {"a": [1.0, 2.0, 3.0, 4.0], "mos": mos})
    table = load_features(path, ["a"])
    assert table.target.dtype == kept
    assert not table.target.flags.writeable
    np.testing.assert_array_equal(table.target, [4.0, 2.0, 1.0])
    assert table.dropped_rows == 1


def test_an_unrequested_string_column_does_not_stop_loading(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "f.parquet",
        {"clip": ["x", "y", "z"], "adm2": [0.9, 0.8, 0.7], "mos": [4.0, 3.5, 3.0]},
    )
    table = load_features(path, ["adm2"])
    np.testing.assert_allclose(table.matrix[:, 0], [0.9, 0.8, 0.7], rtol=1e-6)


def test_rows_with_any_missing_or_non_finite_needed_value_are_dropped_and_counted(
    tmp_path: Path,
) -> None:
    path = _write(
        tmp_path / "f.parquet",
        {
            "a": [1.0, float("nan"), 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
            "b": [1.0, 2.0, float("inf"), 4.0, None, 1e300, 7.0, 8.0],  # 1e300 overflows f32
            "ignored": [float("nan")] * 8,
            "mos": [1.0, 2.0, 3.0, None, 5.0, 6.0, 7.0, 8.0],
        },
    )
    table = load_features(path, ["a", "b"])
    assert table.dropped_rows == 5
    np.testing.assert_array_equal(table.matrix, [[1.0, 1.0], [7.0, 7.0], [8.0, 8.0]])
    np.testing.assert_array_equal(table.target, [1.0, 7.0, 8.0])


def test_target_name_can_be_changed(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.parquet", {"a": [1.0, 2.0, 3.0], "dmos": [70.0, 60.0, 50.0]})
    table = load_features(path, ["a"], target="dmos")
    assert table.target_name == "dmos"
    np.testing.assert_array_equal(table.target, [70.0, 60.0, 50.0])


def test_columns_returns_each_order_once_and_shares_it_between_threads(tmp_path: Path) -> None:
    path, _ = features_parquet(tmp_path / "f.parquet", rows=64)
    table = load_features(path, CANONICAL_FEATURES)
    assert table.columns(CANONICAL_FEATURES) is table.matrix
    wanted = ("motion2", "adm2")
    results: list[np.ndarray] = []
    threads = [
        threading.Thread(target=lambda: results.append(table.columns(wanted))) for _ in "1234"
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r is results[0] for r in results)
    np.testing.assert_array_equal(results[0], table.matrix[:, [5, 0]])
    assert results[0].flags.c_contiguous


def test_columns_names_an_unloaded_column(tmp_path: Path) -> None:
    path, _ = features_parquet(tmp_path / "f.parquet", rows=8)
    table = load_features(path, CANONICAL_FEATURES)
    with pytest.raises(InputError, match="'vmaf_extra'"):
        table.columns(["adm2", "vmaf_extra"])


# --- every InputError is one line naming the file, the problem and the fix -----------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.parquet"
    with pytest.raises(InputError) as exc:
        load_features(path, ["a"])
    assert _one_line(exc) == f"features file not found in {path}: pass an existing parquet file"


def test_not_parquet(tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    path.write_text("adm2,mos\n0.9,4\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        load_features(path, ["adm2"])
    assert _one_line(exc).startswith("not a readable parquet file (")
    assert str(path) in str(exc.value)


def test_truncated_parquet_is_reported_as_unreadable(tmp_path: Path) -> None:
    good, _ = features_parquet(tmp_path / "good.parquet", rows=32)
    path = tmp_path / "cut.parquet"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputError) as exc:
        load_features(path, CANONICAL_FEATURES)
    assert str(path) in _one_line(exc)


def test_missing_columns_are_named_with_what_is_available(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.parquet", {"adm2": [1.0], "mos": [3.0]})
    with pytest.raises(InputError) as exc:
        load_features(path, ["adm2", "motion2", "vif_scale0"])
    text = _one_line(exc)
    assert text.startswith(f"missing feature columns motion2, vif_scale0 in {path}: ")
    assert "the file has adm2, mos" in text


def test_no_target_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.parquet", {"adm2": [1.0], "dmos": [3.0]})
    with pytest.raises(InputError) as exc:
        load_features(path, ["adm2"])
    assert (
        _one_line(exc) == f"no target column 'mos' in {path}: pass --target with one of: adm2, dmos"
    )


def test_non_numeric_needed_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.parquet", {"adm2": ["0.9"], "mos": [3.0]})
    with pytest.raises(InputError) as exc:
        load_features(path, ["adm2"])
    assert _one_line(exc).startswith(f"column 'adm2' is string, not numeric in {path}: ")


@pytest.mark.parametrize("usable", [0, 1, 2])
def test_fewer_than_three_usable_rows_is_too_few_rows(tmp_path: Path, usable: int) -> None:
    mos = [1.0] * usable + [None, float("nan")]
    path = _write(tmp_path / "f.parquet", {"adm2": [1.0] * len(mos), "mos": mos})
    with pytest.raises(InputError) as exc:
        load_features(path, ["adm2"])
    assert _one_line(exc).startswith(f"too few rows: {usable} usable of {usable + 2}")


def test_three_usable_rows_are_enough(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.parquet", {"adm2": [1.0, 2.0, 3.0, 4.0], "mos": [1, 2, 3, None]})
    assert load_features(path, ["adm2"]).rows == 3


def test_the_kept_row_digest_follows_which_rows_the_loaded_columns_keep(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "f.parquet",
        {
            "a": [1.0, 2.0, 3.0, 4.0, 5.0],
            "b": [1.0, float("nan"), 3.0, 4.0, 5.0],
            "mos": [1.0, 2.0, 3.0, 4.0, 5.0],
        },
    )
    alone = load_features(path, ["a"])
    with_b = load_features(path, ["a", "b"])
    assert alone.sha256 == with_b.sha256  # same file...
    assert alone.rows_sha256 != with_b.rows_sha256  # ...but other rows
    assert load_features(path, ["a"]).rows_sha256 == alone.rows_sha256


def test_a_duplicated_needed_column_name_is_one_line_not_a_key_error(tmp_path: Path) -> None:
    table = pa.Table.from_arrays(
        [pa.array([1.0, 2.0, 3.0]), pa.array([4.0, 5.0, 6.0]), pa.array([1.0, 2.0, 3.0])],
        names=["adm2", "adm2", "mos"],
    )
    path = tmp_path / "dup.parquet"
    pq.write_table(table, path)
    with pytest.raises(InputError) as exc:
        load_features(path, ["adm2"])
    assert _one_line(exc).startswith("column 'adm2' appears more than once")


# --- sidecar JSON ---------------------------------------------------------------------------


def test_no_sidecar_means_the_canonical_features(tmp_path: Path) -> None:
    assert columns_for(tmp_path / "m.onnx") == CANONICAL_FEATURES


def test_sidecar_features_list_is_used_in_its_order(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    sidecar_json(model, ["motion2", "adm2"])
    assert columns_for(model) == ("motion2", "adm2")


def test_sidecar_without_a_features_key_falls_back_to_canonical(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    (tmp_path / "m.json").write_text(json.dumps({"version": 3}), encoding="utf-8")
    assert columns_for(model) == CANONICAL_FEATURES


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"features": "adm2"}', "not a non-empty list"),
        ('{"features": []}', "not a non-empty list"),
        ('{"features": ["adm2", 3]}', "non-string"),
        ('{"features": ["adm2", "adm2"]}', "repeats 'adm2'"),
    ],
)
def test_malformed_sidecar_is_an_input_error(tmp_path: Path, text: str, problem: str) -> None:
    sidecar = tmp_path / "m.json"
    sidecar.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as exc:
        columns_for(tmp_path / "m.onnx")
    assert problem in _one_line(exc)
    assert str(sidecar) in str(exc.value)


def test_float32_int_and_null_values_survive_several_row_groups(tmp_path: Path) -> None:
    # Several row groups and a null in each type: the float buffers are read with their
    # offsets and validity bits, integers go through the cast.
    table = pa.table(
        {
            "a": pa.array([0.5, None, 1.25, 2.0, -3.5, 4.0, 1e-3], type=pa.float32()),
            "b": pa.array([1, 2, 3, None, 5, 6, 7], type=pa.int16()),
            "mos": pa.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 2**0.5], type=pa.float64()),
        }
    )
    path = tmp_path / "f.parquet"
    pq.write_table(table, path, row_group_size=3)
    loaded = load_features(path, ["a", "b"])
    assert loaded.dropped_rows == 2
    assert loaded.matrix.tolist() == [
        [0.5, 1.0],
        [1.25, 3.0],
        [-3.5, 5.0],
        [4.0, 6.0],
        [np.float32(1e-3), 7.0],
    ]
    assert loaded.target.tolist() == [1.0, 3.0, 5.0, 6.0, 2**0.5]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _forge_row_count(path: Path, real: int, claimed: int, *, row_group: bool = False) -> Path:
    """``path`` with its footer's num_rows (FileMetaData field 3, a thrift-compact i64, the
    first one encoding ``real``) replaced by ``claimed``, and with ``row_group`` the only row
    group's too (the last one: it follows the column chunks' value counts); the footer
    length is rewritten."""
    raw = path.read_bytes()
    length = int.from_bytes(raw[-8:-4], "little")
    footer = raw[-8 - length : -8]
    field = b"\x16"  # field id delta 1, type i64
    old = field + _varint(real << 1)  # zigzag of a non-negative number
    places = [footer.find(old)] + ([footer.rfind(old)] if row_group else [])
    assert places[0] > 0, "no num_rows field found"
    for at in reversed(places):
        footer = footer[:at] + field + _varint(claimed << 1) + footer[at + len(old) :]
    forged = path.with_name(f"claims-{claimed}.parquet")
    forged.write_bytes(raw[: -8 - length] + footer + len(footer).to_bytes(4, "little") + b"PAR1")
    metadata = pq.ParquetFile(forged).metadata
    assert metadata.num_rows == claimed
    assert (metadata.row_group(0).num_rows == claimed) is row_group
    return forged


@pytest.mark.parametrize(
    ("claimed", "message"),
    [
        (0, "its footer says 0 rows, its row groups 777"),
        (100, "its footer says 100 rows, its row groups 777"),
        (10_000, "its footer says 10000 rows, its row groups 777"),
        (1 << 62, f"its footer says {1 << 62} rows, its row groups 777"),
    ],
)
def test_a_footer_whose_row_count_disagrees_with_its_row_groups_is_corrupt(
    tmp_path: Path, claimed: int, message: str
) -> None:
    good = _write(tmp_path / "f.parquet", {"adm2": np.ones(777, np.float32), "mos": np.ones(777)})
    forged = _forge_row_count(good, 777, claimed)
    with pytest.raises(InputError) as exc:
        load_features(forged, ["adm2"])
    assert _one_line(exc).startswith(f"corrupt parquet file ({message}) in {forged}: ")


def test_a_row_group_claiming_more_rows_than_its_columns_hold_is_corrupt(tmp_path: Path) -> None:
    # Footer and row group agree on 800 rows, the columns hold 777: read as claimed, 23 rows
    # of the feature matrix would be left as whatever memory held.
    good = _write(tmp_path / "f.parquet", {"adm2": np.ones(777, np.float32), "mos": np.ones(777)})
    forged = _forge_row_count(good, 777, 800, row_group=True)
    with pytest.raises(InputError) as exc:
        load_features(forged, ["adm2"])
    assert _one_line(exc).startswith(
        f"corrupt parquet file (row group 0 says 800 rows, column 'adm2' holds 777) in {forged}"
    )
