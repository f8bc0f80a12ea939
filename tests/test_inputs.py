"""Model inputs described, not guessed: codec-aware two-input regressors fed per their sidecar
or the timeline file, checked against feeding the same real ONNX model by hand."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from model_bisect.engine import RunOptions, run
from model_bisect.errors import InputError
from model_bisect.evaluation.cache import EvalCache
from model_bisect.evaluation.features import CANONICAL_FEATURES, load_features
from model_bisect.evaluation.inputs import (
    InputDescription,
    default_description,
    from_sidecar,
    from_sidecar_data,
    from_timeline_table,
    parse_spec,
)
from model_bisect.evaluation.runner import Evaluator
from model_bisect.exitcodes import ExitCode
from model_bisect.report import GateSpec, Report, Status, Step
from model_bisect.timeline.arguments import from_arguments
from model_bisect.timeline.entry import TimelineEntry
from model_bisect.timeline.file import from_file
from tests.clirun import call_main
from tests.modelkit import (
    CODEC_ENCODERS,
    CODEC_LAYOUT,
    baked_scaler_model,
    codec_features_parquet,
    codec_regressor,
    default_weights,
    features_parquet,
    linear_model,
    published_sidecar,
)

GATES = (GateSpec("plcc", "min", 0.5),)
ORDER = list(CANONICAL_FEATURES)


# --- the independent computation: read the parquet, build the inputs, run ORT, scipy ----------


def _columns(parquet: Path) -> dict[str, list[Any]]:
    data: dict[str, list[Any]] = pq.read_table(parquet).to_pydict()
    return data


def _standardised(
    cols: dict[str, list[Any]], order: Sequence[str], mean: Sequence[float], std: Sequence[float]
) -> np.ndarray:
    x = np.column_stack([np.asarray(cols[name], dtype=np.float32) for name in order])
    return (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)


def _block(cols: dict[str, list[Any]], layout: Sequence[str]) -> np.ndarray:
    """The codec block built by hand, entry by entry, row by row."""
    rows = len(cols["mos"])
    listed = {spec[len("encoder_onehot[") : -1] for spec in layout if spec.startswith("encoder_")}
    block = np.zeros((rows, len(layout)), dtype=np.float32)
    for j, spec in enumerate(layout):
        if spec.startswith("encoder_onehot["):
            value = spec[len("encoder_onehot[") : -1]
            for i, encoder in enumerate(cols["encoder"]):
                if encoder == value or (value == "unknown" and encoder not in listed):
                    block[i, j] = 1.0
        else:
            block[:, j] = np.asarray(cols[spec], dtype=np.float32)
    return block


def _by_hand(model: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, feeds)[0], dtype=np.float64).reshape(-1)


def _metrics(predictions: np.ndarray, target: Sequence[float]) -> dict[str, float]:
    y = np.asarray(target, dtype=np.float64)
    return {
        "plcc": float(stats.pearsonr(predictions, y)[0]),
        "srocc": float(stats.spearmanr(predictions, y)[0]),
        "krocc": float(stats.kendalltau(predictions, y)[0]),
        "rmse": float(np.sqrt(np.mean((predictions - y) ** 2))),
    }


def _assert_metrics(step: Step, expected: dict[str, float]) -> None:
    assert step.metrics is not None, step.reason
    for name, value in expected.items():
        assert step.metrics.value(name) == pytest.approx(value, rel=1e-9, abs=1e-12), name


def _steps(report: Report) -> dict[int, Step]:
    return {step.index: step for step in report.steps}


def _scan(entries: list[TimelineEntry], parquet: Path, **options: Any) -> Report:
    return run(entries, parquet, RunOptions(gates=GATES, scan=True, **options))


@pytest.fixture
def codec(tmp_path: Path) -> tuple[Path, list[float], list[float]]:
    """Features with a string encoder column, and the scaler a trainer would publish."""
    return codec_features_parquet(tmp_path / "features.parquet", rows=400, seed=5)


def _regressor_with_sidecar(folder: Path, name: str, mean: list[float], std: list[float]) -> Path:
    """fr_regressor_v2-shaped: two inputs, the scaler and the layout in the sidecar."""
    model = codec_regressor(folder / f"{name}.onnx")
    published_sidecar(
        model,
        input_names=["features", "codec"],
        feature_order=ORDER,
        feature_mean=mean,
        feature_std=std,
        codec_block_layout=list(CODEC_LAYOUT),
        encoder_vocab=list(CODEC_ENCODERS),
    )
    return model


# --- the published sidecar format -----------------------------------------------------------


def test_two_input_model_with_a_published_sidecar_scores_as_fed_by_hand(
    tmp_path: Path, codec: tuple[Path, list[float], list[float]]
) -> None:
    parquet, mean, std = codec
    models = [
        _regressor_with_sidecar(tmp_path / "models", f"fr_regressor_v{i}", mean, std)
        for i in (2, 3)
    ]
    out = tmp_path / "report.json"
    ran = call_main(
        "model_bisect",
        *("run", *models, "--features", parquet, "--min-plcc", "0.5", "--scan"),
        *("--json", out, "--quiet"),
    )
    assert ran.code == ExitCode.OK, ran.err
    report = Report.from_json(json.loads(out.read_text()))
    cols = _columns(parquet)
    expected = _metrics(
        _by_hand(
            models[0],
            {
                "features": _standardised(cols, ORDER, mean, std),
                "codec": _block(cols, CODEC_LAYOUT),
            },
        ),
        cols["mos"],
    )
    assert expected["plcc"] > 0.95  # fed as described, the model is good...
    for step in report.steps:
        assert step.status is Status.GOOD
        _assert_metrics(step, expected)
    assert report.features.columns == ("adm2", *ORDER[1:], "preset_norm", "crf_norm")


def test_standardising_per_the_sidecar_is_what_turns_a_false_bad_into_good(
    tmp_path: Path, codec: tuple[Path, list[float], list[float]]
) -> None:
    parquet, mean, std = codec
    cols = _columns(parquet)
    raw = np.column_stack([np.asarray(cols[n], dtype=np.float32) for n in ORDER])
    model = _regressor_with_sidecar(tmp_path, "m", mean, std)
    unscaled = _metrics(
        _by_hand(model, {"features": raw, "codec": _block(cols, CODEC_LAYOUT)}), cols["mos"]
    )
    entries = from_arguments([str(model), str(model)])
    step = _steps(_scan(entries, parquet))[0]
    assert step.metrics is not None
    assert unscaled["plcc"] < 0.85 < step.metrics.value("plcc")


def test_reversing_feature_order_in_the_sidecar_changes_the_metrics(
    tmp_path: Path, codec: tuple[Path, list[float], list[float]]
) -> None:
    parquet, mean, std = codec
    straight = _regressor_with_sidecar(tmp_path / "a", "m", mean, std)
    reversed_ = _regressor_with_sidecar(tmp_path / "b", "m", mean, std)
    published_sidecar(
        reversed_,
        input_names=["features", "codec"],
        feature_order=ORDER[::-1],
        feature_mean=mean[::-1],
        feature_std=std[::-1],
        codec_block_layout=list(CODEC_LAYOUT),
    )
    steps = _steps(_scan(from_arguments([str(straight), str(reversed_)]), parquet))
    cols = _columns(parquet)
    block = _block(cols, CODEC_LAYOUT)
    feeds = {"features": _standardised(cols, ORDER[::-1], mean[::-1], std[::-1]), "codec": block}
    _assert_metrics(steps[1], _metrics(_by_hand(reversed_, feeds), cols["mos"]))
    assert steps[0].metrics is not None
    assert steps[1].metrics is not None
    assert steps[1].metrics.value("plcc") < steps[0].metrics.value("plcc") - 0.1


def test_input_mean_and_std_describe_a_scaler_baked_into_the_graph_and_are_not_applied(
    tmp_path: Path, codec: tuple[Path, list[float], list[float]]
) -> None:
    parquet, mean, std = codec
    weights = [0.9, 0.5, 0.35, 0.25, 0.15, -0.3]
    model = baked_scaler_model(tmp_path / "vmaf_tiny_v3.onnx", weights, mean, std)
    published_sidecar(model, features=ORDER, input_mean=mean, input_std=std)
    assert from_sidecar(model).inputs == default_description(ORDER).inputs  # nothing to apply
    step = _steps(_scan(from_arguments([str(model), str(model)]), parquet))[0]
    cols = _columns(parquet)
    raw = np.column_stack([np.asarray(cols[n], dtype=np.float32) for n in ORDER])
    _assert_metrics(step, _metrics(_by_hand(model, {"input": raw}), cols["mos"]))
    twice = _metrics(_by_hand(model, {"input": _standardised(cols, ORDER, mean, std)}), cols["mos"])
    assert step.metrics is not None
    assert step.metrics.value("rmse") != pytest.approx(twice["rmse"], rel=1e-3)


def test_sidecar_without_input_names_binds_the_inputs_by_position(
    tmp_path: Path, codec: tuple[Path, list[float], list[float]]
) -> None:
    parquet, mean, std = codec
    model = codec_regressor(tmp_path / "m.onnx", input_names=("x", "c"))
    published_sidecar(
        model,
        feature_order=ORDER,
        feature_mean=mean,
        feature_std=std,
        codec_block_layout=list(CODEC_LAYOUT),
    )
    step = _steps(_scan(from_arguments([str(model), str(model)]), parquet))[0]
    cols = _columns(parquet)
    feeds = {"x": _standardised(cols, ORDER, mean, std), "c": _block(cols, CODEC_LAYOUT)}
    _assert_metrics(step, _metrics(_by_hand(model, feeds), cols["mos"]))


def test_double_inputs_are_fed_as_float64(
    tmp_path: Path, codec: tuple[Path, list[float], list[float]]
) -> None:
    parquet, mean, std = codec
    model = codec_regressor(tmp_path / "m.onnx", elem_type="double")
    published_sidecar(
        model,
        input_names=["features", "codec"],
        feature_order=ORDER,
        feature_mean=mean,
        feature_std=std,
        codec_block_layout=list(CODEC_LAYOUT),
    )
    table = load_features(parquet, [*ORDER, "preset_norm", "crf_norm"], strings=["encoder"])
    result = Evaluator(table).predict(TimelineEntry(0, "m", model, None), from_sidecar(model))
    assert result.ok, result.reason
    cols = _columns(parquet)
    feeds = {
        "features": _standardised(cols, ORDER, mean, std).astype(np.float64),
        "codec": _block(cols, CODEC_LAYOUT).astype(np.float64),
    }
    assert result.predictions is not None
    assert result.predictions.dtype == np.float64  # a double output keeps its precision
    np.testing.assert_array_equal(result.predictions, _by_hand(model, feeds))


# --- one-hot values outside the layout ------------------------------------------------------


def test_an_unknown_encoder_goes_to_the_unknown_slot_and_is_counted(tmp_path: Path) -> None:
    parquet, mean, std = codec_features_parquet(
        tmp_path / "f.parquet", rows=300, seed=2, encoders=["libx264", "libx265", "rav1e"]
    )
    cols = _columns(parquet)
    strangers = sum(1 for e in cols["encoder"] if e == "rav1e")
    assert 50 < strangers < 150
    model = _regressor_with_sidecar(tmp_path, "m", mean, std)
    entries = from_arguments([str(model), str(model)])
    report = _scan(entries, parquet)
    step = _steps(report)[0]
    feeds = {"features": _standardised(cols, ORDER, mean, std), "codec": _block(cols, CODEC_LAYOUT)}
    assert feeds["codec"][:, CODEC_LAYOUT.index("encoder_onehot[unknown]")].sum() == strangers
    _assert_metrics(step, _metrics(_by_hand(model, feeds), cols["mos"]))
    assert step.unknown_rows == strangers
    assert step.reason.endswith(
        f"; {strangers} rows have a value outside the one-hot layout: "
        "encoder (fed as encoder_onehot[unknown])"
    )
    assert step.to_json()["unknown_rows"] == strangers
    assert Step.from_json(step.to_json()) == step


def test_without_an_unknown_slot_an_unlisted_encoder_is_all_zeros_and_still_counted(
    tmp_path: Path,
) -> None:
    parquet, mean, std = codec_features_parquet(
        tmp_path / "f.parquet", rows=300, seed=2, encoders=["libx264", "rav1e"]
    )
    layout = [spec for spec in CODEC_LAYOUT if spec != "encoder_onehot[unknown]"]
    model = codec_regressor(tmp_path / "m.onnx", block_weights=[0.1] * len(layout))
    published_sidecar(
        model,
        input_names=["features", "codec"],
        feature_order=ORDER,
        feature_mean=mean,
        feature_std=std,
        codec_block_layout=layout,
    )
    table = load_features(parquet, [*ORDER, "preset_norm", "crf_norm"], strings=["encoder"])
    result = Evaluator(table).predict(TimelineEntry(0, "m", model, None), from_sidecar(model))
    cols = _columns(parquet)
    strangers = cols["encoder"].count("rav1e")
    block = _block(cols, layout)
    assert block[np.asarray(cols["encoder"]) == "rav1e", : len(CODEC_ENCODERS)].sum() == 0
    feeds = {"features": _standardised(cols, ORDER, mean, std), "codec": block}
    np.testing.assert_array_equal(result.predictions, _by_hand(model, feeds))
    assert result.unknown_rows == strangers
    assert result.note.endswith("encoder (fed as all zeros)")


def test_a_model_without_one_hot_inputs_reports_no_unknown_rows(tmp_path: Path) -> None:
    parquet, _ = features_parquet(tmp_path / "f.parquet", rows=100)
    models = [linear_model(tmp_path / f"m{i}.onnx", default_weights(6)) for i in range(2)]
    report = _scan(from_arguments([str(m) for m in models]), parquet)
    assert all(step.unknown_rows == 0 for step in report.steps)
    assert not any("one-hot" in step.reason for step in report.steps)
    assert "unknown_rows" not in report.steps[0].to_json()


# --- what the cache cannot feed is a skip naming it -----------------------------------------


def test_a_missing_encoder_column_skips_the_model_naming_it(tmp_path: Path) -> None:
    parquet, mean, std = codec_features_parquet(tmp_path / "f.parquet", with_encoder=False)
    plain = [linear_model(tmp_path / f"plain{i}.onnx", default_weights(6)) for i in range(2)]
    codec_model = _regressor_with_sidecar(tmp_path, "codec", mean, std)
    report = _scan(from_arguments([str(plain[0]), str(codec_model), str(plain[1])]), parquet)
    steps = _steps(report)
    assert steps[1].status is Status.SKIP
    assert steps[1].reason == "needs feature column 'encoder' that the feature cache lacks"
    assert steps[0].metrics is not None
    assert steps[2].metrics is not None


def test_when_no_model_can_be_fed_the_missing_column_is_an_input_error(tmp_path: Path) -> None:
    parquet, mean, std = codec_features_parquet(tmp_path / "f.parquet", with_encoder=False)
    models = [_regressor_with_sidecar(tmp_path, f"m{i}", mean, std) for i in range(2)]
    ran = call_main(
        "model_bisect", "run", *models, "--features", parquet, "--min-plcc", "0.5", "--quiet"
    )
    assert ran.code == ExitCode.INPUT
    assert ran.err == (
        f"error: missing feature column encoder in {parquet}: the file has "
        "adm2, vif_scale0, vif_scale1, vif_scale2, vif_scale3, motion2, preset_norm, crf_norm, "
        "mos; add the columns or list the model's in a sidecar JSON\n"
    )


def test_sidecar_naming_an_input_without_columns_skips_naming_the_input(
    tmp_path: Path, codec: tuple[Path, list[float], list[float]]
) -> None:
    parquet, mean, std = codec
    good = _regressor_with_sidecar(tmp_path, "good", mean, std)
    model = codec_regressor(tmp_path / "m.onnx")
    published_sidecar(model, input_names=["features", "codec"], feature_order=ORDER)
    steps = _steps(_scan(from_arguments([str(good), str(model)]), parquet))
    assert steps[1].status is Status.SKIP
    assert steps[1].reason.startswith("sidecar names input 'codec' but gives no columns for it")


def test_a_graph_input_the_description_does_not_feed_is_a_skip_naming_it(
    tmp_path: Path, codec: tuple[Path, list[float], list[float]]
) -> None:
    parquet, _, _ = codec
    model = codec_regressor(tmp_path / "m.onnx", input_names=("features", "codec"))
    described = from_timeline_table({"features": ORDER}, "t.toml", 1)
    table = load_features(parquet, ORDER)
    result = Evaluator(table).predict(TimelineEntry(0, "m", model, None), described)
    assert result.reason == (
        "graph input 'codec' is not fed: the timeline entry's inputs table (and the sidecar)"
        " does not describe it; name it in the sidecar's input_names or in the timeline file's"
        " inputs table"
    )
    wrong = from_timeline_table({"features": ORDER, "block": ["adm2"]}, "t.toml", 1)
    result = Evaluator(table).predict(TimelineEntry(0, "m", model, None), wrong)
    assert result.reason == "model has no input 'block' (its inputs: 'features', 'codec')"


def _timeline_of(folder: Path, models: Sequence[Path], inputs: str) -> list[TimelineEntry]:
    return from_file(_timeline(folder, models, inputs))


def test_a_partial_inputs_table_keeps_the_sidecars_other_input_and_its_scaler(
    tmp_path: Path, codec: tuple[Path, list[float], list[float]]
) -> None:
    parquet, mean, std = codec
    models = [_regressor_with_sidecar(tmp_path, f"m{i}", mean, std) for i in range(2)]
    # Only the codec block is overridden (its last two columns swapped): features, and the
    # sidecar's scaler on them, are kept.
    layout = [*CODEC_LAYOUT[:-2], CODEC_LAYOUT[-1], CODEC_LAYOUT[-2]]
    entries = _timeline_of(tmp_path, models, f"codec = {json.dumps(layout)}")
    steps = _steps(_scan(entries, parquet))
    cols = _columns(parquet)
    feeds = {"features": _standardised(cols, ORDER, mean, std), "codec": _block(cols, layout)}
    _assert_metrics(steps[0], _metrics(_by_hand(models[0], feeds), cols["mos"]))


def test_an_input_overridden_with_the_same_columns_keeps_the_sidecars_scaler(
    tmp_path: Path, codec: tuple[Path, list[float], list[float]]
) -> None:
    parquet, mean, std = codec
    models = [_regressor_with_sidecar(tmp_path, f"m{i}", mean, std) for i in range(2)]
    entries = _timeline_of(tmp_path, models, f"features = {json.dumps(list(ORDER))}")
    steps = _steps(_scan(entries, parquet))
    cols = _columns(parquet)
    feeds = {
        "features": _standardised(cols, ORDER, mean, std),
        "codec": _block(cols, CODEC_LAYOUT),
    }
    _assert_metrics(steps[0], _metrics(_by_hand(models[0], feeds), cols["mos"]))


def test_new_columns_for_a_standardised_input_without_a_scaler_are_refused(
    tmp_path: Path, codec: tuple[Path, list[float], list[float]]
) -> None:
    parquet, mean, std = codec
    model = _regressor_with_sidecar(tmp_path, "m", mean, std)
    linear_model(tmp_path / "plain.onnx", default_weights(6))
    timeline = tmp_path / "timeline.toml"
    timeline.write_text(
        f'[[models]]\npath = "{model.name}"\n[models.inputs]\n'
        f"features = {json.dumps(list(ORDER[::-1]))}\n\n"
        '[[models]]\npath = "plain.onnx"\n',
        encoding="utf-8",
    )
    steps = _steps(_scan(from_file(timeline), parquet))
    assert steps[0].status is Status.SKIP
    assert "changes the columns of input 'features', which the sidecar standardises" in (
        steps[0].reason
    )
    assert "add standardize = { mean = [...], std = [...] } to input 'features'" in (
        steps[0].reason
    )


def test_a_block_of_the_wrong_width_is_a_skip_naming_the_input(
    tmp_path: Path, codec: tuple[Path, list[float], list[float]]
) -> None:
    parquet, _, _ = codec
    model = codec_regressor(tmp_path / "m.onnx")
    described = from_timeline_table(
        {"features": ORDER, "codec": ["encoder_onehot[libx264]", "crf_norm"]}, "t.toml", 1
    )
    table = load_features(parquet, [*ORDER, "crf_norm"], strings=["encoder"])
    result = Evaluator(table).predict(TimelineEntry(0, "m", model, None), described)
    assert result.reason == (
        "column-count mismatch on input 'codec': model wants 14, the description gives 2"
    )


# --- the timeline file's inputs table -------------------------------------------------------


def _timeline(folder: Path, models: Sequence[Path], inputs: str) -> Path:
    lines = []
    for model in models:
        lines += ["[[models]]", f'path = "{model.name}"', "[models.inputs]", inputs, ""]
    path = folder / "timeline.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _inputs_toml(order: Sequence[str], mean: Sequence[float], std: Sequence[float]) -> str:
    return (
        f"features = {{ columns = {json.dumps(list(order))}, "
        f"standardize = {{ mean = {json.dumps(list(mean))}, std = {json.dumps(list(std))} }} }}\n"
        f"codec = {json.dumps(list(CODEC_LAYOUT))}"
    )


def test_the_timeline_inputs_table_overrides_the_sidecar(
    tmp_path: Path, codec: tuple[Path, list[float], list[float]]
) -> None:
    parquet, mean, std = codec
    models = [codec_regressor(tmp_path / f"m{i}.onnx") for i in range(2)]
    for model in models:  # a stale sidecar: wrong order, no scaler
        published_sidecar(
            model,
            input_names=["features", "codec"],
            feature_order=ORDER[::-1],
            codec_block_layout=list(CODEC_LAYOUT),
        )
    timeline = _timeline(tmp_path, models, _inputs_toml(ORDER, mean, std))
    entries = from_file(timeline)
    assert entries[0].inputs is not None
    assert entries[0].inputs.source == "timeline"
    steps = _steps(_scan(entries, parquet))
    cols = _columns(parquet)
    feeds = {"features": _standardised(cols, ORDER, mean, std), "codec": _block(cols, CODEC_LAYOUT)}
    _assert_metrics(steps[0], _metrics(_by_hand(models[0], feeds), cols["mos"]))


@pytest.mark.parametrize(
    ("inputs", "problem"),
    [
        ("features = []", "entry 1 input 'features' columns is not a non-empty list"),
        ('features = ["adm2", "adm2"]', "repeats 'adm2'"),
        ('features = ["encoder_onehot[]"]', "one-hot spec 'encoder_onehot[]' has an empty value"),
        (
            'features = { columns = ["adm2"], standardize = { mean = [0.1] } }',
            "standardize is not a table of exactly mean and std",
        ),
        (
            'features = { columns = ["adm2", "motion2"], standardize = { mean = [0, 1], '
            "std = [1] } }",
            "standardize.std has 1 values for 2 columns",
        ),
        (
            'features = { columns = ["adm2"], standardize = { mean = [0], std = [0] } }',
            "standardize.std is zero or negative at position 0",
        ),
        (
            'features = { columns = ["adm2"], standardize = { mean = [1e39], std = [1] } }',
            "not a finite float32",
        ),
        ('features = { cols = ["adm2"] }', "unknown key 'cols'"),
    ],
)
def test_a_malformed_inputs_table_is_a_one_line_input_error(
    tmp_path: Path, inputs: str, problem: str
) -> None:
    model = linear_model(tmp_path / "m.onnx", default_weights(6))
    timeline = _timeline(tmp_path, [model, model], inputs)
    with pytest.raises(InputError) as caught:
        from_file(timeline)
    message = str(caught.value)
    assert problem in message
    assert str(timeline) in message
    assert "\n" not in message
    parquet, _ = features_parquet(tmp_path / "f.parquet", rows=50)
    ran = call_main(
        "model_bisect", "run", "--timeline", timeline, "--features", parquet, "--min-plcc", "0.5"
    )
    assert ran.code == ExitCode.INPUT
    assert ran.err == f"error: {message}\n"


def test_the_json_timeline_takes_the_same_inputs_table(tmp_path: Path) -> None:
    linear_model(tmp_path / "m.onnx", [1.0, 2.0])
    entry = {"path": "m.onnx", "inputs": {"x": {"columns": ["adm2", "motion2"]}}}
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"models": [entry, entry]}), encoding="utf-8")
    described = from_file(path)[0].inputs
    assert described is not None
    assert [(i.name, [c.text for c in i.columns]) for i in described.inputs] == [
        ("x", ["adm2", "motion2"])
    ]


# --- the evaluation cache keys on the whole description -------------------------------------


def test_changing_only_feature_mean_in_a_sidecar_misses_the_cache_and_changes_the_metrics(
    tmp_path: Path, codec: tuple[Path, list[float], list[float]]
) -> None:
    parquet, mean, std = codec
    models = [_regressor_with_sidecar(tmp_path, f"m{i}", mean, std) for i in range(2)]
    cache = EvalCache(tmp_path / "cache")
    first = _scan(from_arguments([str(m) for m in models]), parquet, cache=cache)
    again = _scan(from_arguments([str(m) for m in models]), parquet, cache=cache)
    assert again.evaluations == 0
    assert all(s.cached for s in again.steps)
    shifted = [m + 0.05 for m in mean]
    published_sidecar(
        models[1],
        input_names=["features", "codec"],
        feature_order=ORDER,
        feature_mean=shifted,
        feature_std=std,
        codec_block_layout=list(CODEC_LAYOUT),
        encoder_vocab=list(CODEC_ENCODERS),
    )
    changed = _scan(from_arguments([str(m) for m in models]), parquet, cache=cache)
    steps = _steps(changed)
    assert steps[0].cached
    assert not steps[1].cached
    assert changed.evaluations == 1
    assert steps[1].metrics is not None
    assert _steps(first)[1].metrics is not None
    assert steps[1].metrics.value("rmse") != _steps(first)[1].metrics.value("rmse")


def test_changing_only_the_timeline_scaler_misses_the_cache(
    tmp_path: Path, codec: tuple[Path, list[float], list[float]]
) -> None:
    # The timeline file is not part of the model's content hash: only the key's description
    # can tell these runs apart.
    parquet, mean, std = codec
    models = [codec_regressor(tmp_path / f"m{i}.onnx") for i in range(2)]
    cache = EvalCache(tmp_path / "cache")
    timeline = _timeline(tmp_path, models, _inputs_toml(ORDER, mean, std))
    before = _scan(from_file(timeline), parquet, cache=cache)
    timeline = _timeline(tmp_path, models, _inputs_toml(ORDER, mean, [s * 2 for s in std]))
    after = _scan(from_file(timeline), parquet, cache=cache)
    assert not any(s.cached for s in after.steps)
    assert after.evaluations == 1  # m0 and m1 have the same bytes and the same description
    assert _steps(after)[0].metrics != _steps(before)[0].metrics


def test_same_bytes_fed_differently_are_evaluated_separately(
    tmp_path: Path, codec: tuple[Path, list[float], list[float]]
) -> None:
    parquet, mean, std = codec
    codec_regressor(tmp_path / "m.onnx")
    body = [
        '[[models]]\npath = "m.onnx"\n[models.inputs]\n' + _inputs_toml(ORDER, mean, std),
        '[[models]]\npath = "m.onnx"\n[models.inputs]\n' + _inputs_toml(ORDER[::-1], mean, std),
    ]
    timeline = tmp_path / "t.toml"
    timeline.write_text("\n\n".join(body), encoding="utf-8")
    report = _scan(from_file(timeline), parquet)
    assert report.evaluations == 2
    steps = _steps(report)
    assert "same bytes" not in steps[1].reason
    assert steps[0].metrics != steps[1].metrics


# --- parsing the description ----------------------------------------------------------------


def test_column_specs_are_numeric_names_or_one_hot_values() -> None:
    assert parse_spec("crf_norm").value is None
    spec = parse_spec("encoder_onehot[libx264]")
    assert (spec.column, spec.value, spec.onehot) == ("encoder", "libx264", True)
    assert parse_spec("codec_name_onehot[a[b]]").value == "a[b]"
    with pytest.raises(ValueError, match="empty value"):
        parse_spec("encoder_onehot[]")


def test_the_scaler_is_float32_exactly_as_given(tmp_path: Path) -> None:
    described = from_sidecar_data(
        {"feature_order": ["adm2"], "feature_mean": [0.1], "feature_std": [3]},
        tmp_path / "m.json",
    )
    first = described.inputs[0]
    assert first.mean == (float(np.float32(0.1)),)
    assert first.mean != (0.1,)
    assert first.std == (3.0,)
    assert described.key()[0]["mean"] == [float(np.float32(0.1))]


def test_sidecar_keys_map_to_inputs_in_order(tmp_path: Path) -> None:
    described = from_sidecar_data(
        {
            "input_names": ["features", "codec_onehot"],
            "feature_order": ORDER,
            "codec_block_layout": ["encoder_onehot[libx264]", "crf_norm"],
            "input_mean": [0.0] * 6,
            "input_std": [1.0] * 6,
        },
        tmp_path / "m.json",
    )
    assert isinstance(described, InputDescription)
    assert described.source == "sidecar"
    assert [i.name for i in described.inputs] == ["features", "codec_onehot"]
    assert described.inputs[0].mean is None  # input_mean documents the graph's own scaler
    assert described.numeric_columns == (*ORDER, "crf_norm")
    assert described.string_columns == ("encoder",)


def test_a_sidecar_without_input_keys_keeps_the_default_rule(tmp_path: Path) -> None:
    described = from_sidecar_data({"version": 3, "input_mean": [0.0]}, tmp_path / "m.json")
    assert described == default_description()


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"feature_order": ORDER, "feature_mean": [0.0] * 6}, '"feature_mean" without its pair'),
        (
            {"feature_order": ORDER, "feature_mean": [0.0] * 5, "feature_std": [1.0] * 6},
            '"feature_mean" has 5 values for 6 columns',
        ),
        (
            {"feature_order": ORDER, "feature_mean": [0.0] * 6, "feature_std": [1.0] * 5 + [0]},
            '"feature_std" is zero or negative at position 5',
        ),
        (
            {"feature_order": ORDER, "feature_mean": ["0"] * 6, "feature_std": [1.0] * 6},
            "not a list of numbers",
        ),
        ({"feature_order": ["adm2"], "features": ["motion2"]}, "disagree"),
        ({"feature_order": "adm2"}, '"feature_order" is not a non-empty list'),
        ({"input_names": ["a", "a"]}, "not a list of distinct input names"),
        (
            {"input_names": ["features"], "codec_block_layout": ["crf_norm"]},
            "describes a second input",
        ),
        ({"codec_block_layout": ["crf_norm", "crf_norm"]}, "repeats 'crf_norm'"),
        ({"codec_block_layout": ["x"], "encoder_vocab": "libx264"}, '"encoder_vocab" is not'),
    ],
)
def test_a_malformed_sidecar_is_an_input_error_naming_the_key(
    tmp_path: Path, data: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InputError) as caught:
        from_sidecar_data(data, tmp_path / "m.json")
    assert problem in str(caught.value)
    assert str(tmp_path / "m.json") in str(caught.value)


# --- the features file's string columns -----------------------------------------------------


def test_string_columns_load_as_codes_with_one_vocabulary_across_row_groups(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f.parquet"
    table = pa.table(
        {
            "adm2": pa.array([0.1, 0.2, float("nan"), 0.4, 0.5], pa.float32()),
            "motion2": pa.array([float("inf"), 1.0, 2.0, 3.0, 4.0], pa.float32()),
            "encoder": pa.array(["x264", None, "x265", "x265", "vvenc"]),
            "mos": pa.array([1.0, 2.0, 3.0, 4.0, 5.0]),
        }
    )
    pq.write_table(table, path, row_group_size=2)
    loaded = load_features(path, ["adm2"], strings=["encoder"])
    # The NaN adm2 row drops; the inf in motion2 (not requested) keeps its row.
    assert loaded.dropped_rows == 1
    column = loaded.strings["encoder"]
    decoded = [None if c < 0 else column.vocabulary[c] for c in column.codes]
    assert decoded == ["x264", None, "x265", "vvenc"]
    assert column.codes.dtype == np.int32
    assert not column.codes.flags.writeable


def test_string_columns_are_read_only_when_asked_for(tmp_path: Path) -> None:
    parquet, _, _ = codec_features_parquet(tmp_path / "f.parquet", rows=50)
    assert load_features(parquet, ORDER).strings == {}


def test_a_numeric_column_used_as_one_hot_is_an_input_error(tmp_path: Path) -> None:
    parquet, _, _ = codec_features_parquet(tmp_path / "f.parquet", rows=50)
    with pytest.raises(InputError, match="column 'crf_norm' is float, not a string column"):
        load_features(parquet, ORDER, strings=["crf_norm"])


def test_allow_missing_leaves_out_absent_columns_and_names_them(tmp_path: Path) -> None:
    parquet, _, _ = codec_features_parquet(tmp_path / "f.parquet", rows=50, with_encoder=False)
    loaded = load_features(parquet, ["adm2", "ssim"], strings=["encoder"], allow_missing=True)
    assert loaded.names == ("adm2",)
    assert loaded.absent == ("ssim", "encoder")
    with pytest.raises(InputError, match="missing feature columns ssim, encoder"):
        load_features(parquet, ["adm2", "ssim"], strings=["encoder"])


def test_unknown_rows_reach_the_markdown_and_the_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # this pins the sentence, not the narrow layout
    parquet, mean, std = codec_features_parquet(
        tmp_path / "f.parquet", rows=200, seed=4, encoders=["libx264", "rav1e"]
    )
    models = [_regressor_with_sidecar(tmp_path, f"m{i}", mean, std) for i in range(2)]
    markdown = tmp_path / "comment.md"
    ran = call_main(
        "model_bisect",
        *("run", *models, "--features", parquet, "--min-plcc", "0.5", "--scan"),
        *("--markdown", markdown),
    )
    assert ran.code == ExitCode.OK, ran.err
    strangers = _columns(parquet)["encoder"].count("rav1e")
    sentence = f"{strangers} rows have a value outside the one-hot layout"
    assert markdown.read_text(encoding="utf-8").count(sentence) == 2
    assert sentence in " ".join(ran.out.split())


def test_an_undescribed_two_input_model_is_skipped_with_a_hint_that_works(
    tmp_path: Path, codec: tuple[Path, list[float], list[float]]
) -> None:
    parquet, mean, std = codec
    model = codec_regressor(tmp_path / "m.onnx")
    table = load_features(parquet, ORDER)
    result = Evaluator(table).predict(TimelineEntry(0, "m", model, None), ORDER)
    assert result.reason == (
        "several float [N, F] inputs ('features', 'codec'): describe them in the sidecar "
        "(input_names, feature_order, codec_block_layout) or the timeline file's inputs table"
    )
    # Following the hint: the same model described in the sidecar is evaluated.
    _regressor_with_sidecar(tmp_path, "m", mean, std)
    step = _steps(_scan(from_arguments([str(model), str(model)]), parquet))[0]
    assert step.status is Status.GOOD
