"""The shape of the code: layers that import one way, ldap3 kept to the directory layer, modules of one screenful.

Read from the source with ast, so function-level imports count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ssobridge"
MAX_MODULE_LINES = 400
# Only these may talk LDAP: the directory layer, and the demo's in-memory sample directory.
LDAP3_ALLOWED = ("ssobridge.directory", "ssobridge.demo")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path) -> set[str]:
    """Every module this one imports, anywhere in it (top level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            # "from . import x" may import a submodule x.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def internal_graph() -> dict[str, set[str]]:
    known = modules()
    graph = {}
    for name, path in known.items():
        targets = set()
        for imported in imports_of(name, path):
            # "a.b.c" imported means a.b.c if it is a module, else the package a.b.
            while imported and imported not in known:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and not name.startswith(imported + "."):
                targets.add(imported)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_in_ssobridge():
    cycle = find_cycle(internal_graph())
    assert cycle is None, " -> ".join(cycle)


def test_ldap3_is_imported_only_by_the_directory_layer_and_the_demo():
    offenders = sorted(name for name, path in modules().items()
                       if any(i == "ldap3" or i.startswith("ldap3.") for i in imports_of(name, path))
                       and not name.startswith(LDAP3_ALLOWED))
    assert offenders == []


@pytest.mark.parametrize("name", sorted(modules()))
def test_module_fits_the_size_limit(name):
    lines = len(modules()[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{name}: {lines} lines"


def test_no_test_module_imports_another_test_module():
    """Shared helpers live in tests/support/; a test module is never a library for another."""
    tests = PACKAGE.parent / "tests"
    offenders = []
    for path in sorted(tests.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(tests)} imports {n}" for n in names
                          if any(part.startswith("test_") for part in n.split("."))]
    assert offenders == []
