"""The architecture holds (docs/architecture.md): layered imports, no cycles, no hidden imports.

* the import-linter contracts of pyproject.toml are kept (``lint-imports``);
* no two project modules import each other, directly or through others (no file cycles);
* a project import inside a function is a declared lazy import (a ``# lazy: reason`` comment
  just above it), never a way to hide a cycle or a layer violation from the linter;
* no ``importlib.import_module`` / ``__import__`` of project modules.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "cli",
    "benchmarks",
    "flows",
    "services",
    "migrations",
    "db",
    "mocks",
    "survey",
    "models",
    "astro",
)


def _sources() -> list[Path]:
    return sorted(
        p
        for pkg in PACKAGES
        for p in (ROOT / pkg).rglob("*.py")
        if "versions" not in p.parts  # Alembic revisions import only alembic and sqlalchemy
    )


def test_import_linter_contracts_are_kept() -> None:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(exe).exists():
        pytest.fail("import-linter is a dev dependency: pip install -e '.[dev]'")
    proc = subprocess.run(
        [exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def _project_module(name: str | None) -> bool:
    return bool(name) and name.split(".")[0] in PACKAGES


def _is_import_line(line: str) -> bool:
    s = line.strip()
    return s.startswith(("from ", "import ", ")")) or (s.endswith(",") and " " not in s.strip(","))


def test_function_local_project_imports_are_declared_lazy() -> None:
    undeclared = []
    for path in _sources():
        lines = path.read_text().split("\n")
        tree = ast.parse("\n".join(lines))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if not isinstance(node, ast.Import | ast.ImportFrom):
                    continue
                name = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                if getattr(node, "level", 0) or not _project_module(name):
                    continue
                i = node.lineno - 2
                while i >= 0 and _is_import_line(lines[i]):
                    i -= 1
                if i < 0 or "# lazy:" not in lines[i]:
                    undeclared.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert not undeclared, "function-local imports without a '# lazy: reason':\n" + "\n".join(
        undeclared
    )


def test_no_dynamic_imports_of_project_modules() -> None:
    found = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in ("import_module", "__import__") and node.args:
                arg = node.args[0]
                if not isinstance(arg, ast.Constant) or _project_module(str(arg.value)):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, f"dynamic imports hide dependencies from the linter: {found}"


def test_no_import_cycles_between_files() -> None:
    grimp = pytest.importorskip("grimp")
    sys.path.insert(0, str(ROOT))
    try:
        graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    finally:
        sys.path.remove(str(ROOT))
    adj = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    # Tarjan's strongly connected components, iteratively
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0
    for root in sorted(adj):
        if root in index:
            continue
        work = [(root, iter(sorted(adj[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(adj[child]))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    cycles.append(sorted(comp))
    assert not cycles, f"import cycles: {cycles}"
