"""The first-party import graph, read from the source with `ast` (nothing is imported).

Every import statement counts: top-level ones, those under `if TYPE_CHECKING:` and those inside
functions, because each is a dependency a reader has to follow and a cycle waiting to happen.
`from pkg import name` points at the submodule `pkg.name` when there is one, else at `pkg`
(its `__init__`). `tests/test_imports.py` checks the graph.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
PACKAGES: Final = (
    "agents",
    "bench",
    "config",
    "control_api",
    "core",
    "media",
    "pipeline",
    "sip",
    "voicenode",
)

Graph = Mapping[str, frozenset[str]]


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Module name → file, for every `.py` file of the first-party packages."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(path, root)] = path
    return found


def _base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The module a `from ... import` names, with relative imports resolved."""
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")
    if not is_package:
        parts.pop()
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, node.module] if node.module else parts)


def _targets(module: str, is_package: bool, tree: ast.AST, known: set[str]) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, is_package, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield sub if sub in known else base


def _owner(name: str, known: set[str]) -> str | None:
    """The first-party module `name` is, or the nearest package above it (`a.b.C` → `a.b`)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def build_graph(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, frozenset[str]]:
    """Module → the first-party modules it imports (itself excluded)."""
    files = source_files(root, packages)
    known = set(files)
    graph: dict[str, frozenset[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        edges = {_owner(target, known) for target in _targets(module, is_package, tree, known)}
        graph[module] = frozenset(e for e in edges if e is not None and e != module)
    return graph


def strongly_connected(graph: Graph) -> list[list[str]]:
    """The graph's cycles as strongly connected components of two or more modules (Tarjan,
    iterative), each sorted; the list sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def cycle_in(graph: Graph, component: list[str]) -> list[str]:
    """One cycle through a component's first module, as a path `a → b → ... → a`."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & members):
            if child == start:
                return [*paths[node], start]
            if child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def package_of(module: str) -> str:
    return module.partition(".")[0]
