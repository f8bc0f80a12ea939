"""The quality gates: parse them from flags, and judge a model's metrics against them.

A model is good when every gate holds. An undefined metric (NaN: constant predictions or
too few rows) fails its gate, since nothing shows that the model is good.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from .catalogue import CATALOGUE, GateKind, fixed, gate_flags_text, metric_spec
from .errors import UsageError
from .report import GateSpec, Metrics, Status

__all__ = ["gate_specs", "judge", "parse_max_drop", "shown_for_gates", "threshold_clause"]


def parse_max_drop(text: str) -> GateSpec:
    """``"plcc=0.05"`` -> the gate "plcc may drop at most 0.05 below the first model"."""
    valid = ", ".join(CATALOGUE.names)
    fix = f"write METRIC=DELTA with METRIC one of {valid} and DELTA >= 0, e.g. plcc=0.05"
    where = f"--max-drop {text}"
    name, sep, value = text.partition("=")
    metric = name.strip().lower()
    if not sep or not metric or not value.strip():
        raise UsageError(f"malformed gate {text!r}", where, fix)
    if metric not in CATALOGUE:
        raise UsageError(f"unknown metric {name.strip()!r}", where, fix)
    try:
        delta = float(value)
    except ValueError:
        raise UsageError(f"{value.strip()!r} is not a number", where, fix) from None
    if not math.isfinite(delta) or delta < 0.0:
        raise UsageError(f"delta {value.strip()} is not a finite number >= 0", where, fix)
    return GateSpec(metric, GateKind.MAX_DROP, delta)


def _checked(flag: str, value: float, low: float, high: float, fix: str) -> float:
    if not low <= value <= high:  # also catches NaN
        raise UsageError(f"threshold {value} is outside [{low:g}, {high:g}]", flag, fix)
    return value


def gate_specs(
    thresholds: Mapping[str, float | None], max_drop: Sequence[str] = ()
) -> tuple[GateSpec, ...]:
    """The gates the flags ask for, in catalogue order then the drops; at least one.

    ``thresholds`` maps a metric name to its ``--min-``/``--max-`` flag's value (None or
    absent when the flag was not given).
    """
    unknown = set(thresholds) - set(CATALOGUE.names)
    if unknown:
        raise ValueError(f"no threshold flag exists for {', '.join(sorted(unknown))}")
    specs: list[GateSpec] = []
    for spec in CATALOGUE:
        value = thresholds.get(spec.name)
        if value is not None:
            low, high = spec.threshold_range
            value = _checked(spec.flag, value, low, high, spec.threshold_hint)
            specs.append(GateSpec(spec.name, spec.threshold_kind, value))
    specs.extend(parse_max_drop(text) for text in max_drop or ())
    if not specs:
        raise UsageError("no gate given", None, f"pass at least one of {gate_flags_text()}")
    return tuple(specs)


# A reason prints a value with at least the table's four decimals, and more only when four
# would round it onto (or across) the threshold it is compared with.
_MIN_DECIMALS = 4
_MAX_DECIMALS = 17


def _threshold_text(threshold: float) -> str:
    """The threshold as the user would write it: ``%g`` when that is exact, else the
    shortest text that reads back as the same float."""
    short = f"{threshold:g}"
    return short if float(short) == threshold else repr(threshold)


def _beside(value: float, threshold: float) -> str:
    """``value`` with as many decimals as it takes for the printed number to stand on the
    same side of the printed threshold as the value itself does (at least four)."""
    for decimals in range(_MIN_DECIMALS, _MAX_DECIMALS + 1):
        text = fixed(value, decimals)
        shown = float(text)
        if (shown < threshold) == (value < threshold) and (shown > threshold) == (
            value > threshold
        ):
            return text
    return repr(value)


def _num(value: float) -> str:
    return "undefined (NaN)" if math.isnan(value) else fixed(value, _MIN_DECIMALS)


def _drop_verdict(
    gate: GateSpec,
    metrics: Metrics,
    anchor: Metrics | None,
    p_values: Mapping[str, float] | None,
    alpha: float | None,
) -> tuple[bool, str]:
    """Whether a max-drop gate holds, and the sentence that says so with its numbers."""
    if anchor is None:
        raise ValueError(f"the gate {gate.describe()!r} needs the anchor's metrics")
    metric = gate.metric
    now, then = metrics.value(metric), anchor.value(metric)
    worse = metric_spec(metric).worse_by(now - then)
    moved = f"{metric} {_num(then)} -> {_num(now)} vs first model"
    if math.isnan(worse):
        return False, f"{moved}: drop undefined, needs <= {_threshold_text(gate.threshold)}"
    if worse <= gate.threshold:
        drop = _beside(worse, gate.threshold)
        return True, f"{moved}: drop {drop} <= {_threshold_text(gate.threshold)}"
    drop = _beside(worse, gate.threshold)
    exceeded = f"{moved}: drop {drop} > {_threshold_text(gate.threshold)}"
    if alpha is None:
        return False, exceeded
    if p_values is None or metric not in p_values:
        raise ValueError(f"alpha is set but no p-value was given for {metric}")
    p = p_values[metric]
    if math.isnan(p):
        # No test result means no evidence that the drop is noise; the gate fails as NaN does.
        return False, f"{exceeded}, p undefined"
    if p < alpha:
        return False, f"{exceeded}, significant (p = {p:.3g} < {alpha:g})"
    return True, f"{exceeded} but not significant (p = {p:.3g} >= {alpha:g})"


def threshold_clause(gate: GateSpec, value: float) -> tuple[bool, str]:
    """Whether a ``min``/``max`` gate holds for ``value``, and the clause a reason says it
    with (``plcc 0.9960 >= 0.85``); the terminal drops exactly this clause where its table
    shows the same number (``shown_for_gates``)."""
    if gate.kind is GateKind.MIN:
        ok, sign = value >= gate.threshold, (">=", "<")
    elif gate.kind is GateKind.MAX:
        ok, sign = value <= gate.threshold, ("<=", ">")
    else:
        raise ValueError(f"not a threshold gate: {gate}")
    if math.isnan(value):  # NaN compares false both ways, so ok is already False
        return False, f"{gate.metric} undefined (NaN), needs {gate.describe()}"
    shown, limit = _beside(value, gate.threshold), _threshold_text(gate.threshold)
    return ok, f"{gate.metric} {shown} {sign[0] if ok else sign[1]} {limit}"


def shown_for_gates(value: float, thresholds: Sequence[float], decimals: int) -> str:
    """``value`` with at least ``decimals`` decimals, and as many more as any threshold needs
    for the printed number to stand on the value's side of it: a table cell that agrees with
    every gate on its metric (``0.99989`` beside a 0.99994 gate, never ``0.9999``)."""
    texts = [fixed(value, decimals), *(_beside(value, t) for t in thresholds)]
    return max(texts, key=len)


def judge(
    metrics: Metrics,
    gates: Sequence[GateSpec],
    *,
    anchor: Metrics | None = None,
    p_values: Mapping[str, float] | None = None,
    alpha: float | None = None,
) -> tuple[Status, str]:
    """GOOD when every gate holds, else BAD; the reason names each failing gate with numbers
    (or, for a good model, every gate's margin)."""
    if not gates:
        raise ValueError("judge needs at least one gate")
    held: list[str] = []
    failed: list[str] = []
    for gate in gates:
        metric_spec(gate.metric)  # UnknownMetricError, never another metric's verdict
        if gate.kind is GateKind.MAX_DROP:
            ok, text = _drop_verdict(gate, metrics, anchor, p_values, alpha)
        elif gate.kind in (GateKind.MIN, GateKind.MAX):
            ok, text = threshold_clause(gate, metrics.value(gate.metric))
        else:
            raise ValueError(f"unknown gate kind in {gate}")
        (held if ok else failed).append(text)
    if failed:
        return Status.BAD, "; ".join(failed)
    return Status.GOOD, "; ".join(held)
