"""A bounded setting's flag (``Setting.bounds`` in `model_bisect/settings.py`) is refused outside
its range by every command that has the flag, one line naming the flag and the command, with
the exit status of that command's usage errors; `[tool.model-bisect]` refuses the same values
in the same words.

The cases come from the catalogue and the parser: a new bounded setting, or a new command
given a bounded flag, is covered without touching this file (a command missing from
``PAST_THE_FLAGS`` fails the test until it says how its command line gets past the flags).
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from model_bisect.cli import build_parser
from model_bisect.config import read_config
from model_bisect.errors import InputError
from model_bisect.exitcodes import ExitCode, JudgeExit
from model_bisect.settings import SETTINGS, Command, Kind, Setting
from tests.clirun import call_main
from tests.conftest import FIXTURE_DIR

MODELS = FIXTURE_DIR / "models"
MISSING = "no-such-features.parquet"  # relative to tmp_path: each run fails on it, after the flags

# Per command: a command line every bound check lets through, whose run then stops with a
# known error before any model is evaluated; the status that error (and a refused flag) exits
# with. Companion flags make a bounded flag meaningful (--significance needs --max-drop,
# --min-slice-rows needs --slice-by), so that acceptance means "past every flag rule".
PAST_THE_FLAGS: dict[str, tuple[tuple[str, ...], str, int]] = {
    "run": (
        (str(MODELS), "--features", MISSING, "--min-plcc", "0.1", "--max-drop", "plcc=0.1",
         "--slice-by", "encoder", "--no-cache", "--quiet"),
        "error: features file not found in ",
        ExitCode.INPUT,
    ),
    "judge": (
        (str(MODELS / "model_01.onnx"), "--anchor", str(MODELS / "model_00.onnx"),
         "--features", MISSING, "--min-plcc", "0.1", "--max-drop", "plcc=0.1", "--no-cache"),
        "error: feature cache not found in ",
        JudgeExit.ABORT,
    ),
    "nightly": (  # --models beside a MODEL argument: refused by the plan, before any step runs
        ("--config", "pyproject.toml", "--models", str(MODELS), "--out", "out",
         "--", str(MODELS / "model_00.onnx")),
        "error: give the timeline exactly one way in model-bisect nightly",
        ExitCode.INPUT,
    ),
}  # fmt: skip


def _subcommands_with(flag: str) -> list[str]:
    """The subcommands whose parser has ``flag``, read from the parser itself."""
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(
        name
        for name, command in sub.choices.items()
        if any(flag in action.option_strings for action in command._actions)
    )


def _step(value: float, toward: float, kind: Kind) -> float:
    """The next value after ``value`` toward ``toward``: 1 for a whole number, else the
    neighbouring float."""
    if kind is Kind.INTEGER:
        return value + (1 if toward > value else -1)
    return math.nextafter(value, toward)


def _as_int(value: float, kind: Kind) -> float:
    return int(value) if kind is Kind.INTEGER else value


def outside(setting: Setting) -> list[float]:
    """Values just outside each finite end (an open end's bound itself), and for a number
    NaN and both infinities."""
    b = setting.bounds
    assert b is not None
    values = [b.low if b.low_open else _step(b.low, -math.inf, setting.kind)]
    if math.isfinite(b.high):
        values.append(b.high if b.high_open else _step(b.high, math.inf, setting.kind))
    if setting.kind is Kind.NUMBER:
        values += [math.inf, -math.inf, math.nan]
    return list(dict.fromkeys(_as_int(v, setting.kind) for v in values))


def inside(setting: Setting) -> list[float]:
    """A closed end's bound itself, the value just inside an open end, and the example."""
    b = setting.bounds
    assert b is not None
    values = [_step(b.low, b.high, setting.kind) if b.low_open else b.low]
    if math.isfinite(b.high):
        values.append(_step(b.high, b.low, setting.kind) if b.high_open else b.high)
    values.append(float(setting.example))
    return list(dict.fromkeys(_as_int(v, setting.kind) for v in values))


def _text(value: float) -> str:
    """``value`` as typed on the command line and in TOML: every digit (repr)."""
    return repr(value)


def _cases(values: Callable[[Setting], list[float]]) -> list[Any]:
    """One case per bounded setting, per subcommand that has its flag, per value."""
    return [
        pytest.param(setting, command, value, id=f"{command} {setting.flag} {_text(value)}")
        for setting in SETTINGS
        if setting.bounds is not None
        for command in _subcommands_with(setting.flag)
        for value in values(setting)
    ]


CASES = _cases(outside)
ACCEPTED = _cases(inside)


def _call(tmp_path: Path, command: str, setting: Setting, value: float) -> tuple[int, list[str]]:
    """``model-bisect COMMAND --flag=VALUE ...`` in ``tmp_path`` (its own empty table): the
    status and the lines of stderr. ``=`` keeps ``-5e-324`` a value, not an option."""
    (tmp_path / "pyproject.toml").write_text("[tool.model-bisect]\n", encoding="utf-8")
    args, _, _ = PAST_THE_FLAGS[command]
    # the flag goes before the command line's own words (a `--` ends the options there)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        ran = call_main("model_bisect", command, f"{setting.flag}={_text(value)}", *args)
    assert "Traceback" not in ran.err, ran.err
    return ran.code, ran.err.splitlines()


def test_every_bounded_setting_is_a_flag_of_each_command_the_catalogue_names() -> None:
    spelled = {Command.RUN: "run", Command.JUDGE: "judge"}
    bounded = [s for s in SETTINGS if s.bounds is not None]
    assert bounded, "the catalogue has bounded settings"
    for setting in bounded:
        having = _subcommands_with(setting.flag)
        assert {spelled[c] for c in setting.commands} <= set(having), setting.flag
        assert set(having) <= set(PAST_THE_FLAGS), f"say how {having} get past the flags"


@pytest.mark.parametrize(("setting", "command", "value"), CASES)
def test_a_value_just_outside_the_bounds_is_one_line_naming_the_flag_and_command(
    tmp_path: Path, setting: Setting, command: str, value: float
) -> None:
    _, _, status = PAST_THE_FLAGS[command]
    code, lines = _call(tmp_path, command, setting, value)
    assert code == status, lines
    (line,) = lines
    flag = re.escape(setting.flag)
    shown = re.escape(_text(value).removesuffix(".0"))
    example = re.escape(setting.example)
    pattern = rf"error: {flag} must be [^,]*(, [^,]*)*, not {shown} in model-bisect {command}: "
    assert re.fullmatch(pattern + rf"use e\.g\. {flag} {example}", line), line


@pytest.mark.parametrize(("setting", "command", "value"), ACCEPTED)
def test_a_value_on_a_closed_bound_or_just_inside_an_open_one_is_accepted(
    tmp_path: Path, setting: Setting, command: str, value: float
) -> None:
    _, later_error, status = PAST_THE_FLAGS[command]
    code, lines = _call(tmp_path, command, setting, value)
    assert (code, len(lines)) == (status, 1), lines
    assert lines[0].startswith(later_error), lines  # stopped after the flags, not on this one


def _table(tmp_path: Path, setting: Setting, value: float) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(f"[tool.model-bisect]\n{setting.name} = {_text(value)}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("setting", "command", "value"), [c for c in CASES if c.values[1] == "run"]
)
def test_the_file_refuses_what_the_flag_refuses_in_the_same_words(
    tmp_path: Path, setting: Setting, command: str, value: float
) -> None:
    words = f"{setting.flag} must be "
    _, lines = _call(tmp_path, command, setting, value)
    requirement = lines[0].split(words, 1)[1].rsplit(", not ", 1)[0]
    with pytest.raises(InputError) as raised:
        read_config(_table(tmp_path, setting, value))
    message = str(raised.value)
    assert message.startswith(f"bad value {setting.name} = {value!r} in {tmp_path}"), message
    assert f"use a number that is {requirement}, e.g. {setting.name} = {setting.example}" in (
        message
    )


@pytest.mark.parametrize(
    ("setting", "command", "value"), [c for c in ACCEPTED if c.values[1] == "run"]
)
def test_the_file_accepts_what_the_flag_accepts(
    tmp_path: Path, setting: Setting, command: str, value: float
) -> None:
    assert read_config(_table(tmp_path, setting, value)).values[setting.name] == value
