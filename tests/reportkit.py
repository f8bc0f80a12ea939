"""Reports shaped like the engine's, for the renderer and publish tests."""

from __future__ import annotations

from model_bisect.catalogue import GateKind
from model_bisect.report import (
    FeaturesRef,
    GateSpec,
    Metrics,
    ModelRef,
    Report,
    Status,
    Step,
    Verdict,
    VerdictKind,
)

HOSTILE = 'a|b `tick` <!-- x --> line\nbreak <script>alert(1)</script> @octocat "q" [l](u)'


def metrics_of(plcc: float, srocc: float, krocc: float, rmse: float, n: int = 256) -> Metrics:
    return Metrics(values={"plcc": plcc, "srocc": srocc, "krocc": krocc, "rmse": rmse}, n=n)


def make_report(
    n: int = 8,
    *,
    kind: VerdictKind = VerdictKind.REGRESSION,
    first_bad: int | None = 5,
    labels: list[str] | None = None,
    visited: list[int] | None = None,
    gates: tuple[GateSpec, ...] = (GateSpec("plcc", GateKind.MIN, 0.85),),
    candidates: tuple[int, ...] = (),
    p_values: bool = False,
    reason: str = "",
    message: str = "",
) -> Report:
    """A report shaped like the engine's: bad from ``first_bad`` on, ``visited`` steps only."""
    names = labels or [f"model_{i:02d}" for i in range(n)]
    indices = visited if visited is not None else list(range(n))
    steps = []
    for i in indices:
        bad = first_bad is not None and i >= first_bad
        skip = i in candidates
        plcc = 0.6 - 0.01 * i if bad else 0.92 - 0.001 * i
        steps.append(
            Step(
                index=i,
                label=names[i],
                status=Status.SKIP if skip else (Status.BAD if bad else Status.GOOD),
                metrics=None if skip else metrics_of(plcc, plcc - 0.02, plcc - 0.1, 0.4),
                reason=reason or ("plcc below 0.85" if bad else ""),
                seconds=0.01,
                p_values={"plcc": 0.0123} if p_values and bad else {},
            )
        )
    last_good = None if first_bad in (None, 0) else first_bad - 1
    return Report(
        tool_version="0.1.0",
        timeline=tuple(
            ModelRef(i, names[i], f"models/{names[i]}.onnx", "0" * 64) for i in range(n)
        ),
        features=FeaturesRef("testdata/bisect/features.parquet", "f" * 64, 256, ("adm2",)),
        gates=gates,
        steps=tuple(steps),
        evaluations=len(steps),
        verdict=Verdict(kind, first_bad, last_good, candidates, message or f"verdict {kind.value}"),
        toolchain={"python": "3.11.9", "onnxruntime": "1.20.1"},
        settings={"mapping": "none", "target": "mos"},
    )
