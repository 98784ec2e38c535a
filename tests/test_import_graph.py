"""The import graph of ``src``: no circle, and no import in a forbidden direction, directly or
through other src modules.

Every ``import`` statement of every module under ``src`` counts, at the top of a module or inside
a function (a lazy import is still a dependency). The graph is read with ``ast`` only, so the test
imports nothing it checks and takes well under a second.

Edges: ``import a.b.c`` -> ``a.b.c``; ``from a.b import c`` -> ``a.b.c`` when that is a module,
else ``a.b``. The implicit import of a module's parent packages is not an edge (every submodule
has it; a package ``__init__`` that re-exports its children would otherwise be a circle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "src"

#: The entry points run with ``python -m``.
RUNNERS = ("src.train", "src.eval", "src.predict", "src.export", "src.convert", "src.check_data", "src.zoo")

#: (importer prefix, imported prefix, exempt modules): an importer under the first prefix must not
#: import a module under the second (src modules, or outside packages such as lightning).
FORBIDDEN: list[tuple[str, str, frozenset[str]]] = [
    *[("src.models", f"src.{p}", frozenset()) for p in ("datasets", "readers", "synthetic", "tasks")],
    ("src.readers", "src.synthetic", frozenset()),
    ("src.readers", "lightning", frozenset()),
    ("src.readers", "pytorch_lightning", frozenset()),
    ("src.datasets", "lightning", frozenset({"src.datasets.datamodule"})),
    ("src.datasets", "pytorch_lightning", frozenset({"src.datasets.datamodule"})),
    ("src.synthetic", "src.datasets", frozenset()),
    ("src.synthetic", "src.tasks", frozenset()),
    # DESIGN.md: codecs import geometry, not datasets; datasets use codecs only through the object
    # they are handed; runners import tasks and the registry, never each other
    *[("src.codecs", f"src.{p}", frozenset()) for p in ("datasets", "readers", "tasks")],
    *[("src.datasets", f"src.{p}", frozenset()) for p in ("codecs", "models", "tasks")],
    *[(a, b, frozenset()) for a in RUNNERS for b in RUNNERS if a != b],
    # downloads know no tasks or data; only the conversion of published checkpoints builds tasks
    *[
        ("src.hub", f"src.{p}", frozenset({"src.hub.checkpoints"}))
        for p in ("tasks", "datasets", "readers", "synthetic", "inference")
    ],
]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules(root: Path) -> dict[str, Path]:
    """{dotted name: file} of every module under root's src."""
    return {module_name(p, root): p for p in sorted((root / PACKAGE).rglob("*.py"))}


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module ``module`` imports (src modules by their full name, others as written)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(module, path.name == "__init__.py", node)
            for alias in node.names:
                child = f"{target}.{alias.name}"
                found.add(child if child in modules else target)
    found.discard(module)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """{module: the modules it imports} of every module under root's src."""
    modules = source_modules(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The circles among the graph's own nodes: one per strongly connected component with more
    than one module (Tarjan's algorithm, iterative), each as a closed path through it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start] & graph.keys())))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child] & graph.keys()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return [_closed_path(graph, set(c)) for c in components]


def _closed_path(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest circle through the component's first module (breadth-first within it)."""
    first = min(component)
    previous: dict[str, str] = {}
    frontier = [first]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == first:
                    path = [node]
                    while path[-1] != first:
                        path.append(previous[path[-1]])
                    return [*reversed(path), first]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{sorted(component)} is not strongly connected")


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def forbidden_imports(graph: dict[str, set[str]]) -> list[str]:
    """'importer -> ... -> imported (rule)' for every module a rule of FORBIDDEN refuses that an
    importer reaches, directly or through other src modules (the shortest such chain)."""
    found = []
    for importer in sorted(graph):
        rules = [
            (to, f"{src} must not import {to}")
            for src, to, exempt in FORBIDDEN
            if _under(importer, src) and importer not in exempt
        ]
        if not rules:
            continue
        chains = {importer: [importer]}
        frontier = [importer]
        while frontier:
            following = []
            for node in frontier:
                for target in sorted(graph.get(node, ())):
                    if target not in chains:
                        chains[target] = [*chains[node], target]
                        if target in graph:
                            following.append(target)
            frontier = following
        for target, chain in sorted(chains.items()):
            for rule_to, rule in rules:
                if target != importer and _under(target, rule_to):
                    found.append(f"{' -> '.join(chain)} ({rule})")
    return found


def private_imports(root: Path) -> list[str]:
    """'module imports [names] from other' for every private name a src module imports from another."""
    found = []
    for name, path in source_modules(root).items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                target = _absolute(name, path.name == "__init__.py", node)
                private = [a.name for a in node.names if a.name.startswith("_")]
                if private and _under(target, PACKAGE):
                    found.append(f"{name} imports {private} from {target}")
    return found


# --------------------------------------------------------------------------- the tree's graph
@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_the_graph_reads_every_module_and_its_imports(graph: dict[str, set[str]]) -> None:
    assert len(graph) > 50 and "src.datasets.base" in graph
    # top-level, function-level and relative imports all give edges
    assert "src.readers.images" in graph["src.datasets.base"]
    assert "src.synthetic.generate" in graph["src.synthetic"]  # lazy, inside __getattr__
    assert "lightning.pytorch" in graph["src.datasets.datamodule"]


def test_no_import_circle(graph: dict[str, set[str]]) -> None:
    cycles = find_cycles(graph)
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_import_in_a_forbidden_direction(graph: dict[str, set[str]]) -> None:
    found = forbidden_imports(graph)
    assert not found, "forbidden imports:\n" + "\n".join(found)


def test_no_private_name_imported_from_another_module() -> None:
    """A helper another module needs is part of its module's public API (no ``from m import _x``)."""
    found = private_imports(ROOT)
    assert not found, "\n".join(found)


# --------------------------------------------------------------------------- the checker itself
def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_checker_finds_circles_and_forbidden_chains(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "src/__init__.py": "",
            "src/readers/__init__.py": "",
            "src/readers/h36m.py": "def load():\n    from src.synthetic import h36m_writer\n",
            "src/synthetic/__init__.py": "",
            "src/synthetic/h36m_writer.py": "from ..readers.h36m import load\n",
            "src/models/__init__.py": "",
            "src/models/net.py": "import lightning.pytorch\nfrom src.tasks.base import Task\n",
            "src/tasks/__init__.py": "",
            "src/tasks/base.py": "Task = object\n",
            "src/datasets/__init__.py": "",
            "src/datasets/datamodule.py": "import lightning.pytorch as pl\n",
            "src/datasets/topdown.py": "import torch\n",
            "src/readers/coco_images.py": "from .coco import _decode, load\nfrom numpy import _core\n",
        },
    )
    assert private_imports(tmp_path) == ["src.readers.coco_images imports ['_decode'] from src.readers.coco"]
    graph = import_graph(tmp_path)
    assert graph["src.synthetic.h36m_writer"] == {"src.readers.h36m"}
    assert find_cycles(graph) == [["src.readers.h36m", "src.synthetic.h36m_writer", "src.readers.h36m"]]
    assert forbidden_imports(graph) == [
        "src.models.net -> src.tasks.base (src.models must not import src.tasks)",
        "src.readers.h36m -> src.synthetic.h36m_writer (src.readers must not import src.synthetic)",
    ]
    _write(tmp_path, {"src/utils/__init__.py": "", "src/utils/log.py": "import lightning\n"})
    (tmp_path / "src/readers/h36m.py").write_text("from src.utils import log\n")
    (tmp_path / "src/datasets/topdown.py").write_text("from lightning.pytorch import LightningDataModule\n")
    graph = import_graph(tmp_path)
    assert find_cycles(graph) == []
    assert forbidden_imports(graph) == [
        "src.datasets.topdown -> lightning.pytorch (src.datasets must not import lightning)",
        "src.models.net -> src.tasks.base (src.models must not import src.tasks)",
        "src.readers.h36m -> src.utils.log -> lightning (src.readers must not import lightning)",
    ]
