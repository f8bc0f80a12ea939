"""Run one model of the timeline with ONNX Runtime on a dataset (the feature cache).

An untestable model is a *skip with a reason* (like ``git bisect skip``), never an exception:
the model files are whatever people shipped, and one broken checkpoint must not stop a bisect.
Model files are also untrusted: external-data locations are checked before ONNX Runtime opens
anything, so a model cannot make us read files outside its own folder.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import first_line
from ..files import BoundedReadError, ReadProblem, read_bounded, special_file_kind
from ..safetext import printable, unicode_safe
from .allocator import return_large_blocks
from .inputs import InputDescription, ModelInput, default_description, undescribed
from .onnxfile import (
    MAX_MODEL_BYTES,
    external_data_locations,
    names_no_external_data,
    parse_model,
    unsafe_location_reason,
)

if TYPE_CHECKING:
    from ..timeline.entry import TimelineEntry
    from .dataset import Dataset

__all__ = [
    "BATCH_INPUT_BYTES",
    "DEFAULT_BATCH_ROWS",
    "TENSOR_BATCH_BYTES",
    "Evaluation",
    "Evaluator",
]

# Rows per InferenceSession.run: large enough that per-call overhead vanishes on 1M rows,
# small enough that a model's intermediate tensors stay a fraction of the feature matrix.
DEFAULT_BATCH_ROWS = 1 << 18
# Bytes of input one run of a model with a dynamic batch axis is fed at most: a feature model
# its 262,144 rows a call.
BATCH_INPUT_BYTES = 64 << 20
# The same bound when any input is fed a tensor column. A CNN's activations, not its input,
# set its peak memory: the first Conv of a grey frame holds its channel count times the input
# (8x in the bench's CNN, 537 MB a call at 64 MiB of input). At 1 MiB (64 grey 64x64 frames,
# five 224x224) they stay small, and ONNX Runtime's per-call cost is still negligible beside
# a CNN's per-frame work: measured in docs/performance.md, "Image models".
TENSOR_BATCH_BYTES = 1 << 20
# ORT severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal. Fatal only: ORT's C++ logger
# writes straight to stderr, node names from the model raw (escapes, newlines, forged
# workflow commands); every error it logs also reaches us as an exception, filtered below.
_LOG_FATAL_ONLY = 4
_FLOAT_INPUTS = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
}


def _foreign(exc: BaseException) -> str:
    """ONNX Runtime's message, which quotes the model's node names, made printable."""
    return printable(first_line(exc))


@dataclass(frozen=True, eq=False)
class Evaluation:
    """One model's predictions on every row of the cache, or why there are none."""

    ok: bool
    predictions: np.ndarray | None  # [rows] when ok: float32 from a float32 output, else float64
    reason: str  # why the model was skipped; "" when ok
    seconds: float
    unknown_rows: int = 0  # rows whose one-hot value is outside the layout
    note: str = ""  # the sentence saying so, for the report ("" when none)


def _listed(names: Sequence[str], limit: int = 12) -> str:
    """Quoted names for a one-line skip reason: a sidecar may list thousands."""
    shown = ", ".join(repr(n[:80]) for n in names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def _external_problem(path: Path) -> str | None:
    """Why ONNX Runtime must not open an external-data file ("missing", "a FIFO, ..."), or
    None for a regular file. Checked with ``os.stat`` (symlinks followed) before ORT opens it:
    a FIFO would block the load forever and ``/dev/zero`` never ends."""
    try:
        kind = special_file_kind(os.stat(path))
    except FileNotFoundError:
        return "missing"
    except (OSError, ValueError) as exc:
        return f"unreadable ({exc.__class__.__name__})"
    return None if kind is None else f"{kind}, not a regular file"


_MODEL_READ_PROBLEMS = {
    ReadProblem.MISSING: "model file not found: {shown}",
    ReadProblem.NOT_REGULAR: "model file is {detail}, not a regular file: {shown}",
    ReadProblem.TOO_LARGE: "model file is 2 GiB or larger, beyond what ONNX can parse: {shown}",
    ReadProblem.UNREADABLE: "unreadable model file ({detail}: {shown})",
}


class _Deadline:
    """One model's inference time bound: a timer thread sets ONNX Runtime's
    ``RunOptions.terminate``, which every running and later ``run`` call checks (a ``Loop``
    of 10**12 iterations included), so a model that would never return cannot hang the run.
    Without ``seconds`` it is the default run options and never fires."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.run_options: Any = None
        self._fired = threading.Event()
        self._timer: threading.Timer | None = None

    @property
    def expired(self) -> bool:
        return self._fired.is_set()

    def __enter__(self) -> _Deadline:
        if self.seconds is None:
            return self
        import onnxruntime as ort

        self.run_options = ort.RunOptions()
        self._timer = threading.Timer(self.seconds, self._fire)
        self._timer.daemon = True  # a run that ends first must not wait for the timer
        self._timer.start()
        return self

    def _fire(self) -> None:
        self._fired.set()
        self.run_options.terminate = True

    def __exit__(self, *_: object) -> None:
        if self._timer is not None:
            self._timer.cancel()


class _Skip(Exception):
    """Internal: stop evaluating this model, with the reason the report will show."""


def _parsed(data: bytes) -> Any:
    """The model proto, or a skip when the bytes are not ONNX."""
    try:
        return parse_model(data)
    except Exception as exc:  # protobuf DecodeError and friends
        raise _Skip(f"invalid ONNX ({first_line(exc)})") from None


def _expected(row_shape: tuple[int, ...]) -> str:
    """The graph input shape a dataset's rows fit, as skip reasons say it: ``[N, F]`` for
    feature columns."""
    if len(row_shape) == 1:
        return "[N, F]"
    return "[" + ", ".join(["N", *map(str, row_shape)]) + "]"


def _fits(arg: Any, row_shape: tuple[int, ...]) -> bool:
    """A float graph input with one axis more than a row (the batch axis)."""
    return arg.type in _FLOAT_INPUTS and len(arg.shape) == 1 + len(row_shape)


def _mismatch(arg: Any, row_shape: tuple[int, ...]) -> bool:
    """Whether a fixed axis of the input disagrees with the rows fed (symbolic ones fit)."""
    return any(isinstance(d, int) and d != r for d, r in zip(arg.shape[1:], row_shape, strict=True))


def _fixed_batch(arg: Any) -> int | None:
    rows_dim = arg.shape[0]
    return rows_dim if isinstance(rows_dim, int) and rows_dim > 0 else None


class Evaluator:
    """Predicts every row of one dataset with any model of a timeline.

    Holds no per-model state, so ``predict`` may be called from several threads at once
    (one InferenceSession per call; the dataset is shared read-only).
    """

    def __init__(
        self,
        data: Dataset,
        *,
        input_name: str | None = None,
        threads: int | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        spin: bool = True,
        timeout: float | None = None,
    ) -> None:
        if batch_rows < 1:
            raise ValueError("batch_rows must be positive")
        if timeout is not None and not timeout > 0:
            raise ValueError("timeout must be positive")
        self.timeout = timeout  # seconds of inference per model; None: no bound
        return_large_blocks(data.fed_rows)  # one model's freed batches not kept for the next
        self.data = data
        self.spin = spin
        self.input_name = input_name
        self.threads = threads
        self.batch_rows = batch_rows

    def predict(self, entry: TimelineEntry, inputs: InputDescription | Sequence[str]) -> Evaluation:
        """Evaluate one model fed as ``inputs`` describes (read once by the caller; a plain
        column list is the single-input rule); a model problem is returned as ``ok=False``
        with a reason."""
        start = time.perf_counter()
        if not isinstance(inputs, InputDescription):
            inputs = default_description(tuple(inputs))
        try:
            predictions = self._predict(Path(entry.path), inputs)
        except _Skip as skip:
            return Evaluation(False, None, str(skip), time.perf_counter() - start)
        except Exception as exc:  # any other failure still belongs to this model alone
            reason = f"evaluation failed ({exc.__class__.__name__}: {first_line(exc)})"
            return Evaluation(False, None, reason, time.perf_counter() - start)
        unknown = self.data.unknown_rows(inputs)
        seconds = time.perf_counter() - start
        return Evaluation(True, predictions, "", seconds, unknown.count, unknown.note)

    def _predict(self, path: Path, description: InputDescription) -> np.ndarray:
        shown = unicode_safe(str(path))
        try:
            data = read_bounded(path, MAX_MODEL_BYTES)
        except BoundedReadError as exc:
            raise _Skip(exc.worded(_MODEL_READ_PROBLEMS, shown=shown)) from None
        lacking = self.data.lacking(description)
        mistyped = [n for n in lacking if n in self.data.mistyped]
        if mistyped:
            what = "; ".join(f"{n[:80]!r} is {self.data.mistyped[n]}" for n in mistyped[:12])
            raise _Skip(f"cannot feed the feature cache's columns as described: {what}")
        if lacking:
            raise _Skip(
                f"needs feature column{'s' if len(lacking) > 1 else ''} "
                f"{_listed(lacking)} that the feature cache lacks"
            )
        # Parsed here only when the bytes could name external data, whose locations must be
        # checked before ONNX Runtime opens them; otherwise ONNX Runtime's own load is the
        # parse, and `onnx` is not imported on the common path.
        locations = [] if names_no_external_data(data) else external_data_locations(_parsed(data))
        for location in locations:
            reason = unsafe_location_reason(location, path.parent)
            if reason is not None:
                raise _Skip(reason)
        for location in locations:
            problem = _external_problem(path.parent / location)
            if problem is not None:
                name = unicode_safe(path.name)
                if problem == "missing":
                    raise _Skip(f"missing external-data file {location!r} beside {name}")
                raise _Skip(f"external-data file {location!r} beside {name} is {problem}")
        session = self._session(path, None if locations else data)
        specs = description.inputs
        if len(specs) == 1 and specs[0].name is None:
            row_shape = self.data.row_shape(specs[0])
            feed_name, dtype, batch = self._choose_input(session, row_shape, description)
            bound = [(feed_name, specs[0], dtype)]
        else:
            bound, batch = self._bind(session, specs, description)
        output, kept = self._first_output(session, description.output)
        return self._run(session, bound, output, kept, batch)

    @staticmethod
    def _first_output(
        session: Any, wanted: str | None = None
    ) -> tuple[str, type[np.floating[Any]]]:
        """The output scored (``wanted``, else the first), and the dtype its predictions are
        kept in: a float32 output stays float32 (every metric sums in float64 chunks; at 10M
        rows a float64 copy would be 40 MB more), anything else becomes float64."""
        outputs = session.get_outputs()
        if not outputs:
            raise _Skip("model declares no outputs: nothing to score")
        chosen = outputs[0]
        if wanted is not None:
            named = [o for o in outputs if o.name == wanted]
            if not named:
                names = ", ".join(repr(o.name) for o in outputs)
                raise _Skip(f"model has no output {wanted!r} (its outputs: {names})")
            chosen = named[0]
        return str(chosen.name), np.float32 if chosen.type == "tensor(float)" else np.float64

    def _session(self, path: Path, data: bytes | None) -> Any:
        import onnxruntime as ort  # here, not at the top: a fully cached rerun never needs it

        ort.set_default_logger_severity(_LOG_FATAL_ONLY)  # the environment's logger too
        options = ort.SessionOptions()
        options.log_severity_level = _LOG_FATAL_ONLY
        # The arena would keep each session's peak batch buffers for the life of the process;
        # one session per model makes that pure overhead.
        options.enable_cpu_mem_arena = False
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        if not self.spin:
            # Idle pool threads otherwise busy-wait for the next run, taking the core that
            # another thread of ours (the engine's ranking thread) is working on.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            # From bytes when self-contained (what we checked is what runs); from the path when
            # ORT must find external data beside it.
            return ort.InferenceSession(
                data if data is not None else str(path),
                sess_options=options,
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:
            if data is not None:
                _parsed(data)  # bytes that are no ONNX at all say so, not how ORT failed
            raise _Skip(f"ONNX Runtime cannot load the model ({_foreign(exc)})") from None

    def _choose_input(
        self, session: Any, row_shape: tuple[int, ...], description: InputDescription
    ) -> tuple[str, Any, int | None]:
        inputs = list(session.get_inputs())
        names = ", ".join(repr(i.name) for i in inputs) or "none"
        expected = _expected(row_shape)
        if self.input_name is not None:
            chosen = [i for i in inputs if i.name == self.input_name]
            if not chosen:
                raise _Skip(f"model has no input {self.input_name!r} (its inputs: {names})")
            if not _fits(chosen[0], row_shape):
                raise _Skip(
                    f"input {self.input_name!r} is {chosen[0].type} {chosen[0].shape}, "
                    f"not a float {expected} tensor"
                )
        else:
            chosen = [i for i in inputs if _fits(i, row_shape)]
            if not chosen:
                raise _Skip(f"no float input of shape {expected} (its inputs: {names})")
            if len(chosen) > 1:
                raise _Skip(
                    f"several float {expected} inputs "
                    f"({', '.join(repr(i.name) for i in chosen)}): "
                    "describe them in the sidecar (input_names, feature_order, "
                    "codec_block_layout) or the timeline file's inputs table"
                )
        arg = chosen[0]
        for other in inputs:
            if other.name != arg.name:
                raise _Skip(undescribed(description, other.name))
        if _mismatch(arg, row_shape):
            wanted, given = list(arg.shape[1:]), list(row_shape)
            if len(row_shape) == 1:  # feature columns: say it in features
                raise _Skip(
                    f"feature-count mismatch: model wants {wanted[0]} features, "
                    f"the cache gives {given[0]}"
                )
            raise _Skip(f"shape mismatch: model wants rows of {wanted}, the data gives {given}")
        return arg.name, _FLOAT_INPUTS[arg.type], _fixed_batch(arg)

    def _bind(
        self, session: Any, specs: Sequence[ModelInput], description: InputDescription
    ) -> tuple[list[tuple[str, ModelInput, Any]], int | None]:
        """Graph inputs to described inputs: by name, or by position when the sidecar gives
        no ``input_names``. Every graph input must be fed, and each must be float [N, F]."""
        inputs = list(session.get_inputs())
        names = ", ".join(repr(i.name) for i in inputs) or "none"
        if description.named:
            by_name = {i.name: i for i in inputs}
            for spec in specs:
                if spec.name not in by_name:
                    raise _Skip(f"model has no input {spec.name!r} (its inputs: {names})")
            described = {spec.name for spec in specs}
            for arg in inputs:
                if arg.name not in described:
                    raise _Skip(undescribed(description, arg.name))
            args = [by_name[spec.name] for spec in specs]
        else:
            if len(inputs) != len(specs):
                raise _Skip(
                    f"model has {len(inputs)} inputs ({names}), the description feeds "
                    f"{len(specs)}: name them in the sidecar's input_names"
                )
            args = inputs
        bound: list[tuple[str, ModelInput, Any]] = []
        batch: int | None = None
        for arg, spec in zip(args, specs, strict=True):
            row_shape = self.data.row_shape(spec)
            if not _fits(arg, row_shape):
                raise _Skip(
                    f"input {arg.name!r} is {arg.type} {arg.shape}, "
                    f"not a float {_expected(row_shape)} tensor"
                )
            if _mismatch(arg, row_shape):
                wanted, given = list(arg.shape[1:]), list(row_shape)
                if len(row_shape) == 1:  # feature columns: say it in columns
                    raise _Skip(
                        f"column-count mismatch on input {arg.name!r}: model wants "
                        f"{wanted[0]}, the description gives {given[0]}"
                    )
                raise _Skip(
                    f"shape mismatch on input {arg.name!r}: model wants rows of {wanted}, "
                    f"the data gives {given}"
                )
            batch = _fixed_batch(arg) or batch
            bound.append((arg.name, spec, _FLOAT_INPUTS[arg.type]))
        return bound, batch

    def _bounded(self, bound: Sequence[tuple[str, ModelInput, Any]]) -> int:
        """Rows whose inputs, in the graph's own types, fit ``BATCH_INPUT_BYTES``, or
        ``TENSOR_BATCH_BYTES`` when any input is fed a tensor column."""
        per_row = sum(
            math.prod(self.data.row_shape(spec)) * int(np.dtype(dtype).itemsize)
            for _, spec, dtype in bound
        )
        tensor_fed = any(spec.tensor is not None for _, spec, _ in bound)
        budget = TENSOR_BATCH_BYTES if tensor_fed else BATCH_INPUT_BYTES
        return max(1, budget // max(1, per_row))

    def _run(
        self,
        session: Any,
        bound: Sequence[tuple[str, ModelInput, Any]],
        output: str,
        kept: type[np.floating[Any]],
        fixed: int | None,
    ) -> np.ndarray:
        with _Deadline(self.timeout) as deadline:
            return self._batches(session, bound, output, kept, fixed, deadline)

    def _batches(
        self,
        session: Any,
        bound: Sequence[tuple[str, ModelInput, Any]],
        output: str,
        kept: type[np.floating[Any]],
        fixed: int | None,
        deadline: _Deadline,
    ) -> np.ndarray:
        rows = self.data.fed_rows
        step = fixed if fixed is not None else min(self.batch_rows, rows, self._bounded(bound))
        predictions = np.empty(rows, dtype=kept)
        for begin in range(0, rows, step):
            n = min(step, rows - begin)
            chunks = {}
            for name, spec, dtype in bound:
                chunk = self.data.batch(spec, begin, begin + n).astype(dtype, copy=False)
                if fixed is not None and n < fixed:  # a fixed batch dimension: pad the tail
                    pad = np.zeros((fixed - n, *chunk.shape[1:]), dtype=chunk.dtype)
                    chunk = np.concatenate([chunk, pad])
                chunks[name] = chunk
            try:
                result = session.run([output], chunks, deadline.run_options)[0]
            except Exception as exc:
                if deadline.expired:
                    raise _Skip(
                        f"took longer than {deadline.seconds:g} s (--model-timeout): stopped"
                    ) from None
                raise _Skip(f"ONNX Runtime failed running the model ({_foreign(exc)})") from None
            if deadline.expired:  # ended on its own as the timer fired: still over the bound
                raise _Skip(f"took longer than {deadline.seconds:g} s (--model-timeout): stopped")
            values = np.asarray(result)
            expected = max(n, fixed or 0)
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
        return self.data.pooled(predictions)  # one per rated item, where rows are pooled
