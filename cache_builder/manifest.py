"""MANIFEST.json: what each artifact is (sha256, size), how the fixture was made, and by what.

It holds no timestamp and no absolute path, so regenerating under the same toolchain on the
same platform rewrites it byte for byte.
"""

from __future__ import annotations

import json
import os
import platform
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_bisect.errors import InputError, first_line
from model_bisect.files import file_sha256
from model_bisect.toolchain import FIXTURE_PACKAGES, toolchain_versions

from .fixture import Origin
from .layout import MANIFEST_FILE
from .limits import (
    MAX_ARTIFACT_BYTES,
    MAX_MANIFEST_BYTES,
    FieldError,
    artifact_name,
    integer,
    mapping,
    sha256,
    text,
)

__all__ = [
    "FORMAT",
    "Artifact",
    "Manifest",
    "current_environment",
    "describe",
    "read_manifest",
]

FORMAT = 1


@dataclass(frozen=True)
class Artifact:
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    origin: Origin
    artifacts: Mapping[str, Artifact]
    toolchain: Mapping[str, str]
    platform: Mapping[str, str]
    python: str
    format: int = FORMAT

    def environment(self) -> dict[str, str]:
        """Toolchain, platform and python flattened, for naming what changed between runs."""
        return {
            **self.toolchain,
            "python": self.python,
            **{f"platform {k}": v for k, v in self.platform.items()},
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "origin": self.origin.to_json(),
            "artifacts": {
                name: {"sha256": a.sha256, "size": a.size}
                for name, a in sorted(self.artifacts.items())
            },
            "toolchain": dict(self.toolchain),
            "platform": dict(self.platform),
            "python": self.python,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Manifest:
        """The manifest, every value checked; ``FieldError`` names the first bad field."""
        artifacts = {}
        for name, entry in mapping(data.get("artifacts"), "artifacts").items():
            where = f"artifacts.{artifact_name(name, 'artifacts')}"
            entry = mapping(entry, where)
            artifacts[name] = Artifact(
                sha256(entry.get("sha256"), f"{where}.sha256"),
                integer(entry.get("size"), f"{where}.size", 0, MAX_ARTIFACT_BYTES),
            )
        return cls(
            origin=Origin.from_json(data.get("origin")),  # type: ignore[arg-type]
            artifacts=artifacts,
            toolchain=_strings(data.get("toolchain"), "toolchain"),
            platform=_strings(data.get("platform"), "platform"),
            python=text(data.get("python"), "python", 40),
            format=integer(data.get("format"), "format", FORMAT, FORMAT),
        )


def _strings(value: Any, field: str) -> dict[str, str]:
    return {text(k, field, 80): text(v, f"{field}.{k}") for k, v in mapping(value, field).items()}


def current_environment() -> tuple[dict[str, str], dict[str, str], str]:
    """(toolchain, platform, python) of this process, read without importing the packages."""
    toolchain = toolchain_versions(FIXTURE_PACKAGES, with_python=False)
    # The same pyarrow writes other bytes on macOS than on Linux (apache/arrow#39399).
    where = {"os": platform.system(), "machine": platform.machine()}
    return toolchain, where, platform.python_version()


def describe(folder: Path, names: Iterable[str], origin: Origin) -> Manifest:
    """The manifest of the artifacts ``names`` (relative POSIX paths) as written in ``folder``."""
    artifacts = {}
    for name in names:
        path = folder / name
        artifacts[name] = Artifact(file_sha256(path), path.stat().st_size)
    toolchain, where, python = current_environment()
    return Manifest(origin, artifacts, toolchain, where, python)


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST_FILE
    regenerate = "run `python -m cache_builder regenerate` (or `invoke regenerate`)"
    if not folder.is_dir():
        raise InputError("fixture folder not found", str(folder), f"pass --out DIR or {regenerate}")
    try:
        data = json.loads(_read_bounded(path))
    except FileNotFoundError:
        raise InputError("no MANIFEST.json", str(folder), regenerate) from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(
            f"unreadable manifest ({first_line(exc)})", str(path), regenerate
        ) from None
    if (
        not isinstance(data, dict)
        or type(data.get("format")) is not int
        or data["format"] != FORMAT
    ):
        raise InputError(f"not a format-{FORMAT} fixture manifest", str(path), regenerate)
    try:
        return Manifest.from_json(data)
    except FieldError as exc:
        raise InputError(
            f"MANIFEST.json field {exc.field} {exc.problem}", str(path), regenerate
        ) from None


def _read_bounded(path: Path) -> str:
    """The manifest's text, if it is a regular file of a sane size: a FIFO would block the
    read forever and /dev/zero would never end."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise OSError(f"{MANIFEST_FILE} is not a regular file")
    with path.open("rb") as handle:
        data = handle.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise OSError(f"{MANIFEST_FILE} is larger than {MAX_MANIFEST_BYTES:,} bytes")
    return data.decode("utf-8")
