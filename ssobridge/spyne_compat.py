"""spyne 2.14 on Python 3.12 and 3.13: the one piece of code that exists only for an unreleased fix.

Why: spyne 2.14.0 (its newest release, 2022) vendors six 1.14 as spyne.util.six. That six serves
`spyne.util.six.moves*` through a meta-path importer with only find_module/load_module, and Python 3.12
stopped calling those (PEP 451's find_spec is the only protocol left), so `import spyne` fails there with
"No module named 'spyne.util.six.moves'" (arskom/spyne issues 700, 708, 711). The finder below answers
find_spec for those names on six's behalf and lets six's own importer build the module, exactly as
Python 3.11 did through its fallback. On 3.13 spyne also needs the removed `cgi` module (issue 712): the
`legacy-cgi` distribution provides it (a dependency in pyproject.toml for 3.13+ only); nothing to do here.

When it can go: with a spyne release that vendors six 1.16 (spyne master, PR 704) and no longer imports cgi
(PR 713). Until then ssobridge/__init__.py imports this module, so it is in place before anything imports
spyne. It does nothing when six's importer already has find_spec (a newer six).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

SIX = "spyne.util.six"
MOVES = SIX + ".moves"


class _SixLoader(importlib.abc.Loader):
    """Hands the module six would have loaded under the old protocol to the import system."""

    def __init__(self, importer):
        self._importer = importer

    def create_module(self, spec):
        return self._importer.load_module(spec.name)  # six's own: resolves the move, fills sys.modules

    def exec_module(self, module) -> None:
        pass  # six's load_module has already made the module whole


class SixMovesFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != MOVES and not fullname.startswith(MOVES + "."):
            return None
        importer = getattr(sys.modules.get(SIX), "_importer", None)
        if importer is None or hasattr(importer, "find_spec") or importer.find_module(fullname) is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _SixLoader(importer),
                                              is_package=importer.is_package(fullname))


def install() -> None:
    if not any(isinstance(finder, SixMovesFinder) for finder in sys.meta_path):
        sys.meta_path.append(SixMovesFinder())


install()
