"""The floor of the speed comparison: run the models a bisect evaluated, and nothing else.

A process that starts Python, imports numpy, pyarrow and ONNX Runtime, reads the six canonical
features and the target with pyarrow (no pandas, no dataset layer), and runs each given model
once through an ONNX Runtime session with its default threads (one per core). No metric, no
search, no report: what any tool pays to evaluate those models as their users run them.
`bench.py` runs it on the models `model-bisect run` evaluated, in the same rounds as both
tools, so `bare / baseline` is the lowest ratio an ONNX Runtime evaluator can reach on that
case and `ours / bare` what the search, the statistics and the report cost on top.
Prints `{"evaluations": k, "rows": n}`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime
import pyarrow as pa
import pyarrow.parquet as pq

FEATURES = ("adm2", "vif_scale0", "vif_scale1", "vif_scale2", "vif_scale3", "motion2")


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    """A null-free float32 column's values. Not ``to_numpy``: where pandas is installed (the
    bench's environment, for the baseline) pyarrow imports it on that call, 0.27 s that a
    floor must not pay."""
    if column.type != pa.float32() or column.null_count:
        raise SystemExit(f"error: bare.py reads null-free float32 columns, not {column.type}")
    return np.concatenate(
        [
            np.frombuffer(chunk.buffers()[1], np.float32, len(chunk), chunk.offset * 4)
            for chunk in column.chunks
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("models", type=Path, nargs="+", help="the .onnx models to run, in order")
    parser.add_argument("--features", type=Path, required=True, help="feature cache (parquet)")
    parser.add_argument("--target", default="mos", help="target column (default: mos)")
    args = parser.parse_args(argv)
    table = pq.ParquetFile(args.features).read(columns=[*FEATURES, args.target])
    matrix = np.empty((table.num_rows, len(FEATURES)), dtype=np.float32)
    for i, name in enumerate(FEATURES):
        matrix[:, i] = _floats(table.column(name))
    target = _floats(table.column(args.target))  # read, as any metric would need it
    del table
    for model in args.models:
        session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        session.run(None, {session.get_inputs()[0].name: matrix})
    print(json.dumps({"evaluations": len(args.models), "rows": int(target.size)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
