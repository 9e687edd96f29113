"""The sign-in site reads its CSRF cookie from any Cookie header (sso/web.py Request.cookie), on every Python.

The site shares its host (or domain) with SmarterTrack and whatever else sets cookies there, so the header
holds cookies that are not ours, some of them not RFC 6265 tokens (JSON, spaces, quotes, no "="). Ours must
still be found, and the first one of its name wins, as browsers send the most specific first.
http.cookies.SimpleCookie is not used: it drops the whole header for one such cookie (3.11 and 3.13 alike),
which would refuse every sign-in as "expired" while a neighbour's cookie is set.
"""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest

from ssobridge.sso.web import Request

NAME = "ssobridge-csrf"
NEIGHBOURS = [
    'prefs={"theme":"dark","lang":"de"}',  # JSON, as many web apps store it
    "note=hello world",  # a space in the value
    'quote="unterminated',
    "path=/",  # a cookie named like an attribute
    "flag",  # no "=" at all (browsers send it)
    "name=Jörg",  # not ASCII (granian hands the header over as Latin-1)
    "ctl=\x01x",
    "=novalue",
    "a=b=c",
]


def cookie(header: str, name: str = NAME) -> str | None:
    return Request({"HTTP_COOKIE": header}).cookie(name)


@pytest.mark.parametrize("neighbour", NEIGHBOURS)
def test_the_csrf_cookie_is_found_beside_any_neighbour_before_or_after_it(neighbour):
    assert cookie(f"{neighbour}; {NAME}=n0nce") == "n0nce"
    assert cookie(f"{NAME}=n0nce; {neighbour}") == "n0nce"


def test_the_whole_hostile_header_at_once_the_first_of_its_name_wins_and_no_cookie_is_none():
    header = "; ".join([*NEIGHBOURS, f"{NAME}=first", f"{NAME}=second"])
    assert cookie(header) == "first"
    assert cookie(header, "prefs") == '{"theme":"dark","lang":"de"}'
    assert cookie("") is None and cookie(f"x{NAME}=1; {NAME}x=2") is None
    assert Request({}).cookie(NAME) is None


@pytest.mark.parametrize("neighbour", ['prefs={"theme":"dark"}', "note=hello world", "path=/", "flag"])
def test_simple_cookie_would_lose_the_csrf_cookie_beside_such_a_neighbour(neighbour):
    """Why Request.cookie is ours: http.cookies drops every cookie of a header it cannot parse whole."""
    jar = SimpleCookie()
    jar.load(f"{neighbour}; {NAME}=n0nce")
    assert NAME not in jar
