"""The house keeps its floors: the import contracts of ``pyproject.toml`` ([tool.importlinter],
docs/architecture.md says why each holds), and no import cycle anywhere, counting the imports
inside functions that import-linter's layers do not tell apart from the rest."""

from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = [REPO / "runtime" / "ferry", REPO / "operator" / "ferry_operator", REPO / "ui" / "ferry_ui"]


def test_the_import_contracts_hold():
    lint = pathlib.Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.fail(f"{lint} is missing: pip install -e '.[dev]' installs import-linter")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p.parent) for p in PACKAGES)}
    result = subprocess.run([str(lint), "--no-cache"], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def modules(packages: list[pathlib.Path]) -> dict[str, pathlib.Path]:
    """``ferry.data.store`` → its file, for every module of the packages."""
    found = {}
    for package in packages:
        for path in package.rglob("*.py"):
            parts = [package.name, *path.relative_to(package).with_suffix("").parts]
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _exports(tree: ast.Module) -> dict[str, str]:
    """A façade's lazy ``_EXPORTS = {"Name": "submodule"}``: ``from ferry import File`` imports ``ferry.values.files``."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_EXPORTS" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING"


def import_graph(packages: list[pathlib.Path]) -> dict[str, set[str]]:
    """Module → the modules of the packages it imports, wherever the import is (a function, a
    class, a ``try``), except under ``if TYPE_CHECKING:``, which never runs."""
    files = modules(packages)
    trees = {name: ast.parse(path.read_text(), str(path)) for name, path in files.items()}
    facades = {name: _exports(tree) for name, tree in trees.items() if files[name].name == "__init__.py"}

    def known(dotted: str) -> str | None:
        parts = dotted.split(".")
        while parts and ".".join(parts) not in files:
            parts.pop()
        return ".".join(parts) or None

    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, tree in trees.items():
        package = name if files[name].name == "__init__.py" else name.rpartition(".")[0]
        todo = list(ast.iter_child_nodes(tree))
        while todo:
            node = todo.pop()
            if _type_checking(node):
                continue
            todo.extend(ast.iter_child_nodes(node))
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([node.module] if node.module else [])])
                for alias in node.names:
                    lazy = facades.get(base, {}).get(alias.name)
                    targets.append(f"{base}.{lazy}" if lazy else f"{base}.{alias.name}")
            graph[name].update(t for t in map(known, targets) if t and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each group of modules that import each other round (Tarjan's strongly connected components),
    as one path around it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = stack[stack.index(module):]
            del stack[stack.index(module):]
            if len(group) > 1:
                found.append(_round(graph, set(group)))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def _round(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest path from the group's first module back to itself, through the group."""
    start = min(group)
    paths = {start: [start]}
    todo = [start]
    while todo:
        module = todo.pop(0)
        for other in sorted(graph[module] & group):
            if other == start:
                return paths[module] + [start]
            if other not in paths:
                paths[other] = paths[module] + [other]
                todo.append(other)
    return sorted(group)


def test_no_import_cycle_even_through_imports_inside_functions():
    found = cycles(import_graph(PACKAGES))
    assert not found, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in found)


def test_the_cycle_check_sees_an_import_inside_a_function_and_through_a_facade(tmp_path):
    package = tmp_path / "pkg"
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text('_EXPORTS = {"High": "high"}\n')
    (package / "low" / "__init__.py").write_text("")
    (package / "low" / "base.py").write_text("def f():\n    from pkg import High\n")
    (package / "high.py").write_text("from pkg.low import base\nclass High: ...\n")
    (package / "typing_only.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import high\n")
    assert cycles(import_graph([package])) == [["pkg.high", "pkg.low.base", "pkg.high"]]
