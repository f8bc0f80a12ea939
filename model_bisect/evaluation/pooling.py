"""``--pool-by COLUMN``: rows sharing a value of COLUMN (a clip id) are one rated item.

A model is fed every row (every frame); its predictions are averaged per group before they
meet the target, which must be the same number on every row of a group. Metrics, intervals
and significance are then computed over groups. The averaging is pure (``group_means``); the
data side is ``PooledDataset``, a ``Dataset`` over another one whose rows are the groups.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError, first_line
from ..safetext import unicode_safe
from .dataset import DroppedRows, Items, UnknownRows
from .features import MIN_ROWS
from .strings import StringColumn

if TYPE_CHECKING:
    import numpy as np

    from .dataset import Dataset
    from .inputs import InputDescription, ModelInput

__all__ = [
    "Groups",
    "PooledDataset",
    "group_codes",
    "group_means",
    "group_target",
    "groups_of",
    "pooled",
]


@dataclass(frozen=True, eq=False)
class Groups:
    """Each kept row's group (``codes``, 0..count-1, in order of first appearance) and each
    group's value as text, for messages."""

    codes: np.ndarray  # int64 [rows]
    names: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.names)


def groups_of(values: np.ndarray) -> Groups:
    """Group codes of a column's values, numbered in order of first appearance (pure)."""
    import numpy as np

    unique, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # group k: the k-th value to appear
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return Groups(rank[inverse.reshape(-1)], tuple(str(unique[i]) for i in order))


def group_means(predictions: np.ndarray, groups: Groups) -> np.ndarray:
    """float64 mean prediction of each group (pure)."""
    import numpy as np

    sums = np.bincount(groups.codes, weights=predictions.astype(np.float64), minlength=groups.count)
    counts = np.bincount(groups.codes, minlength=groups.count)
    means: np.ndarray = sums / counts
    return means


def _first_rows(groups: Groups) -> np.ndarray:
    """The first row of each group."""
    import numpy as np

    first_row = np.full(groups.count, -1, dtype=np.int64)
    rows = np.arange(len(groups.codes))
    first_row[groups.codes[::-1]] = rows[::-1]  # the last write per group is its first row
    return first_row


def group_target(target: np.ndarray, groups: Groups) -> tuple[np.ndarray, str | None]:
    """Each group's target, and the first group (in row order) whose rows disagree, if any."""
    import numpy as np

    # float64 whatever the rows' dtype (an exact upcast): one value per item, few of them.
    values = np.asarray(target[_first_rows(groups)], dtype=np.float64)
    differs = target != values[groups.codes]
    if differs.any():
        return values, groups.names[int(groups.codes[int(np.argmax(differs))])]
    return values, None


def group_codes(codes: np.ndarray, groups: Groups) -> np.ndarray:
    """Each group's code: its rows' one code, or -1 where they disagree (pure)."""
    import numpy as np

    values: np.ndarray = codes[_first_rows(groups)].astype(np.int32)
    differs = codes != values[groups.codes]
    values[np.unique(groups.codes[differs])] = -1
    return values


@dataclass(frozen=True, eq=False)
class PooledDataset:
    """Another dataset's rows, fed as they are, judged per group of ``column``."""

    inner: Dataset
    column: str
    groups: Groups
    target: np.ndarray  # float64 [groups], read-only

    @property
    def path(self) -> Path:
        return self.inner.path

    @property
    def sha256(self) -> str:
        return self.inner.sha256

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.inner.names, self.column)

    @property
    def rows(self) -> int:
        return self.groups.count

    @property
    def fed_rows(self) -> int:
        return self.inner.fed_rows

    @property
    def target_name(self) -> str:
        return self.inner.target_name

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.inner.digest}\npool-by {self.column}".encode()).hexdigest()

    @property
    def dropped(self) -> DroppedRows:
        return self.inner.dropped

    @property
    def mistyped(self) -> Mapping[str, str]:
        return self.inner.mistyped

    def lacking(self, description: InputDescription) -> list[str]:
        return self.inner.lacking(description)

    def row_shape(self, model_input: ModelInput) -> tuple[int, ...]:
        return self.inner.row_shape(model_input)

    def batch(self, model_input: ModelInput, start: int, stop: int) -> np.ndarray:
        return self.inner.batch(model_input, start, stop)

    def unknown_rows(self, description: InputDescription) -> UnknownRows:
        return self.inner.unknown_rows(description)

    def kept_rows(self) -> np.ndarray | None:
        return self.inner.kept_rows()

    def pooled(self, predictions: np.ndarray) -> np.ndarray:
        return group_means(self.inner.pooled(predictions), self.groups)

    def items(self) -> Items:
        """Groups, named by their value of the pooling column."""
        return Items(group_by=self.column, names=self.groups.names)

    def string_columns(self, max_values: int) -> Mapping[str, StringColumn]:
        """A column constant within a clip (its distortion) slices the clips; a group whose
        rows disagree is -1, as a null is. The pooling column itself is no slice."""
        return {
            name: StringColumn(group_codes(column.codes, self.groups), column.vocabulary)
            for name, column in self.inner.string_columns(max_values).items()
            if name != self.column
        }


def pooled(data: Dataset, column: str) -> PooledDataset:
    """``data`` judged per group of ``column`` (a string or integer column of its file).
    InputError when the column is missing, holds nulls, or a group's target is not one
    number."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    where = unicode_safe(str(data.path))
    try:
        schema = pq.read_schema(data.path)
        if column not in schema.names:
            shown = ", ".join(unicode_safe(n)[:80] for n in schema.names[:12])
            raise InputError(
                f"no --pool-by column {unicode_safe(column)!r}", where, f"pass one of: {shown}"
            )
        kind = schema.field(column).type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)) and not (
            pa.types.is_integer(kind)
        ):
            raise InputError(
                f"--pool-by column {unicode_safe(column)!r} is {kind}, not strings or integers",
                where,
                "pool by a clip id column of strings or integers",
            )
        values = pq.read_table(data.path, columns=[column]).column(0)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(
            f"corrupt parquet file ({first_line(exc)})", where, "regenerate the cache"
        ) from None
    if values.null_count:
        raise InputError(
            f"--pool-by column {unicode_safe(column)!r} holds {values.null_count} null rows",
            where,
            "give every row its clip id",
        )
    array = values.to_numpy()
    kept = data.kept_rows()
    groups = groups_of(array if kept is None else array[kept])
    if groups.count < MIN_ROWS:
        raise InputError(
            f"--pool-by {unicode_safe(column)!r} leaves {groups.count} rated items, at least "
            f"{MIN_ROWS} needed",
            where,
            "pool by a column with more distinct values",
        )
    target, differs = group_target(np.asarray(data.target), groups)
    if differs is not None:
        raise InputError(
            f"--pool-by {unicode_safe(column)!r}: group {unicode_safe(differs)[:80]!r} has "
            f"rows whose {unicode_safe(data.target_name)!r} differ",
            where,
            "give every row of a rated item the same score, or pool by another column",
        )
    target.setflags(write=False)
    return PooledDataset(data, column, groups, target)
