"""numpy values of Arrow columns, and back, without importing pandas.

pyarrow's ``to_numpy`` imports pandas (over a second here), which would triple the time of
``check``; a float64 column's buffers hold everything needed.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["float_array", "float_values", "int32_values"]


def float_values(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The column cast to float64, nulls as NaN."""
    count = len(column)
    if count == 0:
        return np.empty(0, dtype=np.float64)
    array = column.cast(pa.float64())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    validity, data = array.buffers()
    values = np.frombuffer(data, dtype=np.float64, count=count, offset=array.offset * 8).copy()
    if array.null_count:
        bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
        values[bits[array.offset : array.offset + count] == 0] = np.nan
    return values


def float_array(values: np.ndarray) -> pa.Array:
    """A float32 Arrow array sharing the numpy buffer (``pa.array`` would import pandas)."""
    contiguous = np.ascontiguousarray(values, dtype=np.float32)
    return pa.Array.from_buffers(pa.float32(), len(contiguous), [None, pa.py_buffer(contiguous)])


def int32_values(array: pa.Array) -> np.ndarray:
    """An integer array (dictionary indices) as int32, nulls as -1 (``fill_null`` would
    import pandas)."""
    count = len(array)
    if count == 0:
        return np.empty(0, dtype=np.int32)
    cast = array.cast(pa.int32())
    validity, data = cast.buffers()
    values = np.frombuffer(data, dtype=np.int32, count=count, offset=cast.offset * 4).copy()
    if cast.null_count:
        bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
        values[bits[cast.offset : cast.offset + count] == 0] = -1
    return values
