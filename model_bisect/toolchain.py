"""Which library versions a result depends on, read from package metadata.

Reading metadata instead of ``module.__version__`` keeps this cheap: nothing is imported, so
a fully cached rerun can record onnxruntime's version without loading onnxruntime.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence

__all__ = ["FIXTURE_PACKAGES", "TOOLCHAIN_PACKAGES", "toolchain_versions"]

# What a bisect's numbers can depend on: the report's "toolchain". Only runtime dependencies
# the tool imports: pandas is not one (Arrow columns become numpy without it, arrow.py), so a
# line naming it would be noise ("pandas absent") or a false lead.
TOOLCHAIN_PACKAGES: tuple[str, ...] = (
    "numpy",
    "pyarrow",
    "onnx",
    "onnxruntime",
    "scipy",
)
# Every distribution whose version can change a fixture byte (protobuf serialises ONNX):
# the fixture MANIFEST.json's "toolchain", which must stay byte-stable. Not pandas: the writer
# goes from numpy straight to Arrow (cache_builder/writers.py).
FIXTURE_PACKAGES: tuple[str, ...] = (
    "numpy",
    "pyarrow",
    "onnx",
    "protobuf",
    "onnxruntime",
)


def toolchain_versions(
    packages: Sequence[str] = TOOLCHAIN_PACKAGES, *, with_python: bool = True
) -> dict[str, str]:
    """``{name: version}`` for ``packages`` ("absent" when not installed), led by
    ``"python"`` unless ``with_python`` is False (the manifest records Python apart)."""
    from importlib import metadata  # here: its import alone outweighs the lookups

    versions = {"python": platform.python_version()} if with_python else {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions
