"""The user's code a task runs, by digest: its module's source and the project modules it imports.

A cacheable task's results are keyed on it (``Task.cache_version``), so editing a helper the task
calls, in its own module or in another module of the project, makes another cache entry instead of
serving the old result. The project is the folder ``ferry run --remote`` packs and the local
executor puts on ``sys.path`` (``code_root``); installed packages, the standard library and
Ferry itself are not part of it. Imports are read from the source (every ``import`` statement,
those inside functions too, as a task runs them), not from what happens to be imported now.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import pathlib
import sys

FERRY = pathlib.Path(__file__).resolve().parents[1]
SKIP = {".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".mypy_cache", "node_modules", ".tox",
        ".hypothesis", ".ruff_cache"}
"""Folders that are no part of the project's code: not hashed here, not packed by ``ferry run --remote``."""
MAX_ARCHIVE = 50 * 1024 * 1024
"""Largest code archive ``ferry run --remote`` packs and a task pod unpacks."""
OUTSIDE = {"site-packages", "dist-packages"}
"""Folders of installed packages, even inside the project folder (a virtualenv in it)."""


def code_root(reference: str) -> pathlib.Path:
    """The directory to put on ``sys.path`` so that ``module`` of ``module:qualname`` imports."""
    module = reference.partition(":")[0]
    loaded = sys.modules.get(module) or (sys.modules["__main__"] if module == _main_name() else None)
    if loaded is None or not getattr(loaded, "__file__", None):
        return pathlib.Path.cwd()
    root = pathlib.Path(loaded.__file__).resolve().parent
    for _ in range(module.count(".")):
        root = root.parent
    return root


def _main_name() -> str:
    main = getattr(sys.modules.get("__main__"), "__file__", "") or ""
    return pathlib.Path(main).stem


def digest(module: str, path: pathlib.Path, root: pathlib.Path) -> str:
    """sha256 of the files of ``module`` (at ``path``) and of the project modules under ``root`` it
    imports, directly or through each other."""
    root, total = root.resolve(), hashlib.sha256()
    for file, data in sorted(project_files(module, path, root).items()):
        name = file.relative_to(root).as_posix() if file.is_relative_to(root) else str(file)  # the module's own
        total.update(f"{name}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return total.hexdigest()


def project_files(module: str, path: pathlib.Path, root: pathlib.Path) -> dict[pathlib.Path, bytes]:
    """The source of ``module`` and of every project module it imports, by path."""
    root = root.resolve()
    found: dict[pathlib.Path, bytes] = {}
    parents = [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)]  # run by its import
    todo = [(module, path.resolve()), *((name, _locate(name, root)) for name in parents if _locate(name, root))]
    while todo:
        name, file = todo.pop()
        if file in found:
            continue
        found[file] = file.read_bytes()
        package = name if file.name == "__init__.py" else name.rpartition(".")[0]
        for imported in _imports(found[file], package):
            located = _locate(imported, root)
            if located and not _outside(located, root, SKIP):
                todo.append((imported, located))
    return found


@functools.lru_cache(maxsize=1024)
def _imports(source: bytes, package: str) -> tuple[str, ...]:
    """Every module ``source`` imports (``a.b`` also imports ``a``; ``from a import b`` may import
    ``a.b``), relative ones resolved against ``package``. Cached by content: reading the files is
    cheap, parsing them less so."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # the task process will say so; a key of its bytes alone is still right
        return ()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                if node.level > len(parts):
                    continue  # beyond the top package: the import fails when the task runs
                base = ".".join([*parts[:len(parts) - node.level + 1], *([base] if base else [])])
            if base:
                names.add(base)
            names.update(f"{base}.{alias.name}" if base else alias.name for alias in node.names if alias.name != "*")
    return tuple(sorted({".".join(name.split(".")[:i + 1]) for name in names for i in range(name.count(".") + 1)}))


def _locate(name: str, root: pathlib.Path) -> pathlib.Path | None:
    """The file under ``root`` that ``import name`` loads when ``root`` comes first on ``sys.path``."""
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.resolve()
    return None


def _outside(file: pathlib.Path, root: pathlib.Path, skipped: set[str]) -> bool:
    """Whether ``file`` is not the project's own: Ferry's, an installed package's, or in a folder
    the code archive leaves out (a virtualenv, ``__pycache__``)."""
    if file.is_relative_to(FERRY):
        return True
    try:
        parts = set(file.relative_to(root).parts)
    except ValueError:  # a link out of the project
        return True
    return bool(parts & (skipped | OUTSIDE))
