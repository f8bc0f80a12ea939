"""Run one model of the timeline with ONNX Runtime on the feature cache.

An untestable model is a *skip with a reason* (like ``git bisect skip``), never an exception:
the model files are whatever people shipped, and one broken checkpoint must not stop a bisect.
Model files are also untrusted: external-data locations are checked before ONNX Runtime opens
anything, so a model cannot make us read files outside its own folder.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import first_line
from .onnxfile import external_data_locations, unsafe_location_reason

if TYPE_CHECKING:
    from .features import FeatureTable
    from .timeline import TimelineEntry

__all__ = ["DEFAULT_BATCH_ROWS", "Evaluation", "Evaluator"]

# Rows per InferenceSession.run: large enough that per-call overhead vanishes on 1M rows,
# small enough that a model's intermediate tensors stay a fraction of the feature matrix.
DEFAULT_BATCH_ROWS = 1 << 18
_LOG_ERRORS_ONLY = 3  # ORT severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal
_FLOAT_INPUTS = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
}


@dataclass(frozen=True, eq=False)
class Evaluation:
    """One model's predictions on every row of the cache, or why there are none."""

    ok: bool
    predictions: np.ndarray | None  # float64 [rows] when ok
    reason: str  # why the model was skipped; "" when ok
    seconds: float


class _Skip(Exception):
    """Internal: stop evaluating this model, with the reason the report will show."""


class Evaluator:
    """Predicts every row of one feature table with any model of a timeline.

    Holds no per-model state, so ``predict`` may be called from several threads at once
    (one InferenceSession per call; the feature subsets are shared read-only).
    """

    def __init__(
        self,
        features: FeatureTable,
        *,
        input_name: str | None = None,
        threads: int | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> None:
        if batch_rows < 1:
            raise ValueError("batch_rows must be positive")
        self.features = features
        self.input_name = input_name
        self.threads = threads
        self.batch_rows = batch_rows

    def predict(self, entry: TimelineEntry, columns: Sequence[str]) -> Evaluation:
        """Evaluate one model on ``columns`` (what its sidecar names, read once by the caller);
        a model problem is returned as ``ok=False`` with a reason."""
        start = time.perf_counter()
        try:
            predictions = self._predict(Path(entry.path), tuple(columns))
        except _Skip as skip:
            return Evaluation(False, None, str(skip), time.perf_counter() - start)
        except Exception as exc:  # any other failure still belongs to this model alone
            reason = f"evaluation failed ({exc.__class__.__name__}: {first_line(exc)})"
            return Evaluation(False, None, reason, time.perf_counter() - start)
        return Evaluation(True, predictions, "", time.perf_counter() - start)

    def _predict(self, path: Path, columns: tuple[str, ...]) -> np.ndarray:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise _Skip(f"model file not found: {path}") from None
        except OSError as exc:
            raise _Skip(f"unreadable model file ({exc.__class__.__name__}: {path})") from None
        lacking = [name for name in columns if name not in self.features.names]
        if lacking:
            raise _Skip(
                f"needs feature column{'s' if len(lacking) > 1 else ''} "
                f"{', '.join(map(repr, lacking))} that the feature cache lacks"
            )
        matrix = self.features.columns(columns)
        try:  # parses only bytes that could name external data; ORT judges the rest
            locations = external_data_locations(data)
        except Exception as exc:  # protobuf DecodeError and friends
            raise _Skip(f"invalid ONNX ({first_line(exc)})") from None
        for location in locations:
            reason = unsafe_location_reason(location, path.parent)
            if reason is not None:
                raise _Skip(reason)
        for location in locations:
            if not (path.parent / location).is_file():
                raise _Skip(f"missing external-data file {location!r} beside {path.name}")
        session = self._session(path, None if locations else data)
        feed_name, dtype, batch = self._choose_input(session, len(columns))
        output = session.get_outputs()[0].name
        return self._run(session, feed_name, output, matrix.astype(dtype, copy=False), batch)

    def _session(self, path: Path, data: bytes | None) -> Any:
        import onnxruntime as ort  # here, not at the top: a fully cached rerun never needs it

        options = ort.SessionOptions()
        options.log_severity_level = _LOG_ERRORS_ONLY
        # The arena would keep each session's peak batch buffers for the life of the process;
        # one session per model makes that pure overhead.
        options.enable_cpu_mem_arena = False
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        try:
            # From bytes when self-contained (what we checked is what runs); from the path when
            # ORT must find external data beside it.
            return ort.InferenceSession(
                data if data is not None else str(path),
                sess_options=options,
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:
            raise _Skip(f"ONNX Runtime cannot load the model ({first_line(exc)})") from None

    def _choose_input(self, session: Any, n_columns: int) -> tuple[str, Any, int | None]:
        inputs = list(session.get_inputs())
        names = ", ".join(repr(i.name) for i in inputs) or "none"

        def fits(arg: Any) -> bool:
            return arg.type in _FLOAT_INPUTS and len(arg.shape) == 2

        if self.input_name is not None:
            chosen = [i for i in inputs if i.name == self.input_name]
            if not chosen:
                raise _Skip(f"model has no input {self.input_name!r} (its inputs: {names})")
            if not fits(chosen[0]):
                raise _Skip(
                    f"input {self.input_name!r} is {chosen[0].type} {chosen[0].shape}, "
                    "not a float [N, F] tensor"
                )
        else:
            chosen = [i for i in inputs if fits(i)]
            if not chosen:
                raise _Skip(f"no float input of shape [N, F] (its inputs: {names})")
            if len(chosen) > 1:
                raise _Skip(
                    f"several float [N, F] inputs ({', '.join(repr(i.name) for i in chosen)}): "
                    "pass --input-name"
                )
        arg = chosen[0]
        for other in inputs:
            if other.name != arg.name:
                raise _Skip(f"needs input {other.name!r} that the feature cache cannot feed")
        rows_dim, width = arg.shape
        if isinstance(width, int) and width != n_columns:
            raise _Skip(
                f"feature-count mismatch: model wants {width} features, the cache gives {n_columns}"
            )
        batch = rows_dim if isinstance(rows_dim, int) and rows_dim > 0 else None
        return arg.name, _FLOAT_INPUTS[arg.type], batch

    def _run(
        self, session: Any, feed: str, output: str, matrix: np.ndarray, fixed: int | None
    ) -> np.ndarray:
        rows = matrix.shape[0]
        step = fixed if fixed is not None else min(self.batch_rows, rows)
        predictions = np.empty(rows, dtype=np.float64)
        for begin in range(0, rows, step):
            chunk = matrix[begin : begin + step]
            n = chunk.shape[0]
            if fixed is not None and n < fixed:  # a fixed batch dimension: pad the tail
                pad = np.zeros((fixed - n, chunk.shape[1]), dtype=chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            try:
                result = session.run([output], {feed: chunk})[0]
            except Exception as exc:
                raise _Skip(f"ONNX Runtime failed running the model ({first_line(exc)})") from None
            values = np.asarray(result)
            expected = chunk.shape[0]
            if values.dtype.kind not in "fiub":
                raise _Skip(f"output {output!r} is {values.dtype}, not numeric")
            if values.size != expected or (values.ndim > 1 and max(values.shape) != expected):
                raise _Skip(
                    f"wrong output size: output {output!r} has shape {list(values.shape)} for "
                    f"{expected} rows, expected [N] or [N, 1]"
                )
            predictions[begin : begin + n] = values.reshape(-1)[:n]
        bad = int(np.count_nonzero(~np.isfinite(predictions)))
        if bad:
            raise _Skip(f"non-finite predictions: {bad} of {rows} rows are NaN or infinite")
        return predictions
