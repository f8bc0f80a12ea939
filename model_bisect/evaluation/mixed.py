"""One cache feeding both kinds of model: feature columns ``[N, F]`` and tensor columns.

A timeline may hold feature models (``[N, F]`` float inputs) beside image models on one
parquet holding both kinds of column (a frame per row and its VMAF features). ``MixedDataset``
serves each graph input from the side that stores it: an input fed columns by the feature
table, an input fed a tensor column by the tensor table, so one model may even take both.
Both sides judge the same rows: the feature table's, which drops a row for a non-finite target
or a non-finite feature some model reads; the tensor table is made to keep exactly those.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .dataset import DroppedRows, Items, UnknownRows

if TYPE_CHECKING:
    import numpy as np

    from .dataset import Dataset
    from .features import FeatureTable
    from .inputs import InputDescription, ModelInput
    from .strings import StringColumn
    from .tensors import TensorTable

__all__ = ["MixedDataset", "open_mixed"]


@dataclass(frozen=True, eq=False)
class MixedDataset:
    """A feature table and a tensor table over the same file and the same kept rows."""

    features: FeatureTable
    tensors: TensorTable

    @property
    def path(self) -> Path:
        return self.features.path

    @property
    def sha256(self) -> str:
        return self.features.sha256

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.features.names, *self.tensors.names)))

    @property
    def rows(self) -> int:
        return self.features.rows

    @property
    def fed_rows(self) -> int:
        return self.features.rows

    def pooled(self, predictions: np.ndarray) -> np.ndarray:
        return predictions

    def kept_rows(self) -> np.ndarray | None:
        return self.features.kept

    @property
    def target(self) -> np.ndarray:
        return self.features.target

    @property
    def target_name(self) -> str:
        return self.features.target_name

    @property
    def digest(self) -> str:
        """Both sides' digests: the same bytes and rows read as a mixed cache key apart from
        either kind alone."""
        both = f"mixed\n{self.features.digest}\n{self.tensors.digest}"
        return hashlib.sha256(both.encode()).hexdigest()

    @property
    def dropped(self) -> DroppedRows:
        return self.features.dropped

    def lacking(self, description: InputDescription) -> list[str]:
        tensors = [c for c in description.tensor_columns if c not in self.tensors.columns]
        return [*tensors, *self.features.lacking(description)]

    @property
    def mistyped(self) -> Mapping[str, str]:
        return {**self.features.mistyped, **self.tensors.mistyped}

    def row_shape(self, model_input: ModelInput) -> tuple[int, ...]:
        return self._side(model_input).row_shape(model_input)

    def batch(self, model_input: ModelInput, start: int, stop: int) -> np.ndarray:
        return self._side(model_input).batch(model_input, start, stop)

    def unknown_rows(self, description: InputDescription) -> UnknownRows:
        return self.features.unknown_rows(description)  # one-hot layouts are feature columns

    def items(self) -> Items:
        return self.features.items()

    def string_columns(self, max_values: int) -> Mapping[str, StringColumn]:
        return self.features.string_columns(max_values)

    def _side(self, model_input: ModelInput) -> Dataset:
        return self.tensors if model_input.tensor is not None else self.features


def open_mixed(path: Path, descriptions: Sequence[InputDescription], target: str) -> MixedDataset:
    """Both tables of one file, read for the models that need each; neither refuses the file
    alone (a model either side cannot feed is skipped, naming what it lacks, and a run where
    every model is skipped is the engine's InputError)."""
    from .features import load_for
    from .tensors import open_tensors

    fed_columns = [d for d in descriptions if d.numeric_columns or d.string_columns]
    features = load_for(path, fed_columns, target, one_model=True)
    tensors = open_tensors(path, descriptions, target, one_model=True)
    tensors = replace(
        tensors,
        target=features.target,
        kept=features.kept,
        dropped_rows=features.dropped_rows,
        rows_sha256=features.rows_sha256,
    )
    return MixedDataset(features, tensors)


if TYPE_CHECKING:  # mypy checks that the mixed table is a Dataset
    _IS_A_DATASET: type[Dataset] = MixedDataset
