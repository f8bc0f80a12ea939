"""The distribution as users install it: its dependencies, its metadata, and the wheel at work.

Editable installs put the source tree on sys.path, so a module or dependency the wheel lacks
goes unnoticed by every other test; these tests read the metadata the build backend writes and
run the built wheel outside the repository (`nox -s wheel`).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import model_bisect

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_PACKAGES = ("model_bisect", "cache_builder")


@pytest.fixture(scope="module")
def wheel_metadata() -> metadata.PackageMetadata:
    """The wheel's METADATA as the build backend writes it (isolated: the declared setuptools)."""
    from build.util import project_wheel_metadata

    return project_wheel_metadata(ROOT)


def _runtime_requirements(meta: metadata.PackageMetadata) -> list[Requirement]:
    requirements = [Requirement(text) for text in meta.get_all("Requires-Dist") or []]
    return [r for r in requirements if r.marker is None or r.marker.evaluate({"extra": ""})]


def _optional_runtime_distributions(meta: metadata.PackageMetadata) -> set[str]:
    """Distributions of the extras users opt into (``ray``), not the ``dev`` tooling."""
    extras = [e for e in meta.get_all("Provides-Extra") or [] if e != "dev"]
    requirements = [Requirement(text) for text in meta.get_all("Requires-Dist") or []]
    return {
        canonicalize_name(r.name)
        for r in requirements
        if r.marker is not None and any(r.marker.evaluate({"extra": e}) for e in extras)
    }


def _top_level_imports(tree: ast.Module) -> Iterator[str]:
    """Modules imported when a module is imported (outside any function)."""
    for node in tree.body:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def _runtime_requirements_of_pyproject() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(text) for text in project["dependencies"]]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_modules(tree: ast.AST) -> Iterator[str]:
    """Absolute module names a module imports when it runs, `importlib.import_module` included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from _imported_modules(ast.Module(body=node.orelse, type_ignores=[]))
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value
        yield from _imported_modules(node)


def _third_party_imports() -> dict[str, set[str]]:
    """Module name -> the runtime files importing it, for modules outside stdlib and this repo."""
    found: dict[str, set[str]] = {}
    for package in RUNTIME_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for module in _imported_modules(tree):
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in RUNTIME_PACKAGES:
                    continue
                found.setdefault(module, set()).add(path.relative_to(ROOT).as_posix())
    return found


def _distribution_of(module: str) -> str:
    """The installed distribution that ships ``module`` (namespace packages such as google.*)."""
    spec = importlib.util.find_spec(module)
    assert spec is not None, f"{module} is not importable here"
    assert spec.origin is not None, f"{module} has no file"
    origin = Path(spec.origin).resolve()
    top = module.split(".")[0]
    for name in metadata.packages_distributions().get(top, []):
        files = metadata.distribution(name).files or []
        if any(Path(str(f.locate())).resolve() == origin for f in files):
            return canonicalize_name(name)
    raise AssertionError(f"no installed distribution ships {module} ({origin})")


def test_wheel_requires_exactly_the_distributions_the_runtime_code_imports(
    wheel_metadata: metadata.PackageMetadata,
) -> None:
    imports = _third_party_imports()
    needed = {_distribution_of(module) for module in imports}
    declared = {canonicalize_name(r.name) for r in _runtime_requirements(wheel_metadata)}
    optional = _optional_runtime_distributions(wheel_metadata)
    where = {_distribution_of(m): sorted(files) for m, files in imports.items()}
    missing = needed - declared - optional
    assert not missing, {name: where[name] for name in missing}
    assert not declared - needed, f"declared but imported by no runtime module: {declared - needed}"


def test_an_optional_extra_is_imported_only_inside_functions(
    wheel_metadata: metadata.PackageMetadata,
) -> None:
    optional = _optional_runtime_distributions(wheel_metadata)
    assert "ray" in optional  # pip install 'model-bisect[ray]'
    eager = [
        f"{path.relative_to(ROOT).as_posix()} imports {module}"
        for package in RUNTIME_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for module in _top_level_imports(ast.parse(path.read_text(encoding="utf-8")))
        if module.split(".")[0] in optional
    ]
    assert eager == []


def test_every_runtime_dependency_has_a_lower_bound_and_no_upper_cap(
    wheel_metadata: metadata.PackageMetadata,
) -> None:
    for requirement in _runtime_requirements(wheel_metadata):
        operators = {spec.operator for spec in requirement.specifier}
        assert operators == {">="}, f"{requirement}: want exactly one >= lower bound"


def test_wheel_metadata_carries_the_package_version_and_the_mit_license(
    wheel_metadata: metadata.PackageMetadata,
) -> None:
    assert wheel_metadata["Version"] == model_bisect.__version__
    assert wheel_metadata.get_all("License-Expression") == ["MIT"]
    assert wheel_metadata.get_all("License-File") == ["LICENSE"]
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License")
    assert "the model-bisect developers" in license_text


def test_version_is_written_once_in_the_source() -> None:
    pattern = re.compile(r"""\b\d+\.\d+\.\d+\b""")
    written = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "pyproject.toml", *ROOT.glob("*/__init__.py"))
        if model_bisect.__version__ in pattern.findall(path.read_text(encoding="utf-8"))
    ]
    assert written == ["model_bisect/__init__.py"]


@pytest.mark.slow
def test_wheel_installed_outside_the_repository_runs_both_clis_on_the_fixture(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NOX_ENVDIR")}
    env["TMPDIR"] = str(tmp_path)  # the session's scratch folder, outside the repository
    done = subprocess.run(
        [sys.executable, "-m", "nox", "--noxfile", str(ROOT / "noxfile.py"), "-s", "wheel",
         "--reuse-venv=yes"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    assert "model-bisect " + model_bisect.__version__ in log
    assert "match: every artifact is byte-identical" in log
    assert not list(tmp_path.glob("model-bisect-wheel-*")), "the session left its scratch behind"


@pytest.mark.slow
def test_declared_floors_install_and_pass_the_publish_and_run_tests() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NOX_ENVDIR")}
    done = subprocess.run(
        [sys.executable, "-m", "nox", "--noxfile", str(ROOT / "noxfile.py"), "-s", "floors"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    installed = re.findall(r"floor (\S+) \S+: installed", log)
    assert sorted(installed) == sorted(r.name for r in _runtime_requirements_of_pyproject())
    assert "match: only metadata differs" in log or "match: every artifact" in log


def test_cache_builder_console_script_names_itself_in_version_and_usage(tmp_path: Path) -> None:
    entry_points = metadata.distribution("model-bisect").entry_points
    scripts = {
        entry.name: entry.value for entry in entry_points if entry.group == "console_scripts"
    }
    assert scripts["cache-builder"] == "cache_builder.cli:main"
    script = Path(sys.executable).parent / "cache-builder"  # what pip made of that entry point
    version = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert version.stdout.strip() == f"cache-builder {model_bisect.__version__}"
    usage = subprocess.run(
        [str(script), "check", "--require", "nonsense"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert usage.returncode == 3
    assert "see `cache-builder check --help`" in usage.stderr  # a command the user can paste
