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

from .catalogue import CATALOGUE, MappingName, MetricSpec
from .errors import InputError, UsageError
from .files import NotRegularFileError, TooLargeError, read_bytes_bounded
from .publishing.marker import marker
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
# run's --executor choices, spelled here so config.py stays standard library only (a test
# checks they are ExecutorKind's values).
EXECUTORS = ("local", "ray")
PYPROJECT = "pyproject.toml"


def _threshold_keys() -> dict[str, MetricSpec]:
    """The ``min-``/``max-`` key of each catalogue metric, named like its flag."""
    return {spec.flag.removeprefix("--"): spec for spec in CATALOGUE}


# Every key the table accepts, each named like the command-line flag it stands in for.
KEYS = (
    *(source.config_key for source in SOURCES),
    "features",
    *_threshold_keys(),
    "max-drop",
    "mapping",
    "marker",
    "tracker-issue",
    "executor",
    "ray-address",
)


@dataclass(frozen=True)
class Config:
    """The validated table; empty (``source`` None) when there is none. ``timelines`` maps
    each timeline source the table sets to its paths (resolved against the file's folder),
    ``thresholds`` a metric name to its ``min-``/``max-`` value, ``max_drop`` holds
    ``METRIC=DELTA`` texts."""

    source: Path | None = None
    timelines: Mapping[SourceName, tuple[str, ...]] = field(default_factory=dict)
    features: Path | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)
    max_drop: tuple[str, ...] = ()
    mapping: str | None = None
    marker: str | None = None
    tracker_issue: int | None = None
    executor: str | None = None  # "local" or "ray" (run's --executor)
    ray_address: str | None = None

    @property
    def has_gates(self) -> bool:
        return bool(self.thresholds or self.max_drop)


# A pyproject.toml is a page of text; a bound keeps `--config /dev/zero`-like mistakes and
# planted giants from filling memory before TOML sees a byte.
MAX_CONFIG_BYTES = 4 << 20


def _toml(path: Path) -> dict[str, Any]:
    """One TOML file parsed; every way it can fail is one InputError (a FIFO or device is never
    opened, the size is bounded, nesting too deep for the parser is named as such)."""
    where = str(path)
    try:
        text = read_bytes_bounded(path, MAX_CONFIG_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise InputError("configuration file not found", where, "check the path") from None
    except NotRegularFileError as exc:
        raise InputError(
            f"configuration file is {exc.kind}, not a regular file",
            where,
            "pass a TOML file",
        ) from None
    except TooLargeError:
        raise InputError(
            f"configuration file is larger than {MAX_CONFIG_BYTES >> 20} MB",
            where,
            "pass a pyproject.toml, not a data file",
        ) from None
    except (OSError, ValueError) as exc:  # ValueError: UnicodeDecodeError, a NUL in the path
        raise InputError(
            f"unreadable configuration file ({exc.__class__.__name__})",
            where,
            "pass a readable UTF-8 TOML file",
        ) from None
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
    unknown = sorted(set(table) - set(KEYS) - set(threshold_keys))
    if unknown:
        raise InputError(
            f"unknown key {unknown[0]!r}", checker.where, f"use only {', '.join(KEYS)}"
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
        features=checker.path("features", table.get("features")),
        thresholds=thresholds,
        max_drop=checker.max_drop(table.get("max-drop")),
        mapping=checker.choice("mapping", table.get("mapping"), [m.value for m in MappingName]),
        marker=checker.marker(table.get("marker")),
        tracker_issue=checker.issue(table.get("tracker-issue")),
        executor=checker.choice("executor", table.get("executor"), list(EXECUTORS)),
        ray_address=(
            None
            if table.get("ray-address") is None
            else checker.text("ray-address", table["ray-address"])
        ),
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

    def path(self, key: str, value: object) -> Path | None:
        """Relative to the file's folder, not to wherever the command was started."""
        if value is None:
            return None
        return self.folder / self.text(key, value)

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

    def choice(self, key: str, value: object, allowed: list[str]) -> str | None:
        if value is None:
            return None
        if value not in allowed:
            raise self.bad(key, value, f"use one of {', '.join(allowed)}")
        return str(value)

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
