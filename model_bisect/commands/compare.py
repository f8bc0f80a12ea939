"""`model-bisect compare A B --features F`: the culprit section for any two models (an fp32
model and its int8 twin, two checkpoints), gated on how far B's predictions part from A's.

    model-bisect compare m.onnx m.int8.onnx --features f.parquet --max-disagreement plcc=0.01

The data is opened through the same seam as ``run`` (``inputs.open_dataset``): a feature
parquet, or a tensor cache of frames when a model's description (its own sidecar, or the
``inputs`` table of ``--inputs-from FILE`` laid over it) feeds tensor columns; ``--pool-by``
judges per group, and a ``direction = "lower"`` negates that model's scores first (the
``--inputs-from`` file's direction, when it gives one, else the model's own sidecar's).

Disagreement is 1 - PLCC(predictions of A, predictions of B), the VMAF fork's definition of
its quantisation budget; without the flag the budget is ``quant_accuracy_budget_plcc`` from
B's sidecar, else from a ``registry.json`` beside B. Exit 0 within the budget (or with no
budget), 2 over it, 3 when an input is unusable. No target column is needed: without one the
section holds the graph and the agreement only.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalogue import Direction
from ..errors import InputError, UsageError
from ..evaluation.features import TARGET_COLUMN
from ..exitcodes import ExitCode
from ..safetext import printable

if TYPE_CHECKING:
    import numpy as np

    from ..culprit.record import Culprit
    from ..evaluation.dataset import Dataset
    from ..evaluation.features import FeatureTable
    from ..evaluation.inputs import InputDescription

__all__ = ["BUDGET_KEY", "Budget", "add_parser", "default_budget", "main", "parse_budget"]

COMMAND = "compare"
BUDGET_KEY = "quant_accuracy_budget_plcc"
REGISTRY = "registry.json"
TWIN_SUFFIX = ".int8.onnx"


@dataclass(frozen=True)
class Budget:
    """At most ``limit`` of 1 - PLCC between the two models' predictions; ``source`` says
    where it came from (``--max-disagreement``, a sidecar or a registry file)."""

    limit: float
    source: str

    def holds(self, disagreement: float) -> bool:
        return math.isfinite(disagreement) and disagreement <= self.limit


@dataclass(frozen=True)
class Comparison:
    """One pair's result: ``fields`` as the JSON writes them, and the culprit section."""

    fields: dict[str, Any]
    culprit: Culprit


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        COMMAND,
        help="explain how two models differ; gate on 1 - PLCC between their predictions",
        description=(
            "Evaluate two models on one cache (features or frames) and explain how they "
            "differ: graph changes, the agreement of their predictions, where on the data they "
            "part. Exit 0 within the disagreement budget, 2 over it, 3 on unusable input."
        ),
    )
    parser.add_argument("models", type=Path, nargs="*", metavar="MODEL", help="A and B")
    parser.add_argument(
        "--twins",
        type=Path,
        metavar="FOLDER",
        help=f"compare every X.onnx in FOLDER with its X{TWIN_SUFFIX}",
    )
    parser.add_argument(
        "--features",
        type=Path,
        required=True,
        help="the cache: a feature parquet, or a tensor cache of frames",
    )
    parser.add_argument(
        "--inputs-from",
        type=Path,
        metavar="JSON",
        help="a sidecar-style JSON whose inputs table (and output, direction) feeds both models",
    )
    parser.add_argument(
        "--pool-by",
        metavar="COLUMN",
        help="average each model's predictions per value of COLUMN (a clip id) first",
    )
    parser.add_argument(
        "--target",
        default=TARGET_COLUMN,
        help=f"target column, if any (default: {TARGET_COLUMN})",
    )
    parser.add_argument("--input-name", help="model input to feed (default: auto-detect)")
    parser.add_argument("--row-id", metavar="COLUMN", help="name the worst rows by this column")
    parser.add_argument(
        "--max-disagreement",
        metavar="plcc=X",
        help=f"budget for 1 - PLCC(A, B) (default: {BUDGET_KEY} of B's sidecar or registry)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the result as JSON")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write it as Markdown")
    parser.add_argument("--quiet", action="store_true", help="print nothing on stdout")


def parse_budget(text: str) -> Budget:
    metric, sep, value = text.partition("=")
    try:
        limit = float(value)
    except ValueError:
        limit = math.nan
    if not sep or metric.strip().lower() != "plcc" or not 0.0 <= limit <= 2.0:
        raise UsageError(
            f"--max-disagreement {text!r} is not plcc=X with 0 <= X <= 2",
            "model-bisect compare",
            "write it as plcc=0.01",
        )
    return Budget(limit, "--max-disagreement")


def _budget_value(value: object, where: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 2:
        raise InputError(
            f"{BUDGET_KEY} is {value!r}, not a number between 0 and 2",
            str(where),
            "fix the value or pass --max-disagreement plcc=X",
        )
    return float(value)


def _registry_entry(data: Any, model: Path) -> Any:
    """The registry's entry for ``model``: a top-level key, or an item of ``models`` (a list
    of objects naming the model, or an object keyed by name) that names it."""
    if not isinstance(data, dict):
        return None
    if BUDGET_KEY in data:
        return data[BUDGET_KEY]
    names = {model.name, model.stem, model.name.removesuffix(TWIN_SUFFIX)}
    models = data.get("models")
    items: list[Any] = []
    if isinstance(models, dict):
        items = [v for k, v in models.items() if k in names]
    elif isinstance(models, list):
        for item in models:
            if not isinstance(item, dict):
                continue
            named = {str(item.get(key)) for key in ("name", "id", "path", "onnx", "file")}
            named |= {Path(n).name for n in named}
            if named & names:
                items.append(item)
    for item in items:
        if isinstance(item, dict) and BUDGET_KEY in item:
            return item[BUDGET_KEY]
    return None


def default_budget(model: Path) -> Budget | None:
    """``quant_accuracy_budget_plcc`` from B's sidecar, else from ``registry.json`` beside it."""
    from ..evaluation.features import read_sidecar, sidecar_path

    sidecar = read_sidecar(model)
    if sidecar is not None and BUDGET_KEY in sidecar:
        where = sidecar_path(model)
        return Budget(_budget_value(sidecar[BUDGET_KEY], where), where.name)
    registry = model.parent / REGISTRY
    if not registry.is_file():
        return None
    try:
        data = json.loads(registry.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"not readable JSON ({exc.__class__.__name__})",
            str(registry),
            "fix the registry or pass --max-disagreement plcc=X",
        ) from None
    value = _registry_entry(data, model)
    return None if value is None else Budget(_budget_value(value, registry), REGISTRY)


def _pairs(args: argparse.Namespace) -> list[tuple[Path, Path]]:
    if args.twins is not None:
        if args.models:
            raise UsageError("--twins takes no MODEL", "model-bisect compare", "pass one or other")
        if not args.twins.is_dir():
            raise UsageError("--twins is not a folder", str(args.twins), "pass a model folder")
        pairs = [
            (p, p.with_name(p.name.removesuffix(".onnx") + TWIN_SUFFIX))
            for p in sorted(args.twins.glob("*.onnx"))
            if not p.name.endswith(TWIN_SUFFIX)
        ]
        pairs = [(a, b) for a, b in pairs if b.is_file()]
        if not pairs:
            raise UsageError(
                f"no X.onnx with an X{TWIN_SUFFIX} beside it",
                str(args.twins),
                "pass a folder holding twins",
            )
        return pairs
    if len(args.models) != 2:
        raise UsageError(
            f"compare needs two models, got {len(args.models)}",
            "model-bisect compare",
            "pass A B (or --twins FOLDER)",
        )
    for path in args.models:
        if not path.is_file():
            raise UsageError("model not found", str(path), "pass an existing .onnx file")
    return [(args.models[0], args.models[1])]


def _shared_inputs(path: Path | None) -> tuple[InputDescription | None, Direction | None]:
    """``--inputs-from``: the description (and direction) a sidecar-style JSON gives, laid
    over each model's own sidecar as a timeline entry's ``inputs`` table would be."""
    from ..evaluation.features import read_sidecar
    from ..evaluation.inputs import direction_from_sidecar_data, from_sidecar_data

    if path is None:
        return None, None
    if path.suffix != ".json" or not path.is_file():
        raise UsageError(
            "--inputs-from is not a JSON file", str(path), "pass a sidecar such as A.json"
        )
    data = read_sidecar(path)  # a .json is its own sidecar path
    if data is None or "inputs" not in data:
        raise InputError(
            "holds no inputs table",
            str(path),
            'give it "inputs": {"frame": {"tensor": "frame", "scale": 0.00392156862745098}}',
        )
    return from_sidecar_data(data, path), direction_from_sidecar_data(data, path)


def _descriptions(
    pair: tuple[Path, Path], shared: InputDescription | None
) -> list[InputDescription]:
    """Each model's description; a pair where one model is fed tensors and the other falls
    back to the default rule (a twin whose sidecar carries only its budget) is refused, since
    feeding it the six canonical features of a frame cache cannot be what was meant."""
    from ..evaluation.features import sidecar_path
    from ..evaluation.inputs import describe

    descriptions = [describe(path, shared) for path in pair]
    fed = [d for d in descriptions if d.tensor_columns]
    for path, description in zip(pair, descriptions, strict=True):
        if fed and description.source == "default":
            column = fed[0].tensor_columns[0]
            sidecar = sidecar_path(path)
            what = "describes no inputs" if sidecar.is_file() else "is missing"
            raise InputError(
                f"sidecar {what}, while the other model is fed tensor column {column!r}",
                str(sidecar),
                "pass --inputs-from OTHER.json, or give this sidecar the same inputs table",
            )
    return descriptions


def _evaluate(
    pair: tuple[Path, Path], args: argparse.Namespace
) -> tuple[Dataset, list[np.ndarray], bool]:
    """Both models' predictions on the rated items of the cache (per group with
    ``--pool-by``), a lower-is-better model's negated; whether the cache has a target."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..evaluation.inputs import open_dataset, sidecar_direction
    from ..evaluation.runner import Evaluator
    from ..timeline.arguments import from_arguments

    shared, shared_direction = _shared_inputs(args.inputs_from)
    entries = from_arguments([str(p) for p in pair])
    descriptions = _descriptions(pair, shared)
    try:
        names = pq.ParquetFile(args.features).schema_arrow.names
    except (OSError, pa.ArrowException):
        names = []  # open_dataset names the problem
    has_target = args.target in names
    data: Dataset
    if has_target or any(d.tensor_columns for d in descriptions):
        # A tensor cache is read with its target (it says so when the file has none).
        data = open_dataset(args.features, descriptions, args.target, pool_by=args.pool_by)
    else:
        numeric = list(dict.fromkeys(c for d in descriptions for c in d.numeric_columns))
        strings = list(dict.fromkeys(c for d in descriptions for c in d.string_columns))
        data = _without_target(args.features, numeric, strings)
        if args.pool_by is not None:
            from ..evaluation.pooling import pooled

            data = pooled(data, args.pool_by)
    evaluator = Evaluator(data, input_name=args.input_name)
    predictions = []
    for entry, description in zip(entries, descriptions, strict=True):
        evaluation = evaluator.predict(entry, description)
        if not evaluation.ok or evaluation.predictions is None:
            raise InputError(
                f"model cannot be evaluated ({evaluation.reason})",
                str(entry.path),
                "fix the model or its sidecar",
            )
        # --inputs-from plays a timeline entry's part: its direction, when it gives one, wins
        # over the model's own sidecar (the precedence `run` applies).
        direction = shared_direction or sidecar_direction(entry.path)
        values = evaluation.predictions
        if direction is Direction.LOWER_IS_BETTER:  # as `run` does: a distance as a score
            values = np.negative(values)
        predictions.append(values)
    return data, predictions, has_target


def _without_target(path: Path, numeric: list[str], strings: list[str]) -> FeatureTable:
    """The fed columns of a file that has no target: read through a copy holding a zero
    target column (the loader drops rows by the fed columns alone then), reported as the
    original file."""
    import tempfile
    from dataclasses import replace

    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..evaluation.features import load_features
    from ..files import file_sha256

    try:
        table = pq.ParquetFile(path).read(columns=[*numeric, *strings])
    except (OSError, pa.ArrowException, KeyError):
        return load_features(path, numeric, "", strings=strings)  # its own message
    name = "__no_target__"
    table = table.append_column(name, pa.array([0.0] * table.num_rows, type=pa.float64()))
    with tempfile.TemporaryDirectory(prefix="model-bisect-compare-") as folder:
        copy = Path(folder) / "features.parquet"
        pq.write_table(table, copy)
        features = load_features(copy, numeric, name, strings=strings)
    return replace(features, path=path, sha256=file_sha256(path))


def _compare(pair: tuple[Path, Path], args: argparse.Namespace) -> Comparison:
    from ..culprit.explain import check_row_id, explain, graph_changes
    from ..culprit.predictions import agreement
    from ..culprit.record import Culprit
    from ..files import file_sha256

    a, b = pair
    budget = parse_budget(args.max_disagreement) if args.max_disagreement else default_budget(b)
    check_row_id(args.features, args.row_id)
    features, (before, after), has_target = _evaluate(pair, args)
    if has_target:
        culprit: Culprit = explain(
            a, b, features, before, after, last_good_index=0, first_bad_index=1, row_id=args.row_id
        )
    else:
        graph, error = graph_changes(a, b)
        culprit = Culprit(0, 1, graph, agreement(before, after), (), (), (), error)
    disagreement = 1.0 - culprit.agreement.plcc
    within = None if budget is None else budget.holds(disagreement)
    fields = {
        "a": {"path": str(a), "sha256": file_sha256(a)},
        "b": {"path": str(b), "sha256": file_sha256(b)},
        "features": {"path": str(features.path), "sha256": features.sha256, "rows": features.rows},
        "target": args.target if has_target else None,
        "pool_by": args.pool_by,
        "disagreement": None if not math.isfinite(disagreement) else disagreement,
        "budget": None if budget is None else {"plcc": budget.limit, "source": budget.source},
        "within_budget": within,
        "culprit": culprit.to_json(),
    }
    return Comparison(fields, culprit)


def _verdict(comparison: Comparison) -> str:
    result = comparison.fields
    a, b = Path(result["a"]["path"]).name, Path(result["b"]["path"]).name
    value = result["disagreement"]
    shown = "n/a" if value is None else f"{value:.6f}"
    budget = result["budget"]
    if budget is None:
        return f"no budget: 1 - plcc({a}, {b}) = {shown} (no {BUDGET_KEY} found)"
    word, op = ("within budget", "<=") if result["within_budget"] else ("over budget", ">")
    return f"{word}: 1 - plcc({a}, {b}) = {shown} {op} {budget['plcc']:g} ({budget['source']})"


def _markdown(results: list[Comparison]) -> str:
    from ..culprit.render import details_lines
    from ..publishing.comment import _text  # the comment's escaping, for the same readers

    blocks = []
    for result in results:
        labels = _labels(result)
        mark = "✅" if result.fields["within_budget"] is not False else "❌"
        blocks.append(
            "\n".join(
                [
                    f"### {mark} {_text(_verdict(result))}",
                    "",
                    *details_lines(result.culprit, labels, _text),
                ]
            )
        )
    return "\n\n".join(blocks) + "\n"


def _labels(result: Comparison) -> dict[int, str]:
    return {0: Path(result.fields["a"]["path"]).name, 1: Path(result.fields["b"]["path"]).name}


def _write(path: Path, text: str) -> None:
    from ..files import write_text_atomic
    from ..outputs import STDOUT

    if str(path) == STDOUT:
        sys.stdout.write(text)
    else:
        write_text_atomic(path, text)


def main(args: argparse.Namespace) -> int:
    from .. import __version__
    from ..outputs import check_outputs

    pairs = _pairs(args)
    outputs = [(f, p) for f, p in (("--json", args.json), ("--markdown", args.markdown)) if p]
    check_outputs(outputs)
    if not args.features.is_file():
        raise UsageError(
            "feature cache not found", str(args.features), "pass an existing parquet file"
        )
    results = [_compare(pair, args) for pair in pairs]
    talk = sys.stderr if any(str(p) == "-" for _, p in outputs) else sys.stdout
    if not args.quiet:
        from ..culprit.render import terminal_lines

        for result in results:
            print(printable(_verdict(result)), file=talk)
            for line in terminal_lines(result.culprit, _labels(result))[1:]:
                print(printable(line), file=talk)
    if args.json:
        body = {
            "schema_version": 1,
            "kind": "compare",
            "tool_version": __version__,
            "pairs": [r.fields for r in results],
        }
        _write(args.json, json.dumps(body, indent=2, allow_nan=False) + "\n")
    if args.markdown:
        _write(args.markdown, _markdown(results))
    over = any(r.fields["within_budget"] is False for r in results)
    return int(ExitCode.REGRESSION if over else ExitCode.OK)
