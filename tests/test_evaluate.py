"""Evaluating real-world-shaped ONNX models with ONNX Runtime; untestable ones are skipped."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from model_bisect.engine import RunOptions, run
from model_bisect.evaluation.features import (
    CANONICAL_FEATURES,
    FeatureTable,
    columns_for,
    load_features,
)
from model_bisect.evaluation.onnxfile import unsafe_location_reason
from model_bisect.evaluation.runner import Evaluation, Evaluator
from model_bisect.report import GateSpec, Status
from model_bisect.timeline.arguments import from_arguments
from model_bisect.timeline.entry import TimelineEntry
from tests.modelkit import (
    default_weights,
    features_parquet,
    invalid_model,
    linear_model,
    missing_external_data_model,
    nan_model,
    quantized_model,
    second_input_model,
    sidecar_json,
    timeline_dir,
    unsafe_external_data_model,
)

WEIGHTS = [0.9, -0.4, 0.3, 0.2, -0.1, 0.6]


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> FeatureTable:
    path, _ = features_parquet(tmp_path_factory.mktemp("features") / "f.parquet", rows=300)
    return load_features(path, CANONICAL_FEATURES)


def _model(path: Path) -> tuple[TimelineEntry, tuple[str, ...]]:
    """predict's arguments: the entry and the columns its sidecar names (as the engine reads)."""
    return TimelineEntry(0, path.name, path, None), columns_for(path)


def _expected(table: FeatureTable, weights: list[float], bias: float = 0.0) -> np.ndarray:
    # Computed independently of the runtime, in float64 from the float32 features.
    return table.matrix.astype(np.float64) @ np.asarray(weights, dtype=np.float64) + bias


def _ok(result: Evaluation) -> np.ndarray:
    assert result.ok, result.reason
    assert result.reason == ""
    assert result.predictions is not None
    return result.predictions


def _skipped(result: Evaluation) -> str:
    assert not result.ok
    assert result.predictions is None
    assert result.reason
    assert "\n" not in result.reason
    return result.reason


def test_linear_model_predicts_every_row_in_its_float32_output_precision(
    tmp_path: Path, table: FeatureTable
) -> None:
    # Not widened to float64: that copy would be 40 MB more at 10M rows (a double output
    # stays float64: tests/test_inputs.py).
    model = linear_model(tmp_path / "m.onnx", WEIGHTS, bias=0.5)
    result = Evaluator(table).predict(*_model(model))
    predictions = _ok(result)
    assert predictions.dtype == np.float32
    assert predictions.shape == (table.rows,)
    np.testing.assert_allclose(predictions, _expected(table, WEIGHTS, 0.5), rtol=1e-5, atol=1e-5)
    assert result.seconds >= 0


def test_weights_in_an_external_data_file_load(tmp_path: Path, table: FeatureTable) -> None:
    model = linear_model(tmp_path / "m.onnx", WEIGHTS, external_data=True)
    assert (tmp_path / "m.onnx.data").is_file()
    predictions = _ok(Evaluator(table).predict(*_model(model)))
    np.testing.assert_allclose(predictions, _expected(table, WEIGHTS), rtol=1e-5, atol=1e-5)


def test_n_by_1_output_is_flattened(tmp_path: Path, table: FeatureTable) -> None:
    model = linear_model(tmp_path / "m.onnx", WEIGHTS, output_shape="N1")
    predictions = _ok(Evaluator(table).predict(*_model(model)))
    np.testing.assert_allclose(predictions, _expected(table, WEIGHTS), rtol=1e-5, atol=1e-5)


def test_sidecar_feature_order_feeds_the_columns_the_model_names(
    tmp_path: Path, table: FeatureTable
) -> None:
    order = [5, 2, 0, 4, 1, 3]
    canonical = linear_model(tmp_path / "canonical.onnx", WEIGHTS)
    permuted = linear_model(
        tmp_path / "permuted.onnx", [WEIGHTS[i] for i in order], input_name="features"
    )
    sidecar_json(permuted, [CANONICAL_FEATURES[i] for i in order])
    evaluator = Evaluator(table)
    np.testing.assert_allclose(
        _ok(evaluator.predict(*_model(permuted))),
        _ok(evaluator.predict(*_model(canonical))),
        rtol=1e-5,
        atol=1e-5,
    )


def test_sidecar_with_fewer_features_feeds_only_those(tmp_path: Path, table: FeatureTable) -> None:
    model = linear_model(tmp_path / "m.onnx", [2.0, -1.0])
    sidecar_json(model, ["motion2", "adm2"])
    predictions = _ok(Evaluator(table).predict(*_model(model)))
    expected = 2.0 * table.matrix[:, 5].astype(np.float64) - table.matrix[:, 0]
    np.testing.assert_allclose(predictions, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_int8_quantized_model_runs_close_to_the_float_model(
    tmp_path: Path, table: FeatureTable, mode: str
) -> None:
    # Static quantization fixes activation ranges from calibration data: calibrate on the rows
    # it will see, as a user would, so no output is clipped.
    model = quantized_model(
        tmp_path / f"{mode}.onnx",
        WEIGHTS,
        0.2,
        mode=mode,  # type: ignore[arg-type]
        calibration=np.array(table.matrix),
    )
    predictions = _ok(Evaluator(table).predict(*_model(model)))
    expected = _expected(table, WEIGHTS, 0.2)
    spread = float(expected.max() - expected.min())
    assert np.max(np.abs(predictions - expected)) < 0.05 * spread
    assert np.corrcoef(predictions, expected)[0, 1] > 0.99


def test_input_name_override_picks_the_input(tmp_path: Path, table: FeatureTable) -> None:
    model = linear_model(tmp_path / "m.onnx", WEIGHTS, input_name="x")
    _ok(Evaluator(table, input_name="x").predict(*_model(model)))
    reason = _skipped(Evaluator(table, input_name="features").predict(*_model(model)))
    assert reason == "model has no input 'features' (its inputs: 'x')"


def test_predict_is_thread_safe(tmp_path: Path, table: FeatureTable) -> None:
    models = [
        linear_model(tmp_path / f"m{i}.onnx", [w * (i + 1) for w in WEIGHTS]) for i in range(6)
    ]
    evaluator = Evaluator(table, threads=1)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda m: evaluator.predict(*_model(m)), models))
    for i, result in enumerate(results):
        np.testing.assert_allclose(
            _ok(result), _expected(table, [w * (i + 1) for w in WEIGHTS]), rtol=1e-5, atol=1e-4
        )


def test_batched_run_equals_a_single_run(tmp_path: Path, table: FeatureTable) -> None:
    model = linear_model(tmp_path / "m.onnx", WEIGHTS)
    whole = _ok(Evaluator(table).predict(*_model(model)))
    batched = _ok(Evaluator(table, batch_rows=7).predict(*_model(model)))
    np.testing.assert_array_equal(whole, batched)


# --- skipped, with the reason -----------------------------------------------------------------


def test_second_required_input_is_skipped_naming_it(tmp_path: Path, table: FeatureTable) -> None:
    model = second_input_model(tmp_path / "m.onnx", WEIGHTS, extra_input="gain")
    reason = _skipped(Evaluator(table).predict(*_model(model)))
    assert reason.startswith(
        "graph input 'gain' is not fed: the default rule feeds one float [N, F] input"
    )


def test_missing_external_data_file_is_skipped(tmp_path: Path, table: FeatureTable) -> None:
    model = missing_external_data_model(tmp_path / "m.onnx", WEIGHTS)
    reason = _skipped(Evaluator(table).predict(*_model(model)))
    assert reason.startswith("missing external-data file 'm.onnx.data'")


@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink"])
def test_external_data_outside_the_model_folder_is_refused_as_unsafe(
    tmp_path: Path, table: FeatureTable, kind: str
) -> None:
    model = unsafe_external_data_model(
        tmp_path / "models" / "m.onnx",
        WEIGHTS,
        kind,  # type: ignore[arg-type]
        outside=tmp_path / "secret" / "weights.bin",
    )
    reason = _skipped(Evaluator(table).predict(*_model(model)))
    assert reason.startswith("unsafe external-data location")


@pytest.mark.parametrize(
    "location",
    ["../x.data", "a/../../x.data", "/etc/passwd", "..\\x.data", "C:\\w.data", "\\\\host\\s"],
)
def test_unsafe_locations_are_recognised_without_touching_files(
    tmp_path: Path, location: str
) -> None:
    assert unsafe_location_reason(location, tmp_path) is not None


@pytest.mark.parametrize(
    ("location", "says"),
    [("w\x00.bin", "NUL byte"), ("w" * 300, "name too long"), ("d/" * 2100 + "w", "too long")],
)
def test_locations_no_file_system_accepts_are_unsafe_not_exceptions(
    tmp_path: Path, location: str, says: str
) -> None:
    reason = unsafe_location_reason(location, tmp_path)
    assert reason is not None
    assert says in reason
    assert len(reason) < 200


@pytest.mark.parametrize("location", ["m.onnx.data", "weights/w.bin", "./w.bin"])
def test_locations_inside_the_folder_are_safe(tmp_path: Path, location: str) -> None:
    assert unsafe_location_reason(location, tmp_path) is None


def test_symlinked_data_inside_the_folder_is_allowed(tmp_path: Path, table: FeatureTable) -> None:
    model = linear_model(tmp_path / "m.onnx", WEIGHTS, external_data=True)
    data = tmp_path / "m.onnx.data"
    stored = tmp_path / "store" / "w.bin"
    stored.parent.mkdir()
    data.rename(stored)
    data.symlink_to(stored)
    _ok(Evaluator(table).predict(*_model(model)))


def test_nan_predictions_are_skipped(tmp_path: Path, table: FeatureTable) -> None:
    reason = _skipped(Evaluator(table).predict(*_model(nan_model(tmp_path / "m.onnx"))))
    assert (
        reason == f"non-finite predictions: {table.rows} of {table.rows} rows are NaN or infinite"
    )


def test_invalid_onnx_bytes_are_skipped(tmp_path: Path, table: FeatureTable) -> None:
    reason = _skipped(Evaluator(table).predict(*_model(invalid_model(tmp_path / "m.onnx"))))
    assert reason.startswith(("invalid ONNX", "ONNX Runtime cannot load the model"))


def test_feature_count_mismatch_is_skipped(tmp_path: Path, table: FeatureTable) -> None:
    model = linear_model(tmp_path / "m.onnx", [*WEIGHTS, 1.0])
    reason = _skipped(Evaluator(table).predict(*_model(model)))
    assert reason == "feature-count mismatch: model wants 7 features, the cache gives 6"


def test_missing_model_file_is_skipped(tmp_path: Path, table: FeatureTable) -> None:
    reason = _skipped(Evaluator(table).predict(*_model(tmp_path / "gone.onnx")))
    assert reason == f"model file not found: {tmp_path / 'gone.onnx'}"


def test_sidecar_naming_a_column_the_cache_lacks_is_skipped(
    tmp_path: Path, table: FeatureTable
) -> None:
    model = linear_model(tmp_path / "m.onnx", [1.0, 1.0])
    sidecar_json(model, ["adm2", "ssim"])
    reason = _skipped(Evaluator(table).predict(*_model(model)))
    assert reason == "needs feature column 'ssim' that the feature cache lacks"


def test_malformed_sidecar_skips_that_model_in_a_run(tmp_path: Path) -> None:
    features, _ = features_parquet(tmp_path / "f.parquet", rows=200)
    models = timeline_dir(tmp_path / "models", 3, None, weights=default_weights(6))
    sidecar_json(models[1], "adm2")  # "features" must be a list
    entries = from_arguments([str(tmp_path / "models")])
    report = run(entries, features, RunOptions(gates=(GateSpec("plcc", "min", 0.5),), scan=True))
    steps = {step.index: step for step in report.steps}
    assert steps[1].status is Status.SKIP
    assert steps[1].reason.startswith('sidecar "features" is not a non-empty list')
    assert steps[0].status is steps[2].status is Status.GOOD
    assert report.evaluations == 2


def test_wrong_output_size_is_skipped(tmp_path: Path, table: FeatureTable) -> None:
    model = linear_model(tmp_path / "m.onnx", [[w, w] for w in WEIGHTS])  # type: ignore[misc]
    reason = _skipped(Evaluator(table).predict(*_model(model)))
    assert reason.startswith("wrong output size: output 'score' has shape [300, 2]")


def test_evaluator_works_on_timeline_entries(tmp_path: Path, table: FeatureTable) -> None:
    linear_model(tmp_path / "model_1.onnx", default_weights(6))
    invalid_model(tmp_path / "model_2.onnx")
    entries = from_arguments([str(tmp_path)])
    results = [Evaluator(table).predict(e, columns_for(e.path)) for e in entries]
    assert [r.ok for r in results] == [True, False]
