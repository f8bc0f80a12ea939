"""What a model's graph inputs are fed: described by the timeline file or the sidecar, not guessed.

A model's *input description* is the ordered list of its graph inputs, each with its column
specs and an optional standardisation. It comes from, in order: the timeline file entry's
``inputs`` table, the sidecar JSON beside the model, or the single-input rule (one float
``[N, F]`` input fed the canonical six). A column spec is a numeric column by name, or
``COLUMN_onehot[VALUE]``: 1.0 where the string column COLUMN equals VALUE.

Parsing is pure (mappings in, frozen records out). Feeding belongs to the data: a
``Dataset`` (``dataset.py``) turns one ``ModelInput`` into the values of a batch of rows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..catalogue import Direction
from ..errors import InputError
from ..safetext import unicode_safe
from .features import (
    CANONICAL_FEATURES,
    load_for,
    read_sidecar,
    repeated_names,
    sidecar_names,
    sidecar_path,
)

if TYPE_CHECKING:
    from .dataset import Dataset

__all__ = [
    "UNKNOWN",
    "ColumnSpec",
    "InputDescription",
    "ModelInput",
    "default_description",
    "describe",
    "direction_from_sidecar_data",
    "from_sidecar",
    "from_sidecar_data",
    "from_timeline_table",
    "merged",
    "open_dataset",
    "output_name",
    "parse_spec",
    "sidecar_direction",
    "undescribed",
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
    columns in order, and the float32 scaler ``(x - mean) / std`` the caller applies.

    A tensor input (``tensor`` set, no columns) is fed one tensor column of the cache: its
    values times ``scale``, then ``(x - mean) / std`` per channel (the row shape's first
    axis); ``shape`` gives the row shape of a plain ``fixed_size_list`` column."""

    name: str | None
    columns: tuple[ColumnSpec, ...]
    mean: tuple[float, ...] | None = None  # float32 values, held as Python floats
    std: tuple[float, ...] | None = None
    tensor: str | None = None  # the tensor column fed; None for feature columns
    scale: float | None = None  # float32, multiplied first
    shape: tuple[int, ...] | None = None  # row shape of a fixed_size_list column

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
    output: str | None = None  # the graph output scored; None: the first

    @property
    def tensor_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(i.tensor for i in self.inputs if i.tensor is not None))

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
        key: list[dict[str, Any]] = []
        for i in self.inputs:
            entry: dict[str, Any] = {
                "name": i.name,
                "columns": [s.text for s in i.columns],
                "mean": None if i.mean is None else list(i.mean),
                "std": None if i.std is None else list(i.std),
            }
            if i.tensor is not None:  # only then: feature models keep their cache keys
                entry["tensor"] = i.tensor
                entry["scale"] = i.scale
                entry["shape"] = None if i.shape is None else list(i.shape)
            key.append(entry)
        if self.output is not None:
            key.append({"output": self.output})
        return key

    def fingerprint(self) -> str:
        return json.dumps(self.key(), sort_keys=True, separators=(",", ":"))


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


# --- tensor inputs ----------------------------------------------------------------------------

_TENSOR_KEYS = frozenset({"tensor", "scale", "mean", "std", "shape"})
_TENSOR_FIX = (
    'write {INPUT = {tensor = "COLUMN", scale = 0.0039, mean = [...], std = [...]}}, '
    "mean and std one value per channel"
)


def _tensor_input(name: str, body: Mapping[str, Any], what: str, where: str) -> ModelInput:
    """``{tensor = COLUMN, scale?, mean?, std?, shape?}``: one graph input fed a tensor
    column. Channel counts are checked against the column when the data is open."""
    unknown = sorted(set(body) - _TENSOR_KEYS)
    if unknown:
        raise InputError(
            f"{what} has unknown key {', '.join(map(repr, unknown))}", where, _TENSOR_FIX
        )
    column = body["tensor"]
    if not isinstance(column, str) or not column:
        raise InputError(f"{what} tensor is not a column name", where, _TENSOR_FIX)
    scale = None
    if "scale" in body:
        (scale,) = _float32s([body["scale"]], f"{what} scale", 1, where, _TENSOR_FIX)
        if scale == 0:
            raise InputError(f"{what} scale is zero", where, "give a non-zero scale, e.g. 1/255")
    mean = std = None
    if "mean" in body:
        values = body["mean"]
        count = len(values) if isinstance(values, list) and values else 1
        mean = _float32s(values, f"{what} mean", count, where, _TENSOR_FIX)
    if "std" in body:
        values = body["std"]
        count = len(values) if isinstance(values, list) and values else 1
        std = _float32s(values, f"{what} std", count, where, _TENSOR_FIX)
        bad = [i for i, v in enumerate(std) if not v >= _FLOAT32_TINY]
        if bad:
            raise InputError(
                f"{what} std is zero, negative or subnormal at position "
                f"{', '.join(map(str, bad[:12]))}",
                where,
                "a standard deviation must be a positive float32",
            )
    shape = None
    if "shape" in body:
        given = body["shape"]
        if (
            not isinstance(given, list)
            or not given
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in given)
        ):
            raise InputError(
                f"{what} shape is not a list of positive integers",
                where,
                "give the row shape without the batch axis, e.g. shape = [3, 32, 32]",
            )
        shape = tuple(given)
    return ModelInput(name, (), mean, std, tensor=column, scale=scale, shape=shape)


def output_name(value: Any, where: str, what: str) -> str | None:
    """A model-level ``output`` key: the graph output scored (None: the first)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InputError(
            f"{what} output is not an output name", where, 'write output = "NAME" (a graph output)'
        )
    return value


# --- the timeline file's `inputs` table -----------------------------------------------------


def from_timeline_table(
    value: Any, where: str, entry: int, *, output: str | None = None
) -> InputDescription:
    """An entry's ``inputs`` table: ``{input name: [specs]}``, ``{input name: {columns =
    [specs], standardize = {mean = [...], std = [...]}}}`` or ``{input name: {tensor =
    COLUMN, ...}}`` (``_tensor_input``); ``output`` is the entry's graph output to score."""
    fix = (
        "write inputs as {INPUT = [column specs]}, "
        "{INPUT = {columns = [...], standardize = {mean = [...], std = [...]}}} or "
        '{INPUT = {tensor = "COLUMN", scale = ...}}'
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
        if isinstance(body, dict) and "tensor" in body:
            inputs.append(_tensor_input(str(name), body, what, where))
            continue
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
    return InputDescription(tuple(inputs), "timeline", output)


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
    if "inputs" in data:  # the timeline entry's table, in JSON
        output = output_name(data.get("output"), where, "sidecar")
        table = from_timeline_table(data["inputs"], where, 1, output=output)
        return InputDescription(table.inputs, "sidecar", table.output)
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


def sidecar_direction(model_path: Path) -> Direction | None:
    """The sidecar's model-level ``direction`` ("higher" or "lower"), None when it says none.

    A sidecar that cannot be read leaves it None: the model is skipped for that reason when
    it is described. A value other than the two is an InputError naming the sidecar, since
    guessing would judge a distance as a score (or the reverse).
    """
    try:
        data = read_sidecar(model_path)
    except InputError:
        return None
    return None if data is None else direction_from_sidecar_data(data, sidecar_path(model_path))


def direction_from_sidecar_data(data: Mapping[str, Any], sidecar: Path) -> Direction | None:
    """``sidecar_direction`` of an already parsed sidecar (pure)."""
    if "direction" not in data:
        return None
    value = data["direction"]
    if not isinstance(value, str) or value not in tuple(Direction):
        raise InputError(
            f"sidecar has direction {unicode_safe(repr(value)[:40])}",
            unicode_safe(str(sidecar)),
            'write "direction": "lower" when lower scores mean better quality, else "higher"',
        )
    return Direction(value)


def describe(model_path: Path, timeline_inputs: InputDescription | None) -> InputDescription:
    """The precedence: the timeline entry's table, else the sidecar, else the default rule.

    The table overrides the sidecar input by input (see ``merged``): what it does not
    override is kept, so a table that corrects one input does not silently drop the others
    or the sidecar's scaler. A sidecar that does not parse is ignored then: the table is how
    a broken sidecar is corrected without touching the model folder.
    """
    if timeline_inputs is None:
        return from_sidecar(model_path)
    try:
        sidecar = from_sidecar(model_path)
    except InputError:
        return timeline_inputs
    return merged(timeline_inputs, sidecar, sidecar_path(model_path))


def merged(timeline: InputDescription, sidecar: InputDescription, where: Path) -> InputDescription:
    """The timeline's inputs over the sidecar's, by graph input name.

    An input the table names takes its columns from the table, and its scaler too when the
    table gives ``standardize``; without one it keeps the sidecar's scaler when its columns
    are the sidecar's, and is refused (naming the missing ``standardize``) when it changes
    the columns of an input the sidecar standardises: a per-column scaler cannot be carried
    over to other columns, and dropping it would feed unscaled values without a word. Inputs
    the table does not name stay as the sidecar describes them. A sidecar whose inputs are
    bound by position (no ``input_names``) can only be matched when both describe one input;
    otherwise the table alone decides.
    """
    if sidecar.source == "default":
        return timeline
    given = {i.name: i for i in timeline.inputs}
    if sidecar.named:
        inputs = [_over(given[i.name], i, where) if i.name in given else i for i in sidecar.inputs]
        known = {i.name for i in sidecar.inputs}
        inputs += [i for i in timeline.inputs if i.name not in known]
        return InputDescription(tuple(inputs), "timeline", timeline.output or sidecar.output)
    if len(sidecar.inputs) == 1 and len(timeline.inputs) == 1:
        only = _over(timeline.inputs[0], sidecar.inputs[0], where)
        return InputDescription((only,), "timeline", timeline.output or sidecar.output)
    return timeline


def _over(mine: ModelInput, theirs: ModelInput, where: Path) -> ModelInput:
    """The timeline's ``mine`` with the sidecar's scaler kept when ``mine`` gives none."""
    if mine.tensor is not None or theirs.tensor is not None:  # a tensor input is whole
        return mine
    if mine.mean is not None or theirs.mean is None:
        return mine
    if [c.text for c in mine.columns] == [c.text for c in theirs.columns]:
        return ModelInput(mine.name, mine.columns, theirs.mean, theirs.std)
    raise InputError(
        f"the timeline's inputs table changes the columns of input {mine.name!r}, which the"
        " sidecar standardises, and gives no standardize for the new columns",
        str(where),
        f"add standardize = {{ mean = [...], std = [...] }} to input {mine.name!r} in the"
        " timeline file, or list the sidecar's columns unchanged",
    )


def undescribed(description: InputDescription, graph_input: str) -> str:
    """The skip reason for a graph input no description feeds: it names where the
    description came from, since the feature cache may hold every column it would need."""
    where = {
        "timeline": "the timeline entry's inputs table (and the sidecar) does not describe it",
        "sidecar": "the sidecar does not describe it",
        "default": "the default rule feeds one float [N, F] input and there is no sidecar",
    }[description.source]
    return (
        f"graph input {graph_input!r} is not fed: {where}; name it in the sidecar's"
        " input_names or in the timeline file's inputs table"
    )


def open_dataset(
    path: Path,
    descriptions: Sequence[InputDescription],
    target: str,
    *,
    one_model: bool = False,
    pool_by: str | None = None,
) -> Dataset:
    """The data every model of a run is fed from, read once; what to read follows from the
    models' descriptions: a tensor cache when only tensor columns are fed, both kinds at once
    (``mixed.MixedDataset``) when some inputs are fed feature columns too, else the
    feature parquet; with ``pool_by``, judged per group of that column (``pooling.pooled``)."""
    data: Dataset
    tensor_fed = any(d.tensor_columns for d in descriptions)
    column_fed = any(d.numeric_columns or d.string_columns for d in descriptions)
    if tensor_fed and column_fed:
        from .mixed import open_mixed

        data = open_mixed(path, descriptions, target)
    elif tensor_fed:
        from .tensors import open_tensors

        data = open_tensors(path, descriptions, target, one_model=one_model)
    else:
        data = load_for(path, descriptions, target, one_model=one_model)
    if pool_by is None:
        return data
    from .pooling import pooled

    return pooled(data, pool_by)
