"""MANIFEST.json: what each artifact is (sha256, size), how the fixture was made, and by what.

It holds no timestamp and no absolute path, so regenerating under the same toolchain on the
same platform rewrites it byte for byte.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_bisect.errors import InputError
from model_bisect.files import file_sha256
from model_bisect.toolchain import FIXTURE_PACKAGES, toolchain_versions

from .fixture import Origin
from .layout import MANIFEST_FILE

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
        return cls(
            origin=Origin.from_json(data["origin"]),
            artifacts={
                str(name): Artifact(str(a["sha256"]), int(a["size"]))
                for name, a in data["artifacts"].items()
            },
            toolchain={str(k): str(v) for k, v in data["toolchain"].items()},
            platform={str(k): str(v) for k, v in data["platform"].items()},
            python=str(data["python"]),
            format=int(data["format"]),
        )


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
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no MANIFEST.json", str(folder), regenerate) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"unreadable manifest ({exc})", str(path), regenerate) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"not a format-{FORMAT} fixture manifest", str(path), regenerate)
    try:
        return Manifest.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(
            f"malformed manifest ({exc.__class__.__name__}: {exc})", str(path), regenerate
        ) from None
