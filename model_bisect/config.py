"""`[tool.model-bisect]` in pyproject.toml: the settings a nightly repeats every night.

The table is found from the working directory upwards (the nearest pyproject.toml that has
one), or named with ``--config FILE``. Paths in it are relative to the file's folder, so the
same table works from any subfolder and from a GitHub Action's workspace. Validation is
strict: a misspelt key would otherwise silently leave a gate unset. Standard library only,
so the CLI can read it before anything heavy is imported.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .catalogue import CATALOGUE, MetricSpec
from .errors import InputError, UsageError
from .files import BoundedReadError, ReadProblem, read_bytes_bounded, read_text_bounded
from .publishing.marker import marker
from .settings import SETTINGS, Kind, Setting, config_keys
from .timeline.registry import SOURCES, SourceName

__all__ = [
    "KEYS",
    "MAX_CONFIG_BYTES",
    "TABLE",
    "Config",
    "find_config",
    "load_config",
    "read_config",
]

TABLE = "tool.model-bisect"
PYPROJECT = "pyproject.toml"


def _threshold_keys() -> dict[str, MetricSpec]:
    """The ``min-``/``max-`` key of each catalogue metric, named like its flag."""
    return {spec.flag.removeprefix("--"): spec for spec in CATALOGUE}


# Every key the table accepts, each named like the command-line flag it stands in for.
KEYS = config_keys()

# One value of a setting from SETTINGS, as the run uses it (a path resolved).
Value = str | float | int | bool | Path | tuple[str, ...]


@dataclass(frozen=True)
class Config:
    """The validated table; empty (``source`` None) when there is none. ``timelines`` maps
    each timeline source the table sets to its paths (resolved against the file's folder),
    ``source_options`` a source option's dest (``rev_range``) to its value, ``thresholds`` a
    metric name to its ``min-``/``max-`` value, ``max_drop`` holds ``METRIC=DELTA`` texts,
    ``values`` a setting's name (see `settings.py`) to the value the table gives it."""

    source: Path | None = None
    timelines: Mapping[SourceName, tuple[str, ...]] = field(default_factory=dict)
    source_options: Mapping[str, str] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    max_drop: tuple[str, ...] = ()
    values: Mapping[str, Value] = field(default_factory=dict)
    marker: str | None = None
    tracker_issue: int | None = None

    @property
    def has_gates(self) -> bool:
        return bool(self.thresholds or self.max_drop)

    @property
    def features(self) -> Path | None:
        value = self.values.get("features")
        return value if isinstance(value, Path) else None

    @property
    def mapping(self) -> str | None:
        value = self.values.get("mapping")
        return value if isinstance(value, str) else None


# A pyproject.toml is a page of text; a bound keeps `--config /dev/zero`-like mistakes and
# planted giants from filling memory before TOML sees a byte.
MAX_CONFIG_BYTES = 4 << 20


# How a configuration file that cannot be read is named, and the fix.
_CONFIG_PROBLEMS = {
    ReadProblem.MISSING: ("configuration file not found", "check the path"),
    ReadProblem.NOT_REGULAR: (
        "configuration file is {detail}, not a regular file",
        "pass a TOML file",
    ),
    ReadProblem.TOO_LARGE: (
        f"configuration file is larger than {MAX_CONFIG_BYTES >> 20} MB",
        "pass a pyproject.toml, not a data file",
    ),
    ReadProblem.UNREADABLE: (
        "unreadable configuration file ({detail})",
        "pass a readable UTF-8 TOML file",
    ),
}


def _toml(path: Path) -> dict[str, Any]:
    """One TOML file parsed; every way it can fail is one InputError (a FIFO or device is never
    opened, the size is bounded, nesting too deep for the parser is named as such)."""
    where = str(path)
    try:
        text = read_text_bounded(path, MAX_CONFIG_BYTES)
    except BoundedReadError as exc:
        problem, fix = _CONFIG_PROBLEMS[exc.problem]
        raise InputError(problem.format(detail=exc.detail), where, fix) from None
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise InputError("TOML nests too deeply to parse", where, "fix the file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"invalid TOML ({exc})", where, "fix the syntax") from None


def _table(path: Path, required: bool) -> Mapping[str, Any] | None:
    """The `[tool.model-bisect]` table of one TOML file (None when it has none)."""
    data = _toml(path)
    tool = data.get("tool")
    table = tool.get("model-bisect") if isinstance(tool, dict) else None
    if table is None:
        if required:
            raise InputError(
                f"no [{TABLE}] table", str(path), f"add a [{TABLE}] table or drop --config"
            )
        return None
    if not isinstance(table, dict):
        raise InputError(f"[{TABLE}] is not a table", str(path), f"write it as [{TABLE}]")
    return table


def find_config(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above ``start`` that has a `[tool.model-bisect]`."""
    for folder in (start, *start.parents):
        candidate = folder / PYPROJECT
        if not candidate.is_file():
            continue
        try:
            table = _table(candidate, required=False)
        except InputError:
            if _mentions_the_table(candidate):
                raise
            continue  # some other project's broken file: not ours to judge, look further up
        if table is not None:
            return candidate
    return None


def _mentions_the_table(path: Path) -> bool:
    """Whether a pyproject.toml that cannot be parsed could hold our table (its bytes name
    it); when it cannot even be read, assume it does, so the error is shown, not skipped."""
    try:
        return b"model-bisect" in read_bytes_bounded(path, MAX_CONFIG_BYTES)
    except OSError:
        return True


def load_config(explicit: Path | None, cwd: Path) -> Config:
    """The table of ``--config FILE`` if given, else the one found from ``cwd`` upwards."""
    if explicit is not None:
        return read_config(explicit)
    found = find_config(cwd.resolve())
    return Config() if found is None else read_config(found)


def read_config(path: Path) -> Config:
    """Validate one file's table; the first unknown key or bad value is an InputError."""
    table = _table(path, required=True)
    assert table is not None
    checker = _Checker(path)
    threshold_keys = _threshold_keys()
    keys = config_keys()
    unknown = sorted(set(table) - set(keys))
    if unknown:
        raise InputError(
            f"unknown key {unknown[0]!r}", checker.where, f"use only {', '.join(keys)}"
        )
    thresholds = {
        spec.name: checker.threshold(key, table[key], spec.threshold_range, spec.threshold_hint)
        for key, spec in threshold_keys.items()
        if key in table
    }
    return Config(
        source=path,
        timelines={
            source.name: checker.paths(source.config_key, table[source.config_key], source.many)
            for source in SOURCES
            if source.config_key in table
        },
        source_options=checker.source_options(table),
        thresholds=thresholds,
        max_drop=checker.max_drop(table.get("max-drop")),
        values={s.name: checker.setting(s, table[s.name]) for s in SETTINGS if s.name in table},
        marker=checker.marker(table.get("marker")),
        tracker_issue=checker.issue(table.get("tracker-issue")),
    )


class _Checker:
    """One bad value -> an InputError naming the key, its value and what would be valid."""

    def __init__(self, path: Path) -> None:
        self.folder = path.resolve().parent
        self.where = f"{path} [{TABLE}]"

    def bad(self, key: str, value: object, fix: str) -> InputError:
        return InputError(f"bad value {key} = {value!r}", self.where, fix)

    def text(self, key: str, value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.bad(key, value, "use a non-empty string")
        return value

    def paths(self, key: str, value: object, many: bool) -> tuple[str, ...]:
        """One path, or with ``many`` one or a list of paths or globs."""
        if not many:
            return (str(self.folder / self.text(key, value)),)
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise self.bad(key, value, "use a path, a glob or a list of them")
        return tuple(str(self.folder / self.text(key, item)) for item in items)

    def threshold(self, key: str, value: object, bounds: tuple[float, float], hint: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.bad(key, value, f"use a number: {hint}")
        low, high = bounds
        if not low <= value <= high:
            raise self.bad(key, value, f"use a number in [{low:g}, {high:g}]: {hint}")
        return float(value)

    def max_drop(self, value: object) -> tuple[str, ...]:
        fix = f"write a table of METRIC = DELTA with METRIC one of {', '.join(CATALOGUE.names)}"
        if value is None:
            return ()
        if not isinstance(value, dict) or not value:
            raise self.bad("max-drop", value, f"{fix}, e.g. max-drop = {{ plcc = 0.05 }}")
        drops = []
        for metric, delta in value.items():
            key = f"max-drop.{metric}"
            if metric not in CATALOGUE:
                raise self.bad(key, delta, fix)
            ok = isinstance(delta, int | float) and not isinstance(delta, bool)
            if not ok or not math.isfinite(delta) or delta < 0:
                raise self.bad(key, delta, "use a finite number >= 0, e.g. 0.05")
            drops.append(f"{metric}={float(delta)!r}")
        return tuple(drops)

    def source_options(self, table: Mapping[str, Any]) -> dict[str, str]:
        """A source option (``rev-range``) only beside its source, as on the command line."""
        found = {}
        for source in SOURCES:
            for option in source.options:
                key = option.flag.removeprefix("--")
                if key not in table:
                    continue
                if source.config_key not in table:
                    raise self.bad(key, table[key], f"set {source.config_key} too, or drop {key}")
                found[option.dest] = self.text(key, table[key])
        return found

    def setting(self, setting: Setting, value: object) -> Value:
        """One value of a SETTINGS record, checked by its kind and bounds."""
        key, kind = setting.name, setting.kind
        if kind is Kind.PATH:
            return self.folder / self.text(key, value)
        if kind is Kind.TEXT:
            return self.text(key, value)
        if kind is Kind.LIST:
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or not items:
                fix = f'use a list of strings, e.g. {key} = ["{setting.example}"]'
                raise self.bad(key, value, fix)
            return tuple(dict.fromkeys(self.text(key, item) for item in items))
        if kind is Kind.CHOICE:
            if value not in setting.choices:
                raise self.bad(key, value, f"use one of {', '.join(setting.choices)}")
            return str(value)
        if kind is Kind.SWITCH:
            if not isinstance(value, bool):
                raise self.bad(key, value, f"use true or false, e.g. {key} = {setting.example}")
            return value
        integer = kind is Kind.INTEGER
        number = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not number:
            what = "a whole number" if integer else "a number"
            raise self.bad(key, value, f"use {what}, e.g. {key} = {setting.example}")
        assert isinstance(value, int | float)
        if setting.bounds is not None and value not in setting.bounds:
            # the flag's words (`Range.requirement`, commands/_shared.py `out_of_bounds`)
            fix = f"use a number that is {setting.bounds.requirement(value)}"
            raise self.bad(key, value, f"{fix}, e.g. {key} = {setting.example}")
        return value if integer else float(value)

    def marker(self, value: object) -> str | None:
        if value is None:
            return None
        text = self.text("marker", value)
        try:
            marker(text)
        except UsageError:
            raise self.bad("marker", value, "use letters, digits, '.', '_' or '-'") from None
        return text

    def issue(self, value: object) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.bad("tracker-issue", value, "use the issue's number, e.g. 12")
        return value
