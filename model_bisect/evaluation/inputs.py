"""What a model's graph inputs are fed: described by the timeline file or the sidecar, not guessed.

A model's *input description* is the ordered list of its graph inputs, each with its column
specs and an optional standardisation. It comes from, in order: the timeline file entry's
``inputs`` table, the sidecar JSON beside the model, or the single-input rule (one float
``[N, F]`` input fed the canonical six). A column spec is a numeric column by name, or
``COLUMN_onehot[VALUE]``: 1.0 where the string column COLUMN equals VALUE.

Parsing is pure (mappings in, frozen records out); feeding is numpy on an already loaded
``FeatureTable``, a batch of rows at a time, so a wide one-hot block never exists for every
row at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import InputError
from .features import (
    CANONICAL_FEATURES,
    read_sidecar,
    repeated_names,
    sidecar_names,
    sidecar_path,
)

if TYPE_CHECKING:
    import numpy as np

    from .features import FeatureTable

__all__ = [
    "UNKNOWN",
    "ColumnSpec",
    "Feed",
    "InputDescription",
    "ModelInput",
    "default_description",
    "describe",
    "from_sidecar",
    "from_sidecar_data",
    "from_timeline_table",
    "parse_spec",
    "unknown_rows",
]

_FLOAT32_TINY = 1.1754943508222875e-38  # numpy.finfo(numpy.float32).tiny
UNKNOWN = "unknown"  # the one-hot value that catches every value a layout does not list
_ONEHOT = re.compile(r"(?P<column>.+)_onehot\[(?P<value>.*)\]", re.DOTALL)
Source = Literal["timeline", "sidecar", "default"]


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a graph input: ``column`` itself, or its one-hot indicator of ``value``."""

    text: str  # as written: "adm2" or "encoder_onehot[libx264]"
    column: str
    value: str | None = None  # the one-hot value; None for a numeric column

    @property
    def onehot(self) -> bool:
        return self.value is not None


def parse_spec(text: str) -> ColumnSpec:
    """``adm2`` -> numeric column; ``encoder_onehot[libx264]`` -> one-hot of ``encoder``.
    ValueError (naming the spec) for an empty name or an empty one-hot value."""
    if not text:
        raise ValueError("an empty column name")
    match = _ONEHOT.fullmatch(text)
    if match is None:
        return ColumnSpec(text, text)
    if not match["value"]:
        raise ValueError(f"one-hot spec {text!r} has an empty value")
    return ColumnSpec(text, match["column"], match["value"])


@dataclass(frozen=True)
class ModelInput:
    """One graph input: its name (None: the single float input, or bound by position), its
    columns in order, and the float32 scaler ``(x - mean) / std`` the caller applies."""

    name: str | None
    columns: tuple[ColumnSpec, ...]
    mean: tuple[float, ...] | None = None  # float32 values, held as Python floats
    std: tuple[float, ...] | None = None

    def unknown_slot(self, column: str) -> int | None:
        """Position of ``COLUMN_onehot[unknown]`` in this input, if the layout has one."""
        for position, spec in enumerate(self.columns):
            if spec.column == column and spec.value == UNKNOWN:
                return position
        return None


@dataclass(frozen=True)
class InputDescription:
    """Every graph input a model is fed, and where that description came from."""

    inputs: tuple[ModelInput, ...]
    source: Source

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        return tuple(
            dict.fromkeys(s.column for i in self.inputs for s in i.columns if not s.onehot)
        )

    @property
    def string_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.column for i in self.inputs for s in i.columns if s.onehot))

    @property
    def named(self) -> bool:
        """Inputs bound by name (else: by position, or the single-input rule)."""
        return all(i.name is not None for i in self.inputs)

    def key(self) -> list[dict[str, Any]]:
        """Everything that decides what the model is fed (columns, layouts, scaler values), as
        JSON-able data: the evaluation cache keys on it. The source is left out on purpose:
        the same description from the timeline or the sidecar feeds the same values."""
        return [
            {
                "name": i.name,
                "columns": [s.text for s in i.columns],
                "mean": None if i.mean is None else list(i.mean),
                "std": None if i.std is None else list(i.std),
            }
            for i in self.inputs
        ]

    def fingerprint(self) -> str:
        return json.dumps(self.key(), sort_keys=True, separators=(",", ":"))

    def lacking(self, table: FeatureTable) -> list[str]:
        """Columns the description needs that the loaded table does not hold."""
        loaded = set(table.names)  # a sidecar may list 100,000s of names: no tuple scans
        numeric = [name for name in self.numeric_columns if name not in loaded]
        strings = [name for name in self.string_columns if name not in table.strings]
        return [*numeric, *strings]


def default_description(columns: Sequence[str] = CANONICAL_FEATURES) -> InputDescription:
    """The single-input rule: one float ``[N, F]`` input fed ``columns`` (the canonical six)."""
    specs = tuple(ColumnSpec(name, name) for name in columns)
    return InputDescription((ModelInput(None, specs),), "default")


# --- validation helpers (shared by the two sources) ---------------------------------------


def _specs(value: Any, what: str, where: str, fix: str) -> tuple[ColumnSpec, ...]:
    if not isinstance(value, list) or not value:
        raise InputError(f"{what} is not a non-empty list of column specs", where, fix)
    if not all(isinstance(v, str) for v in value):
        raise InputError(f"{what} holds a non-string column spec", where, fix)
    duplicates = repeated_names(value)
    if duplicates:
        raise InputError(f"{what} repeats {', '.join(map(repr, duplicates))}", where, fix)
    try:
        return tuple(parse_spec(v) for v in value)
    except ValueError as exc:
        raise InputError(f"{what} has {exc}", where, fix) from None


def _float32s(value: Any, what: str, count: int, where: str, fix: str) -> tuple[float, ...]:
    """A list of ``count`` numbers rounded to float32 once, here, so the scaler applied and
    the scaler in the cache key are the same numbers."""
    import numpy as np

    if not isinstance(value, list) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        raise InputError(f"{what} is not a list of numbers", where, fix)
    if len(value) != count:
        raise InputError(f"{what} has {len(value)} values for {count} columns", where, fix)
    try:
        with np.errstate(over="ignore"):
            rounded = np.asarray(value, dtype=np.float64).astype(np.float32)
    except OverflowError:  # an integer beyond float64 (JSON integers have no bound)
        raise InputError(f"{what} holds a number too large for a float", where, fix) from None
    if not np.isfinite(rounded).all():
        raise InputError(f"{what} holds a value that is not a finite float32", where, fix)
    return tuple(float(v) for v in rounded)


def _scaler(
    mean: Any, std: Any, names: tuple[str, str], count: int, where: str, fix: str
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    mean_values = _float32s(mean, names[0], count, where, fix)
    std_values = _float32s(std, names[1], count, where, fix)
    bad = [i for i, v in enumerate(std_values) if not v > 0]
    if bad:
        raise InputError(
            f"{names[1]} is zero or negative at position {', '.join(map(str, bad))}",
            where,
            "a standard deviation must be positive; drop the column or fix the scaler",
        )
    # Below float32's smallest normal number (1.2e-38) the division overflows for any
    # ordinary feature value: refused here, with its reason, rather than as a RuntimeWarning
    # on stderr and "non-finite predictions".
    tiny = [i for i, v in enumerate(std_values) if v < _FLOAT32_TINY]
    if tiny:
        raise InputError(
            f"{names[1]} is below 1.2e-38 (float32's smallest normal number) at position "
            f"{', '.join(map(str, tiny[:12]))}",
            where,
            "a column that constant carries nothing: drop it or fix the scaler",
        )
    return mean_values, std_values


# --- the timeline file's `inputs` table -----------------------------------------------------


def from_timeline_table(value: Any, where: str, entry: int) -> InputDescription:
    """An entry's ``inputs`` table: ``{input name: [specs]}`` or ``{input name: {columns =
    [specs], standardize = {mean = [...], std = [...]}}}``."""
    fix = (
        "write inputs as {INPUT = [column specs]} or "
        "{INPUT = {columns = [...], standardize = {mean = [...], std = [...]}}}"
    )
    if not isinstance(value, dict) or not value:
        raise InputError(
            f"entry {entry} has an inputs value that is not a non-empty table", where, fix
        )
    inputs = []
    for name, body in value.items():
        what = f"entry {entry} input {name!r}"
        if not name:
            raise InputError(f"entry {entry} has an input with an empty name", where, fix)
        standardize = None
        if isinstance(body, dict):
            unknown = sorted(set(body) - {"columns", "standardize"})
            if unknown:
                raise InputError(
                    f"{what} has unknown key {', '.join(map(repr, unknown))}", where, fix
                )
            columns = body.get("columns")
            standardize = body.get("standardize")
        else:
            columns = body
        specs = _specs(columns, f"{what} columns", where, fix)
        mean = std = None
        if standardize is not None:
            if not isinstance(standardize, dict) or set(standardize) != {"mean", "std"}:
                raise InputError(
                    f"{what} standardize is not a table of exactly mean and std", where, fix
                )
            mean, std = _scaler(
                standardize["mean"],
                standardize["std"],
                (f"{what} standardize.mean", f"{what} standardize.std"),
                len(specs),
                where,
                "give one mean and one std per column, in the order of the columns",
            )
        inputs.append(ModelInput(str(name), specs, mean, std))
    return InputDescription(tuple(inputs), "timeline")


# --- the sidecar JSON -------------------------------------------------------------------------

# Keys that say how to feed the model; a sidecar without any of them leaves the default rule.
_SIDECAR_KEYS = (
    "input_names",
    "feature_order",
    "features",
    "feature_mean",
    "feature_std",
    "codec_block_layout",
)


def from_sidecar_data(data: Mapping[str, Any], sidecar: Path) -> InputDescription:
    """The description a sidecar gives (pure: the parsed JSON in, the record out).

    ``feature_order`` (or ``features``) is the first input's columns, ``feature_mean`` /
    ``feature_std`` its scaler, ``codec_block_layout`` the second input's columns and
    ``input_names`` the graph names of both. ``input_mean`` / ``input_std`` describe a scaler
    baked into the graph, so they are deliberately not applied again; ``encoder_vocab`` is
    documentation of the training vocabulary: the layout alone decides the columns.
    """
    where = str(sidecar)
    if not any(key in data for key in _SIDECAR_KEYS):
        return default_description()
    first = CANONICAL_FEATURES
    for key in ("features", "feature_order"):  # the published name last: it wins
        if key in data:
            first = sidecar_names(data, key, sidecar)
    both = "feature_order" in data and "features" in data
    if both and sidecar_names(data, "features", sidecar) != first:
        raise InputError(
            'sidecar "feature_order" and "features" disagree',
            where,
            "keep one of them, or make them the same list",
        )
    fix_order = 'give "feature_mean" and "feature_std" one value per "feature_order" column'
    mean = std = None
    if ("feature_mean" in data) != ("feature_std" in data):
        present = "feature_mean" if "feature_mean" in data else "feature_std"
        raise InputError(f'sidecar has "{present}" without its pair', where, fix_order)
    if "feature_mean" in data:
        mean, std = _scaler(
            data["feature_mean"],
            data["feature_std"],
            ('sidecar "feature_mean"', 'sidecar "feature_std"'),
            len(first),
            where,
            fix_order,
        )
    if "encoder_vocab" in data:
        vocab = data["encoder_vocab"]
        if not isinstance(vocab, list) or not all(isinstance(v, str) for v in vocab):
            raise InputError(
                'sidecar "encoder_vocab" is not a list of strings', where, "fix or remove it"
            )
    columns = [tuple(ColumnSpec(n, n) for n in first)]
    scalers: list[tuple[tuple[float, ...] | None, tuple[float, ...] | None]] = [(mean, std)]
    if "codec_block_layout" in data:
        layout = data["codec_block_layout"]
        fix_layout = 'make "codec_block_layout" a list like ["encoder_onehot[libx264]", "crf_norm"]'
        columns.append(_specs(layout, 'sidecar "codec_block_layout"', where, fix_layout))
        scalers.append((None, None))
    names: list[str | None] = [None] * len(columns)
    if "input_names" in data:
        given = data["input_names"]
        if (
            not isinstance(given, list)
            or not given
            or not all(isinstance(n, str) and n for n in given)
            or len(set(given)) != len(given)
        ):
            raise InputError(
                'sidecar "input_names" is not a list of distinct input names',
                where,
                'list the graph inputs in order, e.g. ["features", "codec"]',
            )
        if len(given) > len(columns):
            raise InputError(
                f"sidecar names input {given[len(columns)]!r} but gives no columns for it",
                where,
                'add "codec_block_layout", or describe the inputs in the timeline file',
            )
        if len(given) < len(columns):
            raise InputError(
                'sidecar "codec_block_layout" describes a second input "input_names" lacks',
                where,
                'list both graph inputs in "input_names"',
            )
        names = list(given)
    inputs = tuple(
        ModelInput(name, specs, m, s)
        for name, specs, (m, s) in zip(names, columns, scalers, strict=True)
    )
    return InputDescription(inputs, "sidecar")


def from_sidecar(model_path: Path) -> InputDescription:
    """The sidecar's description, or the default rule when there is no sidecar."""
    data = read_sidecar(model_path)
    if data is None:
        return default_description()
    return from_sidecar_data(data, sidecar_path(model_path))


def describe(model_path: Path, timeline_inputs: InputDescription | None) -> InputDescription:
    """The precedence: the timeline entry's table, else the sidecar, else the default rule."""
    return timeline_inputs if timeline_inputs is not None else from_sidecar(model_path)


# --- feeding ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Feed:
    """One graph input's values for every row of a table, cut into batches on demand."""

    spec: ModelInput
    numeric: np.ndarray  # float32 [rows, numeric columns], shared with the table
    numeric_positions: tuple[int, ...]
    onehots: tuple[tuple[np.ndarray, np.ndarray], ...]  # (codes, slot of code+1 or -1)
    mean: np.ndarray | None
    std: np.ndarray | None

    @property
    def width(self) -> int:
        return len(self.spec.columns)

    @classmethod
    def build(cls, spec: ModelInput, table: FeatureTable) -> Feed:
        import numpy as np

        numeric_specs = [(p, s) for p, s in enumerate(spec.columns) if not s.onehot]
        numeric = table.columns([s.column for _, s in numeric_specs])
        onehots = []
        for column in dict.fromkeys(s.column for s in spec.columns if s.onehot):
            strings = table.strings[column]
            slots = {s.value: p for p, s in enumerate(spec.columns) if s.column == column}
            fallback = spec.unknown_slot(column)
            default = -1 if fallback is None else fallback
            # index 0 stands for a null row (code -1), index c + 1 for vocabulary[c]
            lookup = np.asarray(
                [default, *(slots.get(v, default) for v in strings.vocabulary)], dtype=np.int64
            )
            onehots.append((strings.codes, lookup))
        mean = None if spec.mean is None else np.asarray(spec.mean, dtype=np.float32)
        std = None if spec.std is None else np.asarray(spec.std, dtype=np.float32)
        return cls(spec, numeric, tuple(p for p, _ in numeric_specs), tuple(onehots), mean, std)

    def batch(self, begin: int, end: int) -> np.ndarray:
        """float32 ``[end - begin, width]``; a plain numeric input is a view, not a copy."""
        import numpy as np

        plain = not self.onehots and self.numeric_positions == tuple(range(self.width))
        if plain:
            values = self.numeric[begin:end]
        else:
            values = np.zeros((end - begin, self.width), dtype=np.float32)
            if self.numeric_positions:
                values[:, list(self.numeric_positions)] = self.numeric[begin:end]
            for codes, lookup in self.onehots:
                slots = lookup[codes[begin:end].astype(np.int64) + 1]
                rows = np.flatnonzero(slots >= 0)
                values[rows, slots[rows]] = 1.0
        if self.mean is not None and self.std is not None:
            values = (values - self.mean) / self.std  # float32 throughout
        return values


def unknown_rows(description: InputDescription, table: FeatureTable) -> tuple[int, str]:
    """How many rows hold a one-hot column value that the layout does not list (null
    included), and the sentence the report shows for them ("" when none)."""
    import numpy as np

    affected = np.zeros(table.rows, dtype=bool)
    where_to: dict[str, str] = {}
    for spec in description.inputs:
        for column in dict.fromkeys(s.column for s in spec.columns if s.onehot):
            listed = {s.value for s in spec.columns if s.column == column}
            strings = table.strings[column]
            known = np.asarray([False, *(v in listed for v in strings.vocabulary)], dtype=bool)
            outside = ~known[strings.codes.astype(np.int64) + 1]
            if outside.any():
                affected |= outside
                slot = spec.unknown_slot(column)
                where_to[column] = (
                    f"{column}_onehot[{UNKNOWN}]" if slot is not None else "all zeros"
                )
    count = int(np.count_nonzero(affected))
    if not count:
        return 0, ""
    parts = ", ".join(f"{column} (fed as {target})" for column, target in where_to.items())
    noun = "row has a value" if count == 1 else "rows have a value"
    return count, f"{count} {noun} outside the one-hot layout: {parts}"
