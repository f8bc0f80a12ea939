"""The dataset seam: the evaluator and the engine reach the data only through ``Dataset``.

A dataset that is not a feature table (rows of rank-2 tensors, held in memory) is evaluated
by a real ONNX model under ONNX Runtime and bisected by the real engine; the feature table's
own digest and dropped rows are what the protocol promises.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from onnx import TensorProto, helper, numpy_helper

from model_bisect import engine
from model_bisect.evaluation.cache import EvalCache
from model_bisect.evaluation.dataset import DroppedRows, Items, UnknownRows
from model_bisect.evaluation.features import StringColumn, load_features
from model_bisect.evaluation.inputs import ColumnSpec, InputDescription, ModelInput
from model_bisect.evaluation.runner import Evaluator
from model_bisect.gates import gate_specs
from model_bisect.report import VerdictKind
from model_bisect.timeline.entry import TimelineEntry
from tests.modelkit import IR_VERSION

ROW = (2, 3)  # one row of the tensor dataset: a 2 x 3 "frame"
GOOD = np.arange(1.0, 7.0, dtype=np.float32).reshape(ROW) / 6.0


@dataclass(eq=False)
class TensorRows:
    """A dataset of one tensor per row, by input name: what a frame cache will look like."""

    tensors: dict[str, np.ndarray]  # name -> float32 [rows, *ROW]
    target: np.ndarray
    digest: str = "tensor-rows-1"
    path: Path = Path("frames.parquet")
    sha256: str = "0" * 64
    target_name: str = "mos"
    dropped: DroppedRows = field(
        default_factory=lambda: DroppedRows(2, "a frame could not be decoded")
    )
    batches: list[tuple[str | None, int, int]] = field(default_factory=list)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.tensors)

    @property
    def rows(self) -> int:
        return len(self.target)

    def lacking(self, description: InputDescription) -> list[str]:
        return [i.name or "" for i in description.inputs if i.name not in self.tensors]

    def row_shape(self, model_input: ModelInput) -> tuple[int, ...]:
        return tuple(self.tensors[model_input.name or ""].shape[1:])

    def batch(self, model_input: ModelInput, start: int, stop: int) -> np.ndarray:
        self.batches.append((model_input.name, start, stop))
        return self.tensors[model_input.name or ""][start:stop]

    @property
    def fed_rows(self) -> int:
        return self.rows

    def pooled(self, predictions: np.ndarray) -> np.ndarray:
        return predictions

    def kept_rows(self) -> np.ndarray | None:
        return None

    def unknown_rows(self, description: InputDescription) -> UnknownRows:
        return UnknownRows()

    def items(self) -> Items:
        return Items()

    def string_columns(self, max_values: int) -> dict[str, StringColumn]:
        return {}


def _frames(rows: int = 40, seed: int = 3) -> TensorRows:
    rng = np.random.default_rng(seed)
    frames = rng.random((rows, *ROW), dtype=np.float32)
    target = np.einsum("nij,ij->n", frames.astype(np.float64), GOOD.astype(np.float64))
    return TensorRows({"frame": frames}, target + rng.normal(0.0, 0.01, rows))


def _frame_model(
    path: Path, weights: np.ndarray, *, batch: int | str = "N", row: tuple[int, ...] = ROW
) -> Path:
    """``score = sum(frame * W)`` over each row's 2 x 3 values: input float [batch, 2, 3]."""
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["frame", "W"], ["weighted"]),
            helper.make_node("ReduceSum", ["weighted", "axes"], ["score"], keepdims=0),
        ],
        "frame-sum",
        [helper.make_tensor_value_info("frame", TensorProto.FLOAT, [batch, *row])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [batch])],
        [
            numpy_helper.from_array(weights.astype(np.float32), "W"),
            numpy_helper.from_array(np.asarray([1, 2], dtype=np.int64), "axes"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = IR_VERSION
    onnx.save(model, path)
    return path


FRAME = InputDescription((ModelInput("frame", (ColumnSpec("frame", "frame"),)),), "timeline")


def _entry(path: Path, index: int = 0) -> TimelineEntry:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return TimelineEntry(index, path.name, path, digest, digest, FRAME, digest)


def _by_hand(data: TensorRows, weights: np.ndarray) -> np.ndarray:
    frames = data.tensors["frame"].astype(np.float64)
    return np.einsum("nij,ij->n", frames, weights.astype(np.float64))


@pytest.mark.parametrize("batch", ["N", 8], ids=["dynamic-batch", "fixed-batch-8"])
def test_the_evaluator_feeds_rank_3_inputs_from_a_dataset_that_is_no_feature_table(
    tmp_path: Path, batch: int | str
) -> None:
    data = _frames(rows=21)  # 21 rows: a fixed batch of 8 pads the last one
    model = _frame_model(tmp_path / "m.onnx", GOOD, batch=batch)
    result = Evaluator(data, batch_rows=16).predict(_entry(model), FRAME)
    assert result.ok, result.reason
    assert result.predictions is not None
    np.testing.assert_allclose(result.predictions, _by_hand(data, GOOD), rtol=1e-5)
    step = 8 if batch == 8 else 16
    assert data.batches == [("frame", b, min(b + step, 21)) for b in range(0, 21, step)]


def test_rows_of_another_shape_skip_the_model_naming_both_shapes(tmp_path: Path) -> None:
    data = _frames()
    model = _frame_model(tmp_path / "m.onnx", np.ones((2, 4)), row=(2, 4))
    result = Evaluator(data).predict(_entry(model), FRAME)
    assert not result.ok
    assert result.reason == (
        "shape mismatch on input 'frame': model wants rows of [2, 4], the data gives [2, 3]"
    )


def test_the_engine_bisects_a_dataset_through_the_protocol_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = _frames()
    rng = np.random.default_rng(11)
    weights = [GOOD + rng.normal(0.0, 0.01, ROW) for _ in range(3)]
    weights += [rng.normal(0.0, 1.0, ROW) for _ in range(3)]  # from #3 on: unrelated
    entries = [_entry(_frame_model(tmp_path / f"m{i}.onnx", w), i) for i, w in enumerate(weights)]
    cache = EvalCache(tmp_path / "cache")
    options = engine.RunOptions(gates=gate_specs({"plcc": 0.9}, []), cache=cache)
    opened: list[Path] = []

    def open_frames(path: Path, *_: object, **__: object) -> TensorRows:
        opened.append(path)
        return data

    monkeypatch.setattr(engine, "open_dataset", open_frames)
    report = engine.run(entries, tmp_path / "frames.parquet", options)
    assert opened == [tmp_path / "frames.parquet"]
    assert report.verdict.kind == VerdictKind.REGRESSION
    assert report.verdict.first_bad_index == 3
    assert (report.features.rows, report.features.dropped_rows) == (40, 2)
    assert report.features.columns == ("frame",)
    for step in report.steps:
        assert step.metrics is not None
        expected = np.corrcoef(_by_hand(data, weights[step.index]), data.target)[0, 1]
        assert step.metrics.values["plcc"] == pytest.approx(expected, abs=1e-5)

    again = engine.run(entries, tmp_path / "frames.parquet", options)
    assert again.evaluations == 0  # the digest keys the cache ...
    data.digest = "tensor-rows-2"
    other = engine.run(entries, tmp_path / "frames.parquet", options)
    assert other.evaluations == report.evaluations  # ... and other data misses it


def test_the_feature_table_digest_follows_its_bytes_and_the_rows_it_kept(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f.parquet"
    b = [1.0, float("nan"), 3.0, 4.0, 5.0]
    pq.write_table(pa.table({"a": [1.0, 2, 3, 4, 5], "b": b, "mos": [1.0, 2, 3, 4, 5]}), path)
    alone = load_features(path, ["a"])
    both = load_features(path, ["a", "b"])
    assert alone.digest == load_features(path, ["a"]).digest
    assert alone.digest != both.digest  # same file, other rows kept
    assert alone.dropped == DroppedRows(0, "")
    assert both.dropped.count == 1
    assert "not finite" in both.dropped.reason
    pq.write_table(pa.table({"a": [1.0, 2, 3, 4, 6], "mos": [1.0, 2, 3, 4, 5]}), path)
    assert load_features(path, ["a"]).digest != alone.digest  # other bytes


def test_the_feature_table_feeds_a_described_input_as_the_model_reads_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f.parquet"
    columns = {"a": [1.0, 2, 3, 4], "b": [10.0, 20, 30, 40], "mos": [1.0, 2, 3, 4]}
    codec = ["x264", "x265", "vp9", None]
    pq.write_table(pa.table({**columns, "enc": codec}), path)
    table = load_features(path, ["a", "b"], strings=["enc"])
    spec = ModelInput(
        "features",
        (
            ColumnSpec("b", "b"),
            ColumnSpec("enc_onehot[x265]", "enc", "x265"),
            ColumnSpec("enc_onehot[unknown]", "enc", "unknown"),
            ColumnSpec("a", "a"),
        ),
        mean=(0.0, 0.0, 0.0, 1.0),
        std=(10.0, 1.0, 1.0, 1.0),
    )
    assert table.row_shape(spec) == (4,)
    fed = table.batch(spec, 1, 4)
    assert fed.dtype == np.float32
    np.testing.assert_array_equal(fed, [[2, 1, 0, 1], [3, 0, 1, 2], [4, 0, 1, 3]])
    description = InputDescription((spec,), "timeline")
    assert table.unknown_rows(description) == UnknownRows(
        3, "3 rows have a value outside the one-hot layout: enc (fed as enc_onehot[unknown])"
    )
    assert table.lacking(
        InputDescription((ModelInput("x", (ColumnSpec("c", "c"),)),), "sidecar")
    ) == ["c"]
