"""No import cycles, and no import from a lower layer to a higher one, counting function-level
imports.

A function-level import only hides a cycle until that function runs; ``if TYPE_CHECKING:``
blocks never run, so they are the one place a back-reference may live.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("model_bisect", "cache_builder")


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except the bodies of ``if TYPE_CHECKING:`` (their ``else`` still runs)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _imports(module: str, is_package: bool, tree: ast.AST, known: set[str]) -> set[str]:
    """The project modules ``module`` imports at run time."""
    found = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{alias.name}" for alias in node.names}  # from . import x
    return {name for name in found if name in known and name != module}


def import_graph(root: Path = REPO_ROOT) -> dict[str, set[str]]:
    files = {
        _module_name(path, root): path
        for package in PACKAGES
        for path in (root / package).rglob("*.py")
    }
    known = set(files)
    return {
        name: _imports(name, path.name == "__init__.py", ast.parse(path.read_text()), known)
        for name, path in files.items()
    }


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One cycle as ``[a, b, ..., a]``, or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def _closure(start: str) -> set[str]:
    """Every project module ``start`` imports, directly or not."""
    graph, seen, todo = import_graph(), set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


# The layers, lowest first; a module may import its own layer and those below it. The longest
# matching prefix places a module, and a module no prefix places fails the test, so a new
# module is given its layer on purpose (docs/architecture.md draws the same picture).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "contracts",
        (
            "model_bisect",
            "model_bisect.errors",
            "model_bisect.exitcodes",
            "model_bisect.catalogue",
            "model_bisect.report",
            "model_bisect.culprit.record",
            "model_bisect.safetext",
        ),
    ),
    (
        "pure core",
        (
            "model_bisect.metrics",
            "model_bisect.ranks",
            "model_bisect.significance",
            "model_bisect.gates",
            "model_bisect.slices",
            "model_bisect.search",
        ),
    ),
    ("files", ("model_bisect.files", "model_bisect.outputs", "model_bisect.toolchain")),
    ("evaluation", ("model_bisect.evaluation", "model_bisect.culprit", "model_bisect.executors")),
    ("timeline", ("model_bisect.timeline",)),
    ("publishing", ("model_bisect.publishing",)),
    (
        "glue",
        (
            "model_bisect.engine",
            "model_bisect.rank_overlap",
            "model_bisect.settings",
            "model_bisect.config",
            "model_bisect.json_schema",
        ),
    ),
    (
        "front ends",
        (
            "model_bisect.command_line",
            "model_bisect.commands",
            "model_bisect.cli",
            "model_bisect.__main__",
            "cache_builder",
        ),
    ),
)


def layer_of(module: str) -> int:
    """The index in LAYERS of the longest prefix naming ``module``; -1 when none does.

    ``model_bisect`` itself places only the package's ``__init__`` (its version), not every
    module under it.
    """
    best, length = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            inside = prefix != "model_bisect" and module.startswith(prefix + ".")
            if (module == prefix or inside) and len(prefix) > length:
                best, length = index, len(prefix)
    return best


def upward_imports(graph: Mapping[str, set[str]]) -> list[str]:
    """Every import of a higher layer, and every module no layer places, as readable lines."""
    found = []
    for module in sorted(graph):
        here = layer_of(module)
        if here < 0:
            found.append(f"{module} is in no layer")
            continue
        for target in sorted(graph[module]):
            there = layer_of(target)
            if there > here:
                found.append(f"{module} ({LAYERS[here][0]}) imports {target} ({LAYERS[there][0]})")
    return found


def test_no_module_imports_a_higher_layer() -> None:
    assert upward_imports(import_graph()) == []


def test_layer_check_reports_an_upward_import_and_an_unplaced_module() -> None:
    graph = {
        "model_bisect.metrics": {"model_bisect.evaluation.runner"},
        "model_bisect.engine": {"model_bisect.metrics"},
        "model_bisect.stray": set(),
    }
    assert upward_imports(graph) == [
        "model_bisect.metrics (pure core) imports model_bisect.evaluation.runner (evaluation)",
        "model_bisect.stray is in no layer",
    ]


def test_no_import_cycle_in_either_package() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_graph_sees_function_level_and_cross_package_imports() -> None:
    graph = import_graph()
    assert "model_bisect.evaluation.runner" in graph["model_bisect.engine"]  # inside a property
    assert "model_bisect.metrics" in graph["model_bisect.engine"]  # inside a method
    assert "model_bisect.files" in graph["cache_builder.writers"]
    assert (
        "model_bisect.timeline.entry" not in graph["model_bisect.evaluation.runner"]
    )  # TYPE_CHECKING only


def test_onnx_file_knowledge_depends_on_neither_timeline_nor_evaluate() -> None:
    assert (
        _closure("model_bisect.evaluation.onnxfile")
        & {
            "model_bisect.timeline.entry",
            "model_bisect.evaluation.runner",
        }
        == set()
    )


def test_cycle_finder_reports_a_function_level_cycle(tmp_path: Path) -> None:
    package = tmp_path / "model_bisect"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import thing\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .c import other\n"
        "def late():\n    from . import a\n"
    )
    (package / "c.py").write_text("from model_bisect import b\n")
    (tmp_path / "cache_builder").mkdir()
    graph = import_graph(tmp_path)
    assert graph["model_bisect.b"] == {"model_bisect", "model_bisect.a"}
    assert find_cycle(graph) == ["model_bisect.a", "model_bisect.b", "model_bisect.a"]
