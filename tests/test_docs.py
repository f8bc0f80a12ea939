"""Policies the documentation keeps: a short README, links that resolve, every flag documented.

These pin rules, not wording: any rewrite that keeps the README a front door, its links
working and docs/usage.md complete passes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
USAGE = ROOT / "docs" / "usage.md"
README_MAX_LINES = 200
# Built from parts so that this file does not match its own search once it covers every file.
RETIRED_DOC = "DESIGN" + ".md"

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def _documentation() -> list[Path]:
    """The Markdown files whose links readers follow: the README, docs/ and the fixture's."""
    pages = [README, ROOT / "testdata" / "bisect" / "README.md"]
    pages += sorted((ROOT / "docs").rglob("*.md"))
    return pages


def _tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
    ).stdout
    return [ROOT / name for name in listed.split("\0") if name]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    return {_slug(h) for h in _HEADING.findall(text)}


def _relative_links(page: Path) -> list[str]:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    return [t for t in _LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def _help(*command: str) -> str:
    env = dict(os.environ, COLUMNS="200")
    done = subprocess.run(
        [sys.executable, "-m", *command, "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_readme_is_a_front_door_of_at_most_200_lines() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines; move reference material into docs/"
    )


@pytest.mark.parametrize("page", _documentation(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file_and_heading(page: Path) -> None:
    broken = []
    for target in _relative_links(page):
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        if not destination.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and destination.suffix == ".md" and anchor not in _anchors(destination):
            broken.append(f"{target} (no heading #{anchor})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {broken}"


def test_no_file_cites_the_retired_design_document() -> None:
    citing = [
        str(path.relative_to(ROOT))
        for path in _tracked_files()
        if path.is_file() and RETIRED_DOC in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert not citing, f"these files cite {RETIRED_DOC}, which is not in the repository: {citing}"


@pytest.mark.parametrize(
    "command",
    [
        ("model_bisect", "run"),
        ("model_bisect", "publish"),
        ("model_bisect", "judge"),
        ("model_bisect", "nightly"),
        ("cache_builder", "regenerate"),
        ("cache_builder", "check"),
        ("cache_builder", "matrix"),
    ],
    ids=" ".join,
)
def test_every_flag_in_help_is_documented_in_usage(command: tuple[str, ...]) -> None:
    flags = set(_FLAG.findall(_help(*command))) - {"--help"}
    assert flags, f"found no flags in `{' '.join(command)} --help`"
    documented = set(_FLAG.findall(USAGE.read_text(encoding="utf-8")))
    missing = sorted(flags - documented)
    assert not missing, f"docs/usage.md does not mention {missing} of `{' '.join(command)}`"


def test_readme_terminal_sample_is_what_its_command_prints() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## One bisect") :]
    command = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    sample = re.search(r"```text\n(.*?)```", section, re.DOTALL)
    assert command
    assert sample
    argv = command.group(1).replace("\\\n", " ").split()
    assert argv[:2] == ["model-bisect", "run"]
    # The sample shows the terminal, not the files: drop --json/--markdown and their paths.
    kept: list[str] = []
    for arg in argv[2:]:
        if kept and kept[-1] in ("--json", "--markdown"):
            kept.pop()
        else:
            kept.append(arg)
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("GITHUB_ACTIONS", None)
    ran = subprocess.run(
        [sys.executable, "-m", "model_bisect", "run", *kept, "--no-cache"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    printed = [line.rstrip() for line in (ran.stdout + ran.stderr).splitlines() if line.strip()]
    assert printed == [line.rstrip() for line in sample.group(1).splitlines()]


def test_architecture_names_every_module_of_both_packages() -> None:
    """A newcomer finds each module's job on docs/architecture.md: every module is named in a
    row of its own (the subcommands share the `commands/` row)."""
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`([\w/]+\.py)`", row.split(" | ")[0])}
    missing = []
    for package in ("model_bisect", "cache_builder"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT / package).as_posix()
            if path.name.startswith("__") or relative.startswith("commands/"):
                continue
            if path.name not in named and relative not in named:
                missing.append(f"{package}/{relative}")
    assert missing == []
