"""ssobridge runs on Windows too (the SmarterTrack server): every POSIX-only call sits under a guard.

Read from the source with ast: a POSIX-only module, attribute or signal must be inside an `if` (or a
conditional expression, or an `and`/`or`) that tests sys.platform, os.name, hasattr or getattr, or an import
inside try/except ImportError. docs/deployment.md lists each one and its guard.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ssobridge"

POSIX_MODULES = {"fcntl", "pwd", "grp", "resource", "termios", "syslog", "posix"}
POSIX_ATTRIBUTES = {
    "os": {"fchmod", "fchown", "chown", "lchown", "getuid", "geteuid", "getgid", "getegid", "setuid", "setgid",
           "fork", "setsid", "killpg", "getpgid", "kill", "mkfifo", "statvfs", "O_NOFOLLOW", "O_CLOEXEC",
           "getloadavg", "sched_getaffinity", "nice", "WNOHANG"},
    "signal": {"SIGHUP", "SIGUSR1", "SIGUSR2", "SIGQUIT", "SIGKILL", "SIGCHLD", "SIGALRM", "SIGPIPE", "alarm",
               "setitimer", "pthread_kill", "pthread_sigmask", "sigwait"},
    "socket": {"AF_UNIX", "SO_REUSEPORT"},
    "ctypes": {"CDLL"},
    "time": {"tzset"},
}
GUARD_NAMES = ("sys.platform", "os.name", "hasattr(", "getattr(")
# Guarded elsewhere, with the reason.
GUARDED_ELSEWHERE = {
    ("events/delivery.py", "socket.AF_UNIX"): "config/sections.py refuses a unix-socket syslog address on Windows",
}


def posix_only_uses(tree: ast.AST) -> list[tuple[ast.AST, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node, alias.name) for alias in node.names if alias.name in POSIX_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module in POSIX_MODULES and not node.level:
            found.append((node, node.module))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                node.attr in POSIX_ATTRIBUTES.get(node.value.id, ()):
            found.append((node, f"{node.value.id}.{node.attr}"))
    return found


def is_guarded(node: ast.AST, parents: dict[ast.AST, ast.AST], source: str) -> bool:
    child, parent = node, parents.get(node)
    while parent is not None:
        tests = []
        if isinstance(parent, (ast.If, ast.IfExp, ast.While)) and child is not parent.test:
            tests = [parent.test]
        elif isinstance(parent, ast.BoolOp):
            tests = parent.values[:parent.values.index(child)]
        elif isinstance(parent, ast.Try) and child in parent.body:
            if any("ImportError" in (ast.get_source_segment(source, h.type) if h.type else "") for h in parent.handlers):
                return True
        if any(guard in (ast.get_source_segment(source, test) or "") for test in tests for guard in GUARD_NAMES):
            return True
        child, parent = parent, parents.get(parent)
    return False


def unguarded() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        relative = path.relative_to(PACKAGE).as_posix()
        for node, name in posix_only_uses(tree):
            if (relative, name) not in GUARDED_ELSEWHERE and not is_guarded(node, parents, source):
                found.append(f"ssobridge/{relative}:{node.lineno}: {name}")
    return found


def test_every_posix_only_call_is_guarded():
    assert unguarded() == []


def test_the_guard_finder_tells_guarded_from_unguarded():
    source = ("import os, signal, sys\n"
              "os.getuid()\n"
              "if sys.platform != 'win32':\n    os.getuid()\n"
              "x = signal.SIGHUP if hasattr(signal, 'SIGHUP') else None\n"
              "y = hasattr(os, 'fchmod') and os.fchmod(1, 0o600)\n"
              "try:\n    import fcntl\nexcept ImportError:\n    fcntl = None\n"
              "signal.signal(signal.SIGHUP, print)\n")
    tree = ast.parse(source)
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    assert sorted((node.lineno, name, is_guarded(node, parents, source)) for node, name in posix_only_uses(tree)) \
        == [(2, "os.getuid", False), (4, "os.getuid", True), (5, "signal.SIGHUP", True), (6, "os.fchmod", True),
            (8, "fcntl", True), (11, "signal.SIGHUP", False)]
