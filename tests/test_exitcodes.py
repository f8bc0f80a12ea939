"""The shared exit codes and the --debug flag that decides how an error is shown."""

from __future__ import annotations

import re
import signal

import pytest

from model_bisect.command_line import split_debug
from model_bisect.exitcodes import ExitCode

from .conftest import REPO_ROOT


def _readme_exit_codes() -> set[int]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = re.split(r"^#+ Exit codes$", text, maxsplit=1, flags=re.MULTILINE)[1]
    section = section.split("\n#", 1)[0]
    return {int(code) for code in re.findall(r"^\| (\d+) \|", section, re.MULTILINE)}


def test_the_readme_table_documents_every_code_a_run_ends_with() -> None:
    # Ctrl-C's 130 is the shell's convention, not a verdict CI acts on.
    assert _readme_exit_codes() == {int(code) for code in ExitCode} - {ExitCode.INTERRUPTED}


def test_every_code_is_distinct_and_says_what_it_means() -> None:
    assert len({int(code) for code in ExitCode}) == len(ExitCode)
    for code in ExitCode:
        assert code.meaning.strip(), code.name
    assert ExitCode(2) is ExitCode.REGRESSION  # argparse's usage exit would read as this


def test_a_signal_exit_is_128_plus_its_number_as_a_shell_reports_it() -> None:
    assert ExitCode.signalled(signal.SIGTERM) == 143
    assert ExitCode.signalled(signal.SIGINT) == ExitCode.INTERRUPTED
    assert ExitCode.signalled(signal.SIGHUP) == 129
    for outside in (0, 128, -15):  # 256 would wrap to 0, "success", in a real exit status
        with pytest.raises(ValueError, match=r"outside 1\.\.127"):
            ExitCode.signalled(outside)


@pytest.mark.parametrize(
    ("argv", "words", "debug"),
    [
        (["--debug", "run", "m"], ["run", "m"], True),
        (["run", "m", "--debug"], ["run", "m"], True),
        (["run", "--debug", "m", "--debug"], ["run", "m"], True),
        (["run", "m"], ["run", "m"], False),
        (["run", "--", "--debug"], ["run", "--", "--debug"], False),
        (["run", "--debug", "--", "--debug"], ["run", "--", "--debug"], True),
        (["run", "--marker=--debug"], ["run", "--marker=--debug"], False),
    ],
)
def test_debug_is_taken_from_anywhere_before_a_double_dash(
    argv: list[str], words: list[str], debug: bool
) -> None:
    assert split_debug(argv) == (words, debug)
