"""Promises of `model-bisect run`, each pinned a second time through a real run.

Each test here drives `model-bisect run` in this process on real ONNX models (run by ONNX
Runtime) and a real parquet, from a temporary folder (so the project's own
`[tool.model-bisect]` never decides anything), and checks the report it writes. They are the
independent second killers of promises other files pin with a direct call: the min gate at
equality, the Fisher-z degrees of freedom, non-finite predictions skipped, and every part of
the evaluation-cache key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from onnx import TensorProto, helper, numpy_helper
from scipy import stats

from model_bisect.evaluation.features import CANONICAL_FEATURES
from model_bisect.exitcodes import ExitCode
from tests.clirun import call_main
from tests.modelkit import IR_VERSION, linear_model

WEIGHTS = [1.0, 0.8, 0.6, 0.5, 0.3, 0.2]
Z975 = float(stats.norm.ppf(0.975))


@pytest.fixture(autouse=True)
def _outside_the_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _columns(rows: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, size=(rows, len(CANONICAL_FEATURES))).astype(np.float32)
    mos = x.astype(np.float64) @ np.asarray(WEIGHTS) + rng.normal(0.0, 0.3, size=rows)
    return {**{name: x[:, i] for i, name in enumerate(CANONICAL_FEATURES)}, "mos": mos}


def _parquet(path: Path, columns: dict[str, np.ndarray], **options: Any) -> Path:
    pq.write_table(pa.table({k: pa.array(v) for k, v in columns.items()}), path, **options)
    return path


def _run(tmp_path: Path, *args: str | Path, name: str = "r.json") -> tuple[int, dict[str, Any]]:
    out = tmp_path / name
    ran = call_main("model_bisect", "run", *args, "--quiet", "--json", out)
    assert ran.code in (ExitCode.OK, ExitCode.REGRESSION, ExitCode.INCONCLUSIVE), ran.err
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return ran.code, report


def _step(report: dict[str, Any], index: int) -> dict[str, Any]:
    (step,) = [s for s in report["steps"] if s["index"] == index]
    return dict(step)


# --- the min gate holds at equality -------------------------------------------------------


def test_min_gate_equal_to_the_measured_value_passes_through_a_run(tmp_path: Path) -> None:
    """KROCC of a prediction that orders every row as the target does is exactly 1.0, so
    `--min-krocc 1` sits at equality: `>=` passes it, `>` would fail both models (head_bad)."""
    columns = _columns(64, seed=11)
    columns["mos"] = 3.0 * columns["adm2"].astype(np.float64) + 1.0  # monotone in adm2
    features = _parquet(tmp_path / "f.parquet", columns)
    only_adm2 = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    first = linear_model(tmp_path / "m" / "a.onnx", only_adm2)
    last = linear_model(tmp_path / "m" / "b.onnx", [2.0 * w for w in only_adm2], bias=0.5)
    tau = stats.kendalltau(columns["adm2"], columns["mos"]).statistic
    assert tau == 1.0  # independent: the gate really is met with equality
    code, report = _run(tmp_path, first, last, "--features", features, "--min-krocc", "1")
    assert code == ExitCode.OK
    assert report["verdict"]["kind"] == "no_regression"
    step = _step(report, 1)
    assert step["status"] == "good"
    assert step["metrics"]["krocc"] == 1.0


# --- the Fisher-z interval's degrees of freedom -------------------------------------------


def test_small_sample_intervals_match_fisher_z_computed_from_scipy(tmp_path: Path) -> None:
    """With 14 rows n - 3 and n - 2 differ by 9%: the report's intervals must use the
    catalogue's variances (1/(n-3), 1.06/(n-3), 0.437/(n-4)) on scipy's own correlations."""
    rows = 14
    columns = _columns(rows, seed=5)
    features = _parquet(tmp_path / "f.parquet", columns)
    weights = [1.0, 0.5, 0.5, 0.25, 0.25, 0.1]
    models = [linear_model(tmp_path / "m" / f"{i}.onnx", weights, bias=i) for i in range(2)]
    _, report = _run(tmp_path, *models, "--features", features, "--min-plcc", "0.1")
    metrics = _step(report, 1)["metrics"]
    assert metrics["n"] == rows
    x = np.stack([columns[name] for name in CANONICAL_FEATURES], axis=1).astype(np.float64)
    pred = x @ np.asarray(weights, dtype=np.float32).astype(np.float64) + 1.0
    target = columns["mos"]

    plcc = stats.pearsonr(pred, target)
    low, high = plcc.confidence_interval(0.95)  # scipy's Fisher z with n - 3
    assert metrics["ci"]["plcc"] == pytest.approx([low, high], rel=1e-5)
    for name, r, variance in (
        ("srocc", stats.spearmanr(pred, target).statistic, 1.06 / (rows - 3)),
        ("krocc", stats.kendalltau(pred, target).statistic, 0.437 / (rows - 4)),
    ):
        half = Z975 * math.sqrt(variance)
        expected = [math.tanh(math.atanh(r) - half), math.tanh(math.atanh(r) + half)]
        assert metrics[name] == pytest.approx(r, rel=1e-6)
        assert metrics["ci"][name] == pytest.approx(expected, rel=1e-5)


# --- non-finite predictions are a skip ----------------------------------------------------


def _reciprocal_model(path: Path) -> Path:
    """``score = 1 / adm2``: finite on every row but those where adm2 is 0 (+inf there)."""
    pick = np.zeros(len(CANONICAL_FEATURES), dtype=np.float32)
    pick[0] = 1.0
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "W"], ["adm2"]),
            helper.make_node("Reciprocal", ["adm2"], ["score"]),
        ],
        "reciprocal",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", len(pick)])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])],
        initializer=[numpy_helper.from_array(pick, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = IR_VERSION
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, path)
    return path


def test_a_model_infinite_on_one_row_is_skipped_not_measured(tmp_path: Path) -> None:
    columns = _columns(50, seed=2)
    columns["adm2"][17] = np.float32(0.0)  # a finite feature: the row is kept
    features = _parquet(tmp_path / "f.parquet", columns)
    good = linear_model(tmp_path / "m" / "a.onnx", WEIGHTS)
    infinite = _reciprocal_model(tmp_path / "m" / "b.onnx")
    _, report = _run(tmp_path, good, infinite, "--features", features, "--min-plcc", "-1")
    assert report["features"]["dropped_rows"] == 0
    step = _step(report, 1)
    assert step["status"] == "skip"
    assert step["metrics"] is None
    assert step["reason"] == "non-finite predictions: 1 of 50 rows are NaN or infinite"


# --- every part of the evaluation-cache key -----------------------------------------------


class _Setup:
    """A two-model timeline whose tail (the one the search evaluates) has external data and a
    sidecar; the parquet carries a second target and a column only one extra model reads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        columns = _columns(80, seed=9)
        columns["dmos"] = 2.0 * columns["mos"]
        extra = np.linspace(0.0, 1.0, 80, dtype=np.float32)
        extra[3] = np.nan
        columns["extra"] = extra
        self.columns = columns
        self.features = _parquet(root / "f.parquet", columns)
        self.head = linear_model(root / "m" / "a.onnx", WEIGHTS)
        self.tail = linear_model(root / "m" / "b.onnx", WEIGHTS, bias=0.1, external_data=True)
        self.sidecar = self.tail.with_suffix(".json")
        self.write_sidecar({"feature_order": list(CANONICAL_FEATURES)})
        self.models: list[Path] = [self.head, self.tail]
        self.extra_args: list[str] = []

    def write_sidecar(self, data: dict[str, Any], indent: int | None = None) -> None:
        self.sidecar.write_text(json.dumps(data, indent=indent), encoding="utf-8")

    def args(self) -> list[str | Path]:
        cache = self.root / "cache"
        return [*self.models, "--features", self.features, "--min-plcc", "0.3",
                "--cache-dir", cache, *self.extra_args]  # fmt: skip


def _rewrite_external_data(setup: _Setup) -> None:
    data = setup.tail.with_name(setup.tail.name + ".data")
    weights = np.frombuffer(data.read_bytes(), dtype=np.float32).copy()
    weights[0] += np.float32(0.25)
    data.write_bytes(weights.tobytes())


def _rewrite_model_bytes(setup: _Setup) -> None:
    linear_model(setup.tail, WEIGHTS, bias=0.2, external_data=True)


def _change_one_feature_value(setup: _Setup) -> None:
    columns = dict(setup.columns)
    adm2 = columns["adm2"].copy()
    adm2[0] = np.float32(adm2[0] + 0.125)
    columns["adm2"] = adm2
    _parquet(setup.features, columns)


def _same_values_other_bytes(setup: _Setup) -> None:
    _parquet(setup.features, setup.columns, compression="gzip")


def _keep_other_rows(setup: _Setup) -> None:
    """A third model that reads `extra` (NaN on row 3) drops that row for every model."""
    reader = linear_model(setup.root / "m" / "x.onnx", WEIGHTS)
    reader.with_suffix(".json").write_text(
        json.dumps({"feature_order": ["extra", *CANONICAL_FEATURES[1:]]}), encoding="utf-8"
    )
    setup.models = [setup.head, reader, setup.tail]


def _reorder_sidecar_columns(setup: _Setup) -> None:
    setup.write_sidecar({"feature_order": list(reversed(CANONICAL_FEATURES))})


def _standardise_in_sidecar(setup: _Setup) -> None:
    n = len(CANONICAL_FEATURES)
    setup.write_sidecar(
        {
            "feature_order": list(CANONICAL_FEATURES),
            "feature_mean": [0.5] * n,
            "feature_std": [0.25] * n,
        }
    )


def _timeline_inputs_table(setup: _Setup) -> None:
    lines = []
    for model in setup.models:
        lines += ["[[models]]", f"path = {json.dumps(str(model))}"]
    lines += [
        "[models.inputs]",
        f"input = {{ columns = {json.dumps(list(CANONICAL_FEATURES))}, "
        "standardize = { mean = [0, 0, 0, 0, 0, 0], std = [2, 2, 2, 2, 2, 2] } }",
    ]
    timeline = setup.root / "timeline.toml"
    timeline.write_text("\n".join(lines) + "\n", encoding="utf-8")
    setup.models = []
    setup.extra_args += ["--timeline", str(timeline)]


def _flag(*flag: str) -> Callable[[_Setup], None]:
    def change(setup: _Setup) -> None:
        setup.extra_args += list(flag)

    return change


KEY_PARTS: dict[str, Callable[[_Setup], None]] = {
    "mapping": _flag("--mapping", "linear"),
    "target": _flag("--target", "dmos"),
    "input name": _flag("--input-name", "input"),
    "model bytes": _rewrite_model_bytes,
    "external data": _rewrite_external_data,
    "features values": _change_one_feature_value,
    "features bytes": _same_values_other_bytes,
    "rows kept": _keep_other_rows,
    "sidecar columns": _reorder_sidecar_columns,
    "sidecar scaler": _standardise_in_sidecar,
    "timeline inputs": _timeline_inputs_table,
}


@pytest.mark.parametrize("part", sorted(KEY_PARTS))
def test_changing_one_cache_key_part_is_a_miss_on_the_next_run(tmp_path: Path, part: str) -> None:
    setup = _Setup(tmp_path)
    _, first = _run(tmp_path, *setup.args(), name="first.json")
    assert _step(first, 1)["cached"] is False
    _, again = _run(tmp_path, *setup.args(), name="again.json")
    assert _step(again, 1)["cached"] is True  # control: unchanged, it is a hit
    assert again["evaluations"] == 0
    KEY_PARTS[part](setup)
    _, changed = _run(tmp_path, *setup.args(), name="changed.json")
    tail = len(changed["timeline"]) - 1
    assert _step(changed, tail)["cached"] is False
    assert changed["evaluations"] >= 1


@pytest.mark.parametrize("what", ["library versions", "tool version"])
def test_another_toolchain_or_tool_version_is_a_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    import model_bisect.engine as engine

    setup = _Setup(tmp_path)
    _run(tmp_path, *setup.args(), name="first.json")
    if what == "library versions":
        real = engine.toolchain_versions

        def bumped() -> dict[str, str]:
            return {**real(), "numpy": "0.0.1"}

        monkeypatch.setattr(engine, "toolchain_versions", bumped)
    else:
        monkeypatch.setattr(engine, "__version__", "0.0.0+another")
    _, changed = _run(tmp_path, *setup.args(), name="changed.json")
    assert _step(changed, 1)["cached"] is False


def test_a_sidecar_edit_that_keeps_the_description_is_still_a_hit(tmp_path: Path) -> None:
    setup = _Setup(tmp_path)
    _run(tmp_path, *setup.args(), name="first.json")
    setup.write_sidecar({"feature_order": list(CANONICAL_FEATURES)}, indent=4)
    _, again = _run(tmp_path, *setup.args(), name="again.json")
    assert _step(again, 1)["cached"] is True
