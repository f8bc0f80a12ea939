"""Toolchain versions: the report and the fixture manifest record different package sets."""

from __future__ import annotations

import platform
import tomllib
from importlib import metadata

from packaging.requirements import Requirement

from model_bisect.toolchain import FIXTURE_PACKAGES, TOOLCHAIN_PACKAGES, toolchain_versions

from .conftest import REPO_ROOT


def test_report_toolchain_leads_with_python_then_the_run_packages() -> None:
    versions = toolchain_versions()
    assert list(versions) == ["python", *TOOLCHAIN_PACKAGES]
    assert versions["python"] == platform.python_version()
    assert versions["onnxruntime"] == metadata.version("onnxruntime")


def test_fixture_toolchain_names_protobuf_and_leaves_python_out() -> None:
    versions = toolchain_versions(FIXTURE_PACKAGES, with_python=False)
    assert list(versions) == list(FIXTURE_PACKAGES)
    assert versions["protobuf"] == metadata.version("protobuf")


def test_a_distribution_that_is_not_installed_is_recorded_as_absent() -> None:
    assert toolchain_versions(["no-such-distribution-model-bisect"], with_python=False) == {
        "no-such-distribution-model-bisect": "absent"
    }


def test_every_library_listed_is_a_runtime_dependency_so_none_is_noise() -> None:
    # A line for a library the tool never installs or imports (pandas) only ever said
    # "absent" or a version nothing depended on.
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    runtime = {Requirement(text).name for text in project["project"]["dependencies"]}
    assert set(TOOLCHAIN_PACKAGES) <= runtime
    assert set(FIXTURE_PACKAGES) <= runtime
