"""Compare a committed fixture tree with a fresh regeneration and classify every artifact.

Each file is identical, metadata-only (bytes differ, a reader gets the same values), content,
missing (the generator makes it, the tree lacks it) or extra (the tree has it, the generator
does not). The toolchain recorded in MANIFEST.json is set against this run's to say which
version change explains a byte difference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from .difference import Difference
from .layout import MANIFEST_FILE, is_hand_written
from .manifest import Manifest, read_manifest
from .onnx_diff import compare_onnx
from .parquet_diff import compare_parquet

__all__ = [
    "ADVICE",
    "DriftReport",
    "Finding",
    "Kind",
    "Require",
    "ToolchainChange",
    "compare_trees",
]

ADVICE = (
    "run under the pinned toolchain with `nox -s drift`, or regenerate with `invoke regenerate`"
)
JSON_SCHEMA_VERSION = 1


class Kind(StrEnum):
    IDENTICAL = "identical"
    METADATA_ONLY = "metadata-only"
    CONTENT = "content"
    MISSING = "missing"
    EXTRA = "extra"


class Require(StrEnum):
    """``bytes``: the pinned-toolchain contract; ``content``: what a reader gets back."""

    BYTES = "bytes"
    CONTENT = "content"


_FORBIDDEN = {
    Require.BYTES: frozenset(Kind) - {Kind.IDENTICAL},
    Require.CONTENT: frozenset({Kind.CONTENT, Kind.MISSING, Kind.EXTRA}),
}


@dataclass(frozen=True)
class Finding:
    path: str  # relative to the fixture folder, POSIX separators
    kind: Kind
    details: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind.value, "details": list(self.details)}


@dataclass(frozen=True)
class ToolchainChange:
    name: str
    recorded: str
    current: str

    def __str__(self) -> str:
        return f"{self.name} {self.recorded} -> {self.current}"


@dataclass(frozen=True)
class DriftReport:
    findings: tuple[Finding, ...]
    toolchain: tuple[ToolchainChange, ...]
    recorded: Mapping[str, str]  # the toolchain, python and platform in MANIFEST.json
    current: Mapping[str, str]

    @property
    def drifted(self) -> bool:
        return any(f.kind is not Kind.IDENTICAL for f in self.findings)

    def fails(self, require: Require) -> bool:
        return any(f.kind in _FORBIDDEN[require] for f in self.findings)

    def advice(self) -> str:
        if not self.drifted:
            return ""
        if self.toolchain:
            before = ", ".join(f"{c.name} {c.recorded}" for c in self.toolchain)
            after = ", ".join(f"{c.name} {c.current}" for c in self.toolchain)
            return f"written by {before}; this run has {after}: {ADVICE}"
        return (
            "this run's toolchain matches MANIFEST.json, so the generator or the committed files "
            "changed: if that is intended, regenerate with `invoke regenerate` and commit"
        )

    def to_json(self, require: Require) -> dict[str, Any]:
        counts = {kind.value: 0 for kind in Kind}
        for finding in self.findings:
            counts[finding.kind.value] += 1
        failed = self.fails(require)
        return {
            "schema_version": JSON_SCHEMA_VERSION,
            "require": require.value,
            "result": "drift" if failed else "match",
            "exit_code": 1 if failed else 0,
            "counts": counts,
            "findings": [f.to_json() for f in self.findings],
            "toolchain": {
                "changes": [
                    {"name": c.name, "recorded": c.recorded, "current": c.current}
                    for c in self.toolchain
                ],
                "recorded": dict(self.recorded),
                "current": dict(self.current),
            },
            "advice": self.advice(),
        }


_EXPLAINERS: Mapping[str, Callable[[Path, Path], Difference]] = {
    ".parquet": compare_parquet,
    ".onnx": compare_onnx,
}


def compare_trees(committed: Path, regenerated: Path) -> DriftReport:
    """Both trees must hold a MANIFEST.json; README-like prose files are not compared."""
    old_manifest, new_manifest = read_manifest(committed), read_manifest(regenerated)
    old_files, new_files = _files(committed), _files(regenerated)
    findings = []
    for name in sorted(old_files | new_files):
        if name not in old_files:
            findings.append(Finding(name, Kind.MISSING, ("the generator writes it",)))
        elif name not in new_files:
            findings.append(Finding(name, Kind.EXTRA, ("the generator does not write it",)))
        else:
            findings.append(_classify(name, committed / name, regenerated / name))
    manifest = _manifest_finding(old_manifest, new_manifest, findings)
    if manifest is not None:
        findings.append(manifest)
    recorded, current = old_manifest.environment(), new_manifest.environment()
    # `current` names everything this version tracks; a library only an older manifest
    # recorded (pandas) cannot explain a byte today, so it is no change.
    changes = tuple(
        ToolchainChange(name, recorded.get(name, "unrecorded"), current[name])
        for name in sorted(current)
        if recorded.get(name) != current[name]
    )
    return DriftReport(tuple(findings), changes, recorded, current)


def _files(root: Path) -> set[str]:
    found = set()
    for path in root.rglob("*"):
        name = path.relative_to(root).as_posix()
        if path.is_file() and name != MANIFEST_FILE and not is_hand_written(name):
            found.add(name)
    return found


def _classify(name: str, old: Path, new: Path) -> Finding:
    old_bytes, new_bytes = old.read_bytes(), new.read_bytes()
    if old_bytes == new_bytes:
        return Finding(name, Kind.IDENTICAL)
    explain = _EXPLAINERS.get(old.suffix.lower())
    if explain is None:
        sizes = f"bytes differ (size {len(old_bytes)} -> {len(new_bytes)})"
        return Finding(name, Kind.CONTENT, (sizes,))
    difference = explain(old, new)
    if difference.content:
        return Finding(name, Kind.CONTENT, difference.content + difference.metadata)
    return Finding(name, Kind.METADATA_ONLY, difference.metadata or ("bytes differ",))


def _manifest_finding(old: Manifest, new: Manifest, findings: list[Finding]) -> Finding | None:
    """Content when the recipe differs, or when the manifest misdescribes files that match.

    Files that drifted are reported on their own; toolchain, python and platform are the
    report's toolchain part, not a finding.
    """
    details = []
    old_origin, new_origin = old.origin.to_json(), new.origin.to_json()
    for origin in (old_origin, new_origin):
        origin.get("source", {}).pop("path", None)  # where the source was found, not what it is
    if old_origin != new_origin:
        details.append(f"origin: {old_origin} -> {new_origin}")
    seen = {f.path for f in findings}
    for finding in findings:
        if finding.kind is not Kind.IDENTICAL:
            continue
        recorded = old.artifacts.get(finding.path)
        if recorded is None:
            details.append(f"does not list {finding.path}")
        elif recorded != new.artifacts.get(finding.path):
            details.append(f"stale sha256/size for {finding.path}")
    details += [
        f"lists {name}, which no tree has" for name in sorted(old.artifacts) if name not in seen
    ]
    return Finding(MANIFEST_FILE, Kind.CONTENT, tuple(details)) if details else None
