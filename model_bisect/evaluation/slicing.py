"""The ``--slice-by`` columns of a run's data, read once as dictionary codes, one per item.

Checked before any model runs: a column the file lacks, one that is not strings, one with too
many values to be a slice (an id), or, with ``--pool-by``, one whose value changes inside a
rated item is an InputError naming the file, the column and the fix. Only the named columns
are read, and only when ``--slice-by`` is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import InputError, first_line
from ..safetext import unicode_safe
from .pooling import PooledDataset, group_codes
from .strings import StringColumn, read_codes, string_names

if TYPE_CHECKING:
    from .dataset import Dataset

__all__ = ["MAX_SLICE_VALUES", "slice_columns"]

# More distinct values than this and the column names items (a clip id), not slices of them.
MAX_SLICE_VALUES = 256


def _shown(names: Sequence[str]) -> str:
    return ", ".join(unicode_safe(n)[:80] for n in names[:12]) or "none"


def slice_columns(data: Dataset, names: Sequence[str]) -> dict[str, StringColumn]:
    """Each named column's code per rated item of ``data`` (its groups when pooled)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    where = unicode_safe(str(data.path))
    pooling = data.column if isinstance(data, PooledDataset) else None
    try:
        every = pq.read_schema(data.path).names
        strings = string_names(data.path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(
            f"corrupt parquet file ({first_line(exc)})", where, "regenerate the cache"
        ) from None
    found: dict[str, StringColumn] = {}
    for name in names:
        shown = unicode_safe(name)[:80]
        if name not in every:
            raise InputError(
                f"no --slice-by column {shown!r}",
                where,
                f"pass --slice-by with a string column: {_shown(strings)}",
            )
        if name not in strings:
            raise InputError(
                f"--slice-by column {shown!r} is not a string column",
                where,
                f"slice by a string column ({_shown(strings)}), or store {shown!r} as strings",
            )
        if name == pooling:
            raise InputError(
                f"--slice-by {shown!r} is the --pool-by column: every item would be a slice",
                where,
                "slice by a column that groups rated items, such as the encoder",
            )
        kept = data.kept_rows()
        try:
            column = read_codes(data.path, name, kept, MAX_SLICE_VALUES)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(
                f"corrupt parquet file ({first_line(exc)})", where, "regenerate the cache"
            ) from None
        if column is None:
            raise InputError(
                f"--slice-by column {shown!r} has more than {MAX_SLICE_VALUES} values",
                where,
                "slice by a column of few values (an encoder, a resolution), not an id",
            )
        if isinstance(data, PooledDataset):
            column = _per_group(column, data, shown, where)
        found[name] = column
    return found


def _per_group(column: StringColumn, data: PooledDataset, shown: str, where: str) -> StringColumn:
    """A pooled item's code: its rows' one value; rows of one item that disagree are an
    InputError, since the item belongs to no one slice."""
    codes = group_codes(column.codes, data.groups)
    differs = column.codes != codes[data.groups.codes]
    if differs.any():
        import numpy as np

        group = data.groups.names[int(data.groups.codes[int(np.argmax(differs))])]
        raise InputError(
            f"--slice-by {shown!r} changes inside the --pool-by {unicode_safe(data.column)!r}"
            f" item {unicode_safe(group)[:80]!r}",
            where,
            "slice by a column that is constant within each rated item, or drop --pool-by",
        )
    return StringColumn(codes, column.vocabulary)
