"""Hostile inputs for `model-bisect run`: special files where models belong, external-data
locations no file system accepts, names that are not UTF-8, labels that rewrite terminals.

Every model here is a real ONNX file; every special file is a real FIFO or a symlink to a
real device. ``run_cli`` runs the real command line in a fresh process with a timeout, so a
regression that blocks fails the test instead of hanging CI.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import TensorProto, helper

from tests.clirun import REPO_ROOT
from tests.modelkit import IR_VERSION, linear_proto, save_with_external_weights

__all__ = [
    "Ran",
    "assert_one_line_error",
    "external_location_model",
    "fifo",
    "loop_forever_model",
    "no_output_model",
    "run_cli",
    "sha256s",
]

# Generous for two CPUs shared with other jobs; a blocked read never finishes at all.
TIMEOUT = 90.0


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str
    out_bytes: bytes


def run_cli(
    *args: str | Path | bytes,
    timeout: float = TIMEOUT,
    umask: int = -1,
    cwd: Path = REPO_ROOT,
    env: dict[str, str] | None = None,
) -> Ran:
    """`python -m model_bisect run ARGS` as a real process; stdout kept as bytes too."""
    done = subprocess.run(
        [sys.executable, "-m", "model_bisect", "run", *map(os.fsencode, args)],
        cwd=cwd,
        capture_output=True,
        timeout=timeout,
        check=False,
        umask=umask,
        env=env,
    )
    return Ran(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
        done.stdout,
    )


def assert_one_line_error(ran: Ran, starts: str = "", code: int = 3) -> str:
    """Exit ``code``, no traceback, and exactly one ``error: ...`` line on stderr."""
    assert "Traceback" not in ran.err, ran.err
    lines = ran.err.splitlines()
    assert len(lines) == 1, ran.err
    assert lines[0].startswith(f"error: {starts}"), lines[0]
    assert ran.code == code, (ran.code, ran.err)
    return lines[0]


def sha256s(paths: Iterable[Path]) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def fifo(path: Path) -> Path:
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


def external_location_model(path: Path, weights: Sequence[float], location: str) -> Path:
    """A linear model whose weights claim to live at ``location`` (written verbatim into
    the protobuf: NUL bytes, 5,000-character names, anything)."""
    return save_with_external_weights(path, linear_proto(weights), location)


def no_output_model(path: Path, n_features: int) -> Path:
    """A graph with an input and a node but no declared output."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["copy"])],
        "no_outputs",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", n_features])],
        [],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = IR_VERSION
    path.write_bytes(model.SerializeToString())
    assert not onnx.load_model_from_string(path.read_bytes()).graph.output
    return path


def loop_forever_model(path: Path, n_features: int, trips: int = 10**12) -> Path:
    """A valid model that would run for days: ``score`` is the row sum carried unchanged
    through a ``Loop`` of ``trips`` iterations (10**12: no machine finishes it)."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Identity", ["v_in"], ["v_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", TensorProto.FLOAT, ["N"]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, ["N"]),
        ],
    )
    constants = [
        helper.make_tensor("M", TensorProto.INT64, [], [trips]),
        helper.make_tensor("cond", TensorProto.BOOL, [], [True]),
        helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["input", "axes"], ["v0"], keepdims=0),
            helper.make_node("Loop", ["M", "cond", "v0"], ["score"], body=body),
        ],
        "forever",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", n_features])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])],
        initializer=constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path
