"""The package's structure: no module imports itself back through others (lazy imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

import durable_graph

PACKAGE = Path(durable_graph.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _import_graph() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports, at the top or inside functions."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    edges.add(submodule if submodule in modules else node.module)
            elif isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        if module in path:
            return path[path.index(module) :] + [module]
        if module in done:
            return None
        path.append(module)
        for imported in sorted(graph[module]):
            found = visit(imported)
            if found:
                return found
        path.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        found = visit(module)
        if found:
            return found
    return None


def test_no_import_cycle_in_the_package() -> None:
    cycle = _cycle(_import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_backends_do_not_import_the_factory() -> None:
    graph = _import_graph()
    for backend in ("postgres", "sqlite", "memory"):
        for module, imported in graph.items():
            if module.startswith(f"durable_graph.checkpointers.{backend}"):
                assert "durable_graph.checkpointers.factory" not in imported, module
                assert "durable_graph.checkpointers" not in imported, module


def test_runs_and_the_web_inbox_do_not_import_the_cli() -> None:
    for module, imported in _import_graph().items():
        if module.startswith(("durable_graph.runs", "durable_graph.web")):
            assert not {i for i in imported if i.startswith("durable_graph.cli")}, module
        if module.startswith("durable_graph.runs"):
            assert not {i for i in imported if i.startswith("durable_graph.web")}, module
