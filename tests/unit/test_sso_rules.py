"""The sign-in page's pure rules: where a ReturnUrl may lead, the CSRF token, the cookies' attributes."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ssobridge.sso.rules import Csrf, clear_cookie, return_target, set_cookie
from ssobridge.sso.web import _contrast, _readable_on

PORTAL = "https://helpdesk.example.com/"
HOSTS = ("intranet.example.com", "127.0.0.1:8443")


@pytest.mark.parametrize("return_url, expected", [
    # followed: a path on SmarterTrack's site, or a URL on an allowed host
    ("/Main/Default.aspx", "https://helpdesk.example.com/Main/Default.aspx"),
    ("/Main/frmTicket.aspx?id=7&x=%2F", "https://helpdesk.example.com/Main/frmTicket.aspx?id=7&x=%2F"),
    ("Main/Default.aspx", "https://helpdesk.example.com/Main/Default.aspx"),
    ("https://helpdesk.example.com/Main/", "https://helpdesk.example.com/Main/"),
    ("https://HELPDESK.example.com:8443/x", "https://HELPDESK.example.com:8443/x"),
    ("http://intranet.example.com/kb", "http://intranet.example.com/kb"),
    ("https://127.0.0.1:8443/landed", "https://127.0.0.1:8443/landed"),
    ("/search?q=jörg", "https://helpdesk.example.com/search?q=j%C3%B6rg"),
    # refused: portal_url instead
    (None, PORTAL),
    ("", PORTAL),
    ("https://evil.example/", PORTAL),
    ("//evil.example/", PORTAL),
    ("///evil.example/", PORTAL),
    ("/\\evil.example/", PORTAL),
    ("\\\\evil.example/", PORTAL),
    ("/\t/evil.example/", PORTAL),
    ("/\n/evil.example/", PORTAL),
    (" //evil.example/", PORTAL),
    ("javascript:alert(1)", PORTAL),
    ("JavaScript:alert(1)", PORTAL),
    ("data:text/html,<script>alert(1)</script>", PORTAL),
    ("vbscript:msgbox", PORTAL),
    ("ftp://helpdesk.example.com/", PORTAL),
    ("https:evil.example", PORTAL),
    ("https://helpdesk.example.com@evil.example/", PORTAL),
    ("https://user:pw@helpdesk.example.com/", PORTAL),
    ("https://helpdesk.example.com.evil.example/", PORTAL),
    ("https://evilhelpdesk.example.com/", PORTAL),
    ("https://127.0.0.1:9999/", PORTAL),
    ("https://127.0.0.1/", PORTAL),
    ("https://helpdesk.example.com:notaport/", PORTAL),
    ("https://evil.example\u3002com/", PORTAL),
    ("https://[::1]/", PORTAL),
])
def test_return_url_is_followed_only_to_the_portal_and_return_hosts(return_url, expected):
    assert return_target(return_url, PORTAL, HOSTS) == expected


def test_a_return_host_without_port_allows_any_port():
    assert return_target("https://intranet.example.com:444/a", PORTAL, HOSTS) == "https://intranet.example.com:444/a"


KEY = b"k" * 32
NONCE = "n" * 32


def test_csrf_token_is_valid_with_its_own_nonce_until_it_expires():
    csrf = Csrf(KEY, seconds=1200)
    token = csrf.token(NONCE, now=1_000_000)
    assert csrf.valid(NONCE, token, now=1_000_000)
    assert csrf.valid(NONCE, token, now=1_001_200)
    assert not csrf.valid(NONCE, token, now=1_001_201)  # expired
    assert not csrf.valid(NONCE, token, now=999_999)  # from the future


GOOD = "the token issued for NONCE"


@pytest.mark.parametrize("nonce, token", [
    (None, GOOD), ("", GOOD), ("m" * 32, GOOD), ("short", GOOD), (NONCE, None), (NONCE, ""),
    (NONCE, "1000001." + "0" * 64), (NONCE, "abc.def"), (NONCE, "1000000"),
])
def test_csrf_refuses_a_missing_or_mismatched_cookie_or_field(nonce, token):
    csrf = Csrf(KEY)
    assert not csrf.valid(nonce, csrf.token(NONCE, now=1_000_000) if token is GOOD else token, now=1_000_000)


def test_csrf_token_from_another_hosts_secret_is_refused():
    assert not Csrf(b"other" * 8).valid(NONCE, Csrf(KEY).token(NONCE, now=1), now=1)


def test_csrf_keeps_a_well_formed_nonce_and_replaces_anything_else():
    assert Csrf.nonce(NONCE) == NONCE
    fresh = Csrf.nonce("bad;value")
    assert fresh != "bad;value" and len(fresh) == 32
    assert Csrf.nonce(None) != Csrf.nonce(None)


def test_csrf_cookie_is_strict_httponly_and_host_only_over_https():
    csrf = Csrf(KEY, seconds=1200)
    assert csrf.set_cookie(NONCE, https=True) == \
        f"__Host-ssobridge-csrf={NONCE}; Max-Age=1200; Path=/; Secure; HttpOnly; SameSite=Strict"
    assert csrf.set_cookie(NONCE, https=False) == \
        f"ssobridge-csrf={NONCE}; Max-Age=1200; Path=/; HttpOnly; SameSite=Strict"


EXPIRES = datetime(2031, 5, 6, 7, 8, 9, tzinfo=timezone.utc)


def test_auth_cookie_attributes_over_https():
    assert set_cookie(".ASPXAUTH", "ABC123", EXPIRES, "example.com", "/", https=True) == \
        ".ASPXAUTH=ABC123; Expires=Tue, 06 May 2031 07:08:09 GMT; Domain=example.com; Path=/; Secure; " \
        "HttpOnly; SameSite=Lax"


def test_auth_cookie_over_http_is_not_secure_and_without_domain_is_host_only():
    assert set_cookie("ST", "AB", EXPIRES, "", "/helpdesk", https=False) == \
        "ST=AB; Expires=Tue, 06 May 2031 07:08:09 GMT; Path=/helpdesk; HttpOnly; SameSite=Lax"


def test_logout_cookie_is_the_same_cookie_empty_and_expired():
    assert clear_cookie(".ASPXAUTH", "example.com", "/", https=True) == \
        ".ASPXAUTH=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Domain=example.com; Max-Age=0; Path=/; Secure; " \
        "HttpOnly; SameSite=Lax"


@pytest.mark.parametrize("accent, text", [("#1f5fa8", "#ffffff"), ("#ffd200", "#1b1f24"), ("#000", "#ffffff"),
                                          ("#fff", "#1b1f24")])
def test_button_text_contrasts_with_the_accent_colour(accent, text):
    assert _readable_on(accent) == text
    assert _contrast(accent, text) >= 4.5
