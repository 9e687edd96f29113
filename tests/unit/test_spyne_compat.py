"""ssobridge/spyne_compat.py: spyne 2.14's bundled six imports on every supported Python, and the finder
answers only for six's moves, and only while six cannot answer itself."""

from __future__ import annotations

import collections.abc
import sys
import types

import ssobridge.spyne_compat as compat


def test_spyne_and_its_six_moves_import():
    import spyne  # noqa: F401
    from spyne.server.wsgi import WsgiApplication  # noqa: F401  (cgi: legacy-cgi on 3.13)
    from spyne.util.six.moves import urllib
    from spyne.util.six.moves.collections_abc import MutableSet
    assert MutableSet is collections.abc.MutableSet
    assert urllib.parse.quote("a b") == "a%20b"


def test_the_finder_is_installed_once():
    compat.install()
    assert sum(isinstance(finder, compat.SixMovesFinder) for finder in sys.meta_path) == 1


def test_the_finder_ignores_every_other_module():
    finder = compat.SixMovesFinder()
    assert finder.find_spec("json") is None
    assert finder.find_spec("spyne.util.sixteen") is None
    assert finder.find_spec("spyne.util.six.moves_not") is None


def test_the_finder_answers_for_a_move_of_six_14():
    import spyne.util.six  # noqa: F401
    spec = compat.SixMovesFinder().find_spec("spyne.util.six.moves.collections_abc")
    assert spec is not None and spec.name == "spyne.util.six.moves.collections_abc"


def test_the_finder_steps_aside_when_six_answers_find_spec_itself(monkeypatch):
    class NewerSix:  # six 1.16's importer: find_spec of its own
        def find_spec(self, fullname, path=None, target=None):
            return None

        def find_module(self, fullname, path=None):
            return self

    monkeypatch.setitem(sys.modules, compat.SIX, types.SimpleNamespace(_importer=NewerSix()))
    assert compat.SixMovesFinder().find_spec("spyne.util.six.moves.collections_abc") is None
