"""The shape of the code: layers that import one way, ldap3 kept to the directory layer, SQL kept to the
stores, no writes to another library's private attributes, modules of one screenful (docs/design.md).

Read from the source with ast, so function-level imports count too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ssobridge"
MAX_MODULE_LINES = 400
# Only these may talk LDAP: the directory layer, and the demo's in-memory sample directory.
LDAP3_ALLOWED = ("ssobridge.directory", "ssobridge.demo")

# The layers, from the leaves up to the command line (a unit is a top-level module or package). An import
# goes to the unit itself or to a lower rank, never up and never sideways: two units of one rank know
# nothing of each other. The ranks are those of the package as it is; a new unit gets the rank its
# imports give it (one above the highest it imports).
LAYERS = (
    ("ssobridge.spyne_compat", "ssobridge.mapping", "ssobridge.metrics", "ssobridge.operations", "ssobridge.audit",
     "ssobridge.cards"),
    ("ssobridge.policy",),
    ("ssobridge.config",),
    ("ssobridge.directory", "ssobridge.events", "ssobridge.logs"),
    ("ssobridge.lockout", "ssobridge.certificates", "ssobridge.health", "ssobridge.demo"),
    ("ssobridge.providers",),
    ("ssobridge.wire", "ssobridge.sso"),
    ("ssobridge.app",),
    ("ssobridge.diagnose", "ssobridge.reload"),
    ("ssobridge.serve", "ssobridge.init"),
    ("ssobridge.cli",),
    ("ssobridge.__main__", "ssobridge"),
)

# SQL is written in modules named store.py only, whatever the package: a statement, or a call that runs one.
STORE_MODULE = "store.py"
SQL_STATEMENT = re.compile(r"\b(SELECT\b.*\bFROM|INSERT\b(\s+OR\s+[A-Z]+)?\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|"
                           r"(CREATE|DROP)\s+(UNIQUE\s+)?(TABLE|INDEX|VIEW|TRIGGER)|ALTER\s+TABLE|PRAGMA\s+\w+)\b"
                           r"|^\s*(BEGIN(\s+(IMMEDIATE|EXCLUSIVE|DEFERRED))?|COMMIT|ROLLBACK)\s*$", re.S)
SQL_CALLS = ("execute", "executemany", "executescript")

# Another library's private attributes are never written, but here: directory/ber.py sets ldap3 2.9.1's own
# state where ldap3 would (its docstring says why; tests/test_ber_ldap3_state.py checks that state's shape).
PRIVATE_WRITES_ALLOWED = {
    ("ssobridge.directory.ber", "connection._entries"),
    ("ssobridge.directory.ber", "connection._deferred_bind"),
    ("ssobridge.directory.ber", "connection._bind_controls"),
    ("ssobridge.directory.ber", "connection.strategy._outstanding"),
}


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


def unit_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def climbing_imports(graph: dict[str, set[str]], layers=LAYERS) -> list[str]:
    """Each import that goes to the same or a higher rank than its own unit's, and each unit without a rank."""
    rank = {unit: number for number, units in enumerate(layers) for unit in units}
    found = []
    for name, targets in sorted(graph.items()):
        if unit_of(name) not in rank:
            found.append(f"{unit_of(name)} has no rank in LAYERS: add it one above the highest unit it imports")
            continue
        for target in sorted(targets):
            here, there = unit_of(name), unit_of(target)
            if here != there and rank.get(there, len(layers)) >= rank[here]:
                found.append(f"{name} (rank {rank[here]}) imports {target} (rank {rank.get(there, '?')})")
    return found


def test_climbing_imports_names_the_import_that_climbs_or_goes_sideways():
    layers = (("p.low",), ("p.mid", "p.side"), ("p.top",))
    graph = {"p.low.a": {"p.mid.b"}, "p.mid.b": {"p.low", "p.mid.c"}, "p.side": {"p.mid.b"}, "p.top": {"p.low.a"},
             "p.new": set()}
    assert climbing_imports(graph, layers) == [
        "p.low.a (rank 0) imports p.mid.b (rank 1)", "p.new has no rank in LAYERS: add it one above the highest "
        "unit it imports", "p.side (rank 1) imports p.mid.b (rank 1)"]


def test_no_import_climbs_the_layers():
    climbing = climbing_imports(internal_graph())
    assert not climbing, "imports against LAYERS:\n" + "\n".join(climbing)


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def sql_outside_stores() -> list[str]:
    """Each SQL statement (a string) and each call running one (cursor.execute, sqlite3.connect) outside a store."""
    found = []
    for name, path in modules().items():
        if path.name == STORE_MODULE:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings \
                    and SQL_STATEMENT.search(node.value):
                found.append((name, node.lineno, f"{node.value[:60]!r}"))
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
                    node.func.attr in SQL_CALLS or ast.unparse(node.func) == "sqlite3.connect"):
                found.append((name, node.lineno, f"{ast.unparse(node.func)}(...)"))
    return [f"{name}:{line}: {text}" for name, line, text in sorted(found)]


@pytest.mark.parametrize("text, sql", [
    ("SELECT COUNT(*) FROM lockout_failures WHERE account = ?", True), ("INSERT OR IGNORE INTO t VALUES (?)", True),
    ("UPDATE t SET a = 1", True), ("DELETE FROM t", True), ("CREATE TABLE IF NOT EXISTS t (a)", True),
    ("PRAGMA journal_mode=WAL", True), ("BEGIN IMMEDIATE", True), ("COMMIT", True), ("  ROLLBACK ", True),
    ("-----BEGIN PRIVATE KEY-----", False), ("Select a department from the list", False), ("DELETE", False),
    ("GET, HEAD, POST, DELETE", False), ("the user's UPDATE rights", False),
])
def test_an_sql_statement_is_told_from_other_text(text, sql):
    assert bool(SQL_STATEMENT.search(text)) is sql


def test_sql_is_written_only_in_store_modules():
    found = sql_outside_stores()
    assert not found, f"SQL outside a {STORE_MODULE}:\n" + "\n".join(found)


def _ours(tree: ast.AST, package: str) -> set[str]:
    """self, cls, and the names this module binds to modules of ssobridge."""
    names = {"self", "cls"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(package)):
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.asname or alias.name for alias in node.names if alias.name.startswith(package))
    return names


def private_writes(name: str, source: str, package: str = "ssobridge") -> list[str]:
    """Each assignment to (or deletion of) x._name, also through a subscript, and each setattr(x, "_name", ...),
    where x is not self, cls or a module of ours: another object's private state."""
    tree = ast.parse(source)
    ours, found = _ours(tree, package), []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else \
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr") \
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
            targets = [ast.Attribute(value=node.args[0], attr=str(node.args[1].value))]
        for target in targets:
            while isinstance(target, ast.Subscript):
                target = target.value
            if isinstance(target, ast.Attribute) and target.attr.startswith("_") and not target.attr.startswith("__") \
                    and ast.unparse(target.value) not in ours:
                found.append((node.lineno, ast.unparse(target)))
    return [f"{name}:{line}: {text}" for line, text in sorted(found) if (name, text) not in PRIVATE_WRITES_ALLOWED]


def test_private_writes_finds_another_objects_private_attribute_and_spares_our_own():
    source = ("from . import metrics\nimport ssobridge.audit\nclass A:\n    def f(self, other):\n"
              "        self._mine = 1\n        metrics._registry = 2\n        ssobridge.audit._x = 3\n"
              "        other._theirs = 4\n        other.inner._state[1] = 5\n        setattr(other, '_x', 6)\n"
              "        self.helper._x += 7\n        other.__dict__ = {}\n        other.public = 8\n")
    assert private_writes("m", source) == ["m:8: other._theirs", "m:9: other.inner._state", "m:10: other._x",
                                           "m:11: self.helper._x"]


def test_no_module_writes_another_librarys_private_attributes_but_ber_py_as_listed():
    found = [write for name, path in modules().items() for write in private_writes(name, path.read_text("utf-8"))]
    assert not found, "writes to another object's private attributes:\n" + "\n".join(found)
    allowed_there = {text for module, text in PRIVATE_WRITES_ALLOWED}
    ber = ast.unparse(ast.parse(modules()["ssobridge.directory.ber"].read_text(encoding="utf-8")))
    assert all(text in ber for text in allowed_there)  # the exception list names what ber.py does write


def design_tree(text: str) -> set[str]:
    """The modules docs/design.md's tree lists: "  name.py" at the top, "    name.py" under "  package/"."""
    block = text.split("The whole tree", 1)[1].split("```", 2)[1]
    listed, package = set(), None
    for line in block.splitlines():
        if match := re.match(r"^  (\w+)/", line):
            package = match.group(1)
        elif match := re.match(r"^  (\w+\.py) ", line):
            listed.add(match.group(1))
        elif (match := re.match(r"^    (\w+\.py) ", line)) and package:
            listed.add(f"{package}/{match.group(1)}")
    return listed


def test_design_md_lists_every_module_and_no_other():
    package = Path(__file__).resolve().parents[2] / "ssobridge"
    modules = {str(path.relative_to(package)) for path in package.rglob("*.py")}
    listed = design_tree((package.parent / "docs" / "design.md").read_text(encoding="utf-8"))
    assert (sorted(modules - listed), sorted(listed - modules)) == ([], [])


def test_design_tree_reads_packages_and_top_level_modules():
    text = "The whole tree\n```\nssobridge/\n  app.py        x\n  cards/\n    store.py    y\n```\n"
    assert design_tree(text) == {"app.py", "cards/store.py"}
