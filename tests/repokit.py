"""The repository's own scripts and throw-away git repositories, as tests reach them.

tasks.py and noxfile.py are not importable modules, so each test file loads its own fresh copy
under its own name; git is run with a fixed identity and no signing, so commits never depend on
the machine's configuration.
"""

from __future__ import annotations

import importlib.util
import subprocess
import warnings
from pathlib import Path
from types import ModuleType

from tests.conftest import REPO_ROOT

__all__ = ["git", "load_root_module"]


def load_root_module(filename: str, name: str) -> ModuleType:
    """Execute ``REPO_ROOT/filename`` as a new module called ``name``. Loading the noxfile
    registers its sessions with nox again, which nox warns about; that warning is expected."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / filename)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        spec.loader.exec_module(module)
    return module


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` and return its standard output as it came (a trailing newline too)."""
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        capture_output=True,
        check=True,
        text=True,
    )
    return done.stdout
