"""The seam between the rated data and whatever evaluates models on it.

The engine and the evaluator see the data only through ``Dataset``: how many rows, the
target, the digest that keys the evaluation cache, what one graph input is fed for a range of
rows, and which rows were dropped and why. The feature parquet (``features.FeatureTable``,
float32 columns fed as ``[N, F]``) is the first kind; another kind (tensor columns streamed
from the cache in batches) is one more implementation and one more branch in
``inputs.open_dataset``, with the engine and the search left as they are. Imports nothing of
the package at run time, so every implementation may import these records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from .inputs import InputDescription, ModelInput
    from .strings import StringColumn

__all__ = ["Dataset", "DroppedRows", "Items", "UnknownRows"]


@dataclass(frozen=True)
class DroppedRows:
    """Rows of the stored data left out of every evaluation, and the sentence saying why."""

    count: int
    reason: str


@dataclass(frozen=True)
class UnknownRows:
    """Rows a model was fed a stand-in for (a value its one-hot layout does not list), and
    the sentence the report shows for them ("" when none)."""

    count: int = 0
    note: str = ""


@dataclass(frozen=True, eq=False)
class Items:
    """How the culprit section names the rated items: by their row of the file (``rows``,
    None when every row is kept), or, pooled, by group: an item's number is its group's
    position and its id the value of ``group_by``, one of ``names``."""

    rows: np.ndarray | None = None
    group_by: str | None = None
    names: tuple[str, ...] = ()


class Dataset(Protocol):
    """What evaluating a model needs of the data, whatever stores it.

    Implementations are read-only once opened and safe to share between threads: parallel
    probes call ``batch`` at once.
    """

    @property
    def path(self) -> Path:
        """The file the data came from, for the report."""
        ...

    @property
    def sha256(self) -> str:
        """That file's bytes, for the report."""
        ...

    @property
    def names(self) -> tuple[str, ...]:
        """The stored columns this run loaded, for the report."""
        ...

    @property
    def rows(self) -> int:
        """Rated items kept: every (pooled) prediction array and the target have this
        length."""
        ...

    @property
    def fed_rows(self) -> int:
        """Rows the models are fed (``rows`` unless rows are pooled into items)."""
        ...

    def pooled(self, predictions: np.ndarray) -> np.ndarray:
        """``[fed_rows]`` predictions as ``[rows]``, one per rated item (the identity unless
        rows are pooled: ``pooling.PooledDataset``)."""
        ...

    def kept_rows(self) -> np.ndarray | None:
        """The file row of each kept row (None: every row is kept)."""
        ...

    @property
    def target(self) -> np.ndarray:
        """``[rows]``, read-only: what the predictions are compared with. float32 when the
        file stores it so (the statistics upcast it, exactly, where they sum or fit), else
        float64."""
        ...

    @property
    def target_name(self) -> str: ...

    @property
    def digest(self) -> str:
        """The data as evaluated (its bytes and which rows were kept): keys the evaluation
        cache, so a model never reuses metrics computed on other data or other rows."""
        ...

    @property
    def dropped(self) -> DroppedRows: ...

    def lacking(self, description: InputDescription) -> list[str]:
        """What ``description`` needs that this data does not hold (the model is skipped,
        naming them)."""
        ...

    @property
    def mistyped(self) -> Mapping[str, str]:
        """Columns present but of a type the descriptions cannot use, each with what is
        wrong ("float, not a string column"): a model that needs one is skipped, saying so."""
        ...

    def row_shape(self, model_input: ModelInput) -> tuple[int, ...]:
        """The shape of one row of what ``model_input`` is fed, without the batch axis."""
        ...

    def batch(self, model_input: ModelInput, start: int, stop: int) -> np.ndarray:
        """What the graph input is fed for rows ``start:stop``: ``[stop - start,
        *row_shape]``, in float32 (the evaluator casts to the input's own float type)."""
        ...

    def unknown_rows(self, description: InputDescription) -> UnknownRows: ...

    def items(self) -> Items:
        """What names each of the ``rows`` rated items (the culprit's worst rows)."""
        ...

    def string_columns(self, max_values: int) -> Mapping[str, StringColumn]:
        """Every string column of the file with at most ``max_values`` values, one code per
        rated item (-1: null, or a group whose rows disagree), for the culprit's slices. Reads
        those columns only, never a tensor column."""
        ...
