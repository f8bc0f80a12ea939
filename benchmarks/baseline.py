"""The straightforward bisect that model-bisect is measured against (issue 12).

No caching, no column selection, no lazy imports: pandas reads the whole parquet file, the six
canonical features and the target become float32 arrays, and a plain binary search over the
models (sorted by file name) opens an ONNX Runtime session for each model it visits and gates
it on scipy's pearsonr (and spearmanr). Prints `{"first_bad": i, "evaluations": k}` as one
JSON line; `first_bad` is null when every model passes.

It assumes what the search assumes: the first model is good and the timeline reads
good...good bad...bad. `--scan` evaluates every model instead, oldest first.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime
import pandas as pd
from scipy import stats

FEATURES = ("adm2", "vif_scale0", "vif_scale1", "vif_scale2", "vif_scale3", "motion2")


def passes(
    model: Path,
    features: np.ndarray,
    target: np.ndarray,
    min_plcc: float | None,
    min_srocc: float | None,
) -> bool:
    """Score every row with one model and hold both correlations against their gates."""
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: features}
    scores = np.asarray(session.run(None, feed)[0], dtype=np.float32).ravel()
    plcc = stats.pearsonr(scores, target)[0]
    srocc = stats.spearmanr(scores, target)[0]
    if min_plcc is not None and not plcc >= min_plcc:
        return False
    return min_srocc is None or srocc >= min_srocc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("models", type=Path, help="folder of .onnx models, oldest name first")
    parser.add_argument("--features", type=Path, required=True, help="feature cache (parquet)")
    parser.add_argument("--target", default="mos", help="target column (default: mos)")
    parser.add_argument("--min-plcc", type=float, metavar="X")
    parser.add_argument("--min-srocc", type=float, metavar="X")
    parser.add_argument("--scan", action="store_true", help="evaluate every model")
    args = parser.parse_args(argv)
    if args.min_plcc is None and args.min_srocc is None:
        parser.error("give --min-plcc, --min-srocc or both")
    models = sorted(args.models.glob("*.onnx"))
    if not models:
        parser.error(f"no .onnx files in {args.models}")

    frame = pd.read_parquet(args.features)
    features = frame[list(FEATURES)].to_numpy(dtype=np.float32)
    target = frame[args.target].to_numpy(dtype=np.float32)

    evaluations = 0

    def good(index: int) -> bool:
        nonlocal evaluations
        evaluations += 1
        return passes(models[index], features, target, args.min_plcc, args.min_srocc)

    if args.scan:
        verdicts = [good(index) for index in range(len(models))]
        first_bad = next((i for i, ok in enumerate(verdicts) if not ok), len(models))
    else:
        # The first bad index lies in [lo, hi]; hi == len(models) means none is bad.
        lo, hi = 0, len(models)
        while lo < hi:
            middle = (lo + hi) // 2
            if good(middle):
                lo = middle + 1
            else:
                hi = middle
        first_bad = lo
    found = None if first_bad == len(models) else first_bad
    print(json.dumps({"first_bad": found, "evaluations": evaluations}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
