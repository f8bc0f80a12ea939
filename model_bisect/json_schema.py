"""JSON Schemas of the two documents other tools read: the report (`schema_version` 1) and
`[tool.model-bisect]`, generated from the code's own records.

The report's schema walks the report dataclasses' fields and type hints (a tuple is an array,
an enum its values, an optional field may be null); where a record's JSON differs from its
fields, the difference is written down here once (`_JSON_NAMES`, `_COMPUTED`, the catalogue's
metrics flattened into `Metrics`). The settings schema comes from `settings.py`, the timeline
registry and the catalogue. The package ships both (`model_bisect/schemas/`), and a test keeps
the shipped files equal to what this module generates; `write_schemas` rewrites them.
Standard library only.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

from .catalogue import CATALOGUE, GateKind, MappingName
from .culprit.record import Agreement, Culprit, GraphChange, RowChange, SliceChange
from .files import write_text_atomic
from .publishing.marker import KEY_PATTERN
from .report import SCHEMA_VERSION, Metrics, Report
from .settings import SETTINGS, Kind
from .timeline.registry import SOURCES

__all__ = [
    "CONFIG_SCHEMA_NAME",
    "REPORT_SCHEMA_NAME",
    "SHIPPED",
    "config_schema",
    "report_schema",
    "schema_texts",
    "write_schemas",
]

DRAFT = "https://json-schema.org/draft/2020-12/schema"
REPORT_SCHEMA_NAME = "report.schema.json"
CONFIG_SCHEMA_NAME = "config.schema.json"
SHIPPED = Path(__file__).resolve().parent / "schemas"

# Fields whose JSON key is not the field's name, and JSON keys computed from properties.
_JSON_NAMES: Mapping[tuple[type, str], str] = {
    (Agreement, "mean_abs"): "mean_abs_diff",
    (Agreement, "max_abs"): "max_abs_diff",
    (RowChange, "row_id"): "id",
}
_COMPUTED: Mapping[type, Mapping[str, str]] = {RowChange: {"error_growth": "growth"}}

_NULLABLE_NUMBER: dict[str, Any] = {"type": ["number", "null"]}  # NaN and inf are written null
_DOCUMENTED = (Report, Culprit, GraphChange, Agreement, SliceChange, RowChange)


def _definition_name(cls: type) -> str:
    return cls.__name__


def _enum_values(cls: type[Enum]) -> list[Any]:
    return [member.value for member in cls]


def _type_schema(hint: Any, owner: type) -> dict[str, Any]:
    """The JSON Schema of one field's type hint."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in args if a is not type(None)]
        inner = _type_schema(options[0], owner) if len(options) == 1 else {}
        if "$ref" in inner:
            return {"anyOf": [inner, {"type": "null"}]}
        if "type" in inner:
            kinds = inner["type"] if isinstance(inner["type"], list) else [inner["type"]]
            nullable = {**inner, "type": [*kinds, *([] if "null" in kinds else ["null"])]}
            if "enum" in nullable:
                nullable["enum"] = [*nullable["enum"], None]
            return nullable
        return {}
    if origin is tuple:
        return {"type": "array", "items": _type_schema(args[0], owner)}
    if origin in (Mapping, dict, typing.Mapping):
        return {"type": "object", "additionalProperties": _type_schema(args[1], owner)}
    if isinstance(hint, type) and issubclass(hint, Enum):
        return {"type": "string", "enum": _enum_values(hint)}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return {"$ref": f"#/$defs/{_definition_name(hint)}"}
    simple = {bool: "boolean", int: "integer", str: "string"}
    if hint in simple:
        return {"type": simple[hint]}
    if hint is float:
        return dict(_NULLABLE_NUMBER)
    if hint is Any:
        return {}
    raise TypeError(f"{owner.__name__}: no JSON Schema for the type {hint!r}")


def _record_schema(cls: type) -> dict[str, Any]:
    """One dataclass as an object: a property per field (under its JSON name), each field
    without a default required, nothing else allowed."""
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {}
    required = []
    for field in dataclasses.fields(cls):
        key = _JSON_NAMES.get((cls, field.name), field.name)
        properties[key] = _type_schema(hints[field.name], cls)
        has_default = (
            field.default is not dataclasses.MISSING
            or field.default_factory is not dataclasses.MISSING
        )
        if not has_default:  # a field with a default may be absent (older reports lack it)
            required.append(key)
    for key in _COMPUTED.get(cls, {}):
        properties[key] = dict(_NULLABLE_NUMBER)
        required.append(key)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if cls.__doc__ and cls in _DOCUMENTED:
        schema["description"] = " ".join(cls.__doc__.split())
    return {**schema, "required": required, "additionalProperties": False}


def _metrics_schema() -> dict[str, Any]:
    """`Metrics` is written flat: one key per catalogue metric, then n, ci and the mapping."""
    interval = {"type": "array", "prefixItems": [_NULLABLE_NUMBER] * 2, "items": False}
    base = _record_schema(Metrics)
    properties = {
        **{name: dict(_NULLABLE_NUMBER) for name in CATALOGUE.names},
        "n": base["properties"]["n"],
        "ci": {
            "type": "object",
            "propertyNames": {"enum": list(CATALOGUE.names)},
            "additionalProperties": interval,
        },
        "mapping": {"type": "string", "enum": [m.value for m in MappingName]},
        "mapping_direction": base["properties"]["mapping_direction"],
    }
    return {
        "type": "object",
        "properties": properties,
        "required": ["n"],
        "additionalProperties": False,
    }


def _records(root: type) -> list[type]:
    """Every dataclass reachable from ``root``'s fields, ``root`` first."""
    found: list[type] = []
    todo = [root]
    while todo:
        cls = todo.pop(0)
        if cls in found:
            continue
        found.append(cls)
        for hint in typing.get_type_hints(cls).values():
            stack = [hint]
            while stack:
                current = stack.pop()
                stack.extend(typing.get_args(current))
                if isinstance(current, type) and dataclasses.is_dataclass(current):
                    todo.append(current)
    return found


def report_schema() -> dict[str, Any]:
    """The report's schema (``schema_version`` 1)."""
    definitions = {
        _definition_name(cls): _metrics_schema() if cls is Metrics else _record_schema(cls)
        for cls in _records(Report)[1:]
    }
    top = _record_schema(Report)
    top["properties"]["schema_version"] = {"const": SCHEMA_VERSION}
    top["required"] = [*top["required"], "schema_version"]
    return {
        "$schema": DRAFT,
        "$id": f"https://model-bisect.invalid/schemas/{REPORT_SCHEMA_NAME}",
        "title": f"model-bisect report, schema_version {SCHEMA_VERSION}",
        **top,
        "$defs": definitions,
    }


def _setting_value(kind: Kind, choices: tuple[str, ...]) -> dict[str, Any]:
    """The JSON type of one kind of setting (bounds and default are added by the caller)."""
    if kind is Kind.CHOICE:
        return {"type": "string", "enum": list(choices)}
    if kind is Kind.LIST:
        text = {"type": "string", "minLength": 1}
        return {"anyOf": [text, {"type": "array", "items": text, "minItems": 1}]}
    kinds: dict[Kind, dict[str, Any]] = {
        Kind.PATH: {"type": "string", "minLength": 1},
        Kind.TEXT: {"type": "string", "minLength": 1},
        Kind.NUMBER: {"type": "number"},
        Kind.INTEGER: {"type": "integer"},
        Kind.SWITCH: {"type": "boolean"},
    }
    return dict(kinds[kind])


def config_schema() -> dict[str, Any]:
    """The schema of `[tool.model-bisect]` (the table itself, not the whole pyproject.toml)."""
    path = {"type": "string", "minLength": 1}
    properties: dict[str, Any] = {}
    for source in SOURCES:
        value = (
            {"anyOf": [path, {"type": "array", "items": path, "minItems": 1}]}
            if source.many
            else dict(path)
        )
        properties[source.config_key] = {**value, "description": source.help}
        for option in source.options:
            properties[option.flag.removeprefix("--")] = {**path, "description": option.help}
    sign = {GateKind.MIN: ">=", GateKind.MAX: "<="}
    for spec in CATALOGUE:
        low, high = spec.threshold_range
        bounds = {k: v for k, v in (("minimum", low), ("maximum", high)) if math.isfinite(v)}
        properties[spec.flag.removeprefix("--")] = {
            "type": "number",
            **bounds,
            "description": f"gate: {spec.label} {sign[spec.threshold_kind]} X",
        }
    properties["max-drop"] = {
        "type": "object",
        "propertyNames": {"enum": list(CATALOGUE.names)},
        "additionalProperties": {"type": "number", "minimum": 0},
        "minProperties": 1,
        "description": "METRIC = DELTA: the largest allowed drop relative to the first model",
    }
    for setting in SETTINGS:
        entry = _setting_value(setting.kind, setting.choices)
        if setting.bounds is not None:
            b = setting.bounds
            entry["exclusiveMinimum" if b.low_open else "minimum"] = b.low
            if math.isfinite(b.high):
                entry["exclusiveMaximum" if b.high_open else "maximum"] = b.high
        if setting.default is not None:
            entry["default"] = setting.default
        properties[setting.name] = {**entry, "description": setting.help}
    properties["marker"] = {
        "type": "string",
        "pattern": f"^{KEY_PATTERN}$",
        "description": "the sticky comment's key",
    }
    properties["tracker-issue"] = {
        "type": "integer",
        "minimum": 1,
        "description": "the issue that holds the sticky comment",
    }
    return {
        "$schema": DRAFT,
        "$id": f"https://model-bisect.invalid/schemas/{CONFIG_SCHEMA_NAME}",
        "title": "[tool.model-bisect] in pyproject.toml",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }


def schema_texts() -> dict[str, str]:
    """File name -> the schema's text, as shipped (keys in field order, for people)."""
    return {
        REPORT_SCHEMA_NAME: json.dumps(report_schema(), indent=2, ensure_ascii=False) + "\n",
        CONFIG_SCHEMA_NAME: json.dumps(config_schema(), indent=2, ensure_ascii=False) + "\n",
    }


def write_schemas(folder: Path = SHIPPED) -> list[Path]:
    """Write both schemas into ``folder`` (atomically); the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schema_texts().items():
        write_text_atomic(folder / name, text)
        written.append(folder / name)
    return written
