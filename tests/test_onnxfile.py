"""The pre-check that lets a self-contained model skip the onnx parse, and its soundness."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf.message import DecodeError

from model_bisect.evaluation.onnxfile import external_data_locations, names_no_external_data
from tests.modelkit import linear_model, linear_proto


def test_self_contained_model_is_answered_without_importing_onnx(tmp_path: Path) -> None:
    path = linear_model(tmp_path / "m.onnx", [0.5, 0.25])
    probe = (
        "import sys; from pathlib import Path; "
        "from model_bisect.evaluation.onnxfile import external_data_locations as f; "
        f"print(f(Path({str(path)!r})), 'onnx' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["[]", "False"]


def test_model_with_external_data_is_parsed_and_names_its_file(tmp_path: Path) -> None:
    path = linear_model(tmp_path / "m.onnx", [0.5, 0.25], external_data=True)
    data = path.read_bytes()
    assert not names_no_external_data(data)
    assert external_data_locations(data) == ["m.onnx.data"]


def test_the_word_location_elsewhere_only_costs_a_parse(tmp_path: Path) -> None:
    model = linear_proto([0.5, 0.25], 0.0)
    model.doc_string = "trained at location B"
    data = model.SerializeToString()
    assert not names_no_external_data(data)
    assert external_data_locations(data) == []


def test_unparsable_bytes_that_could_name_external_data_raise() -> None:
    with pytest.raises(DecodeError):
        external_data_locations(b"\xff\xff location \xff")
