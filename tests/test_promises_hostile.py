"""Hostile inputs: unsafe external-data locations are refused by the lexical check alone.

`unsafe_location_reason` refuses absolute paths and `..` on sight, in either separator style,
before it resolves anything. Every location here *resolves inside* the model's folder on this
machine (the data file it names really exists there), so the later realpath check would let
it through: only the lexical check can refuse it. Each form is checked by a direct call and
through a real `model-bisect run`, where ONNX Runtime could otherwise have read the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model_bisect.evaluation.onnxfile import unsafe_location_reason
from tests.clirun import call_main
from tests.modelkit import features_parquet, linear_model, linear_proto, save_with_external_weights

WEIGHTS = [1.0, 0.8, 0.6, 0.5, 0.3, 0.2]

# (form, location relative to the model folder or "{folder}" for its absolute path, the data
# file's name inside the folder that the location reaches, what the reason says)
FORMS = [
    ("parent after a folder", "sub/../w.bin", "w.bin", "'..'"),
    ("parent, backslashes", "sub\\..\\w.bin", "sub\\..\\w.bin", "'..'"),
    ("leading parent, backslash", "..\\w.bin", "..\\w.bin", "'..'"),
    ("absolute POSIX path inside", "{folder}/w.bin", "w.bin", "absolute path"),
    ("drive letter", "C:\\w.bin", "C:\\w.bin", "absolute path"),
    ("drive-relative", "C:w.bin", "C:w.bin", "absolute path"),
    ("root backslash", "\\w.bin", "\\w.bin", "absolute path"),
    ("UNC share", "\\\\host\\share\\w.bin", "\\\\host\\share\\w.bin", "absolute path"),
]
IDS = [form for form, *_ in FORMS]


def _place(folder: Path, location: str, data_name: str) -> str:
    """Write the weights where the location would resolve to; return the location."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sub").mkdir(exist_ok=True)
    (folder / data_name).write_bytes(np.asarray(WEIGHTS, dtype=np.float32).tobytes())
    return location.replace("{folder}", str(folder.resolve()))


@pytest.mark.parametrize(("form", "location", "data_name", "says"), FORMS, ids=IDS)
def test_lexically_unsafe_location_is_refused_although_it_resolves_inside(
    tmp_path: Path, form: str, location: str, data_name: str, says: str
) -> None:
    folder = tmp_path / "models"
    location = _place(folder, location, data_name)
    reason = unsafe_location_reason(location, folder)
    assert reason is not None, form
    assert reason.startswith("unsafe external-data location")
    assert says in reason
    assert "resolves outside" not in reason


@pytest.mark.parametrize(("form", "location", "data_name", "says"), FORMS, ids=IDS)
def test_lexically_unsafe_location_skips_the_model_in_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str, location: str, data_name: str,
    says: str,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "models"
    features, _ = features_parquet(tmp_path / "f.parquet", rows=64, seed=4)
    head = linear_model(folder / "a.onnx", WEIGHTS)
    tail = save_with_external_weights(
        folder / "b.onnx", linear_proto(WEIGHTS), _place(folder, location, data_name)
    )
    out = tmp_path / "r.json"
    ran = call_main(
        "model_bisect", "run", head, tail, "--features", features, "--min-plcc", "0.5",
        "--quiet", "--json", out,
    )  # fmt: skip
    assert ran.code in (0, 4), ran.err
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    (step,) = [s for s in report["steps"] if s["index"] == 1]
    assert step["status"] == "skip", form
    assert step["reason"].startswith("unsafe external-data location")
    assert says in step["reason"]


def test_the_same_weights_at_a_plain_location_are_evaluated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control: the model and data above are usable once the location is written plainly."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "models"
    features, _ = features_parquet(tmp_path / "f.parquet", rows=64, seed=4)
    head = linear_model(folder / "a.onnx", WEIGHTS)
    tail = save_with_external_weights(
        folder / "b.onnx", linear_proto(WEIGHTS), _place(folder, "w.bin", "w.bin")
    )
    assert unsafe_location_reason("w.bin", folder) is None
    out = tmp_path / "r.json"
    ran = call_main(
        "model_bisect", "run", head, tail, "--features", features, "--min-plcc", "0.5",
        "--quiet", "--json", out,
    )  # fmt: skip
    assert ran.code == 0, ran.err
    report = json.loads(out.read_text(encoding="utf-8"))
    (step,) = [s for s in report["steps"] if s["index"] == 1]
    assert step["status"] == "good"
