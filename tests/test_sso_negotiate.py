"""The Negotiate branch of /sso/login, in process, against the real Samba AD: a fake acceptor of the Kerberos
acceptor's shape (ssobridge/sso/kerberos.py: accept(header) -> KerberosResult(principal, response_token,
error), challenge_header()) stands in for GSSAPI; the directory lookup, GetSignInCookieInfo's account check
and the cookie are the real ones. DirectorySet.find_principal comes with the Kerberos module; PrincipalLookup
stands in for it here, finding the principal as a UPN.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from markupsafe import escape

from ssobridge.app import shield
from ssobridge.config import load
from ssobridge.directory import DirectorySet
from ssobridge.providers.login import LoginProvider
from ssobridge.sso.cookie import read_cookie
from ssobridge.sso.web import KERBEROS_FAILED, KERBEROS_ONLY, NO_ACCOUNT, SIGN_IN_ATTRIBUTES, SignIn
from tests.support.services import MESSAGES, ad_config
from tests.support.sso import sso_toml

PORTAL = "https://helpdesk.example.test/"


@dataclass(frozen=True)
class KerberosResult:
    principal: str | None
    response_token: str | None
    error: str | None


class FakeAcceptor:
    """Token "good-<user>" is <user>@EXAMPLE.TEST with the mutual token "reply"; anything else fails."""

    def accept(self, authorization_header: str | None) -> KerberosResult:
        token = (authorization_header or "").partition(" ")[2]
        if token.startswith("good-"):
            return KerberosResult(f"{token[5:]}@EXAMPLE.TEST", "reply", None)
        return KerberosResult(None, None, "defective token")

    def challenge_header(self) -> tuple[str, str]:
        return ("WWW-Authenticate", "Negotiate")


class PrincipalLookup(DirectorySet):
    def find_principal(self, principal: str):
        return self.find(username=principal)


def sign_in_app(samba_ad, folder, **extra) -> tuple[SignIn, object]:
    section, key = sso_toml(PORTAL, **extra)
    path = folder / "ssobridge.toml"
    path.write_text('[smartertrack]\nweb_service_password = "x"\n' + ad_config(samba_ad) + section, encoding="utf-8")
    config = load(str(path))
    directories = PrincipalLookup.from_settings(config.directories, SIGN_IN_ATTRIBUTES, data_dir=str(folder))
    login = LoginProvider(directories, config.messages, config.login, shield(config))
    return SignIn(config.sso, login, directories, str(folder), acceptor=FakeAcceptor()), key


def get(app: SignIn, path: str, authorization: str | None = None) -> tuple[str, list, str]:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path.partition("?")[0], "QUERY_STRING": path.partition("?")[2],
               "wsgi.url_scheme": "https", "wsgi.input": io.BytesIO(b"")}
    if authorization:
        environ["HTTP_AUTHORIZATION"] = authorization
    answer = []
    body = app(environ, lambda status, headers: answer.extend([status, headers]))
    return answer[0], answer[1], b"".join(body).decode("utf-8")


def headers_named(headers: list, name: str) -> list[str]:
    return [value for key, value in headers if key == name]


@pytest.fixture(scope="module")
def negotiate(samba_ad, tmp_path_factory):
    app, key = sign_in_app(samba_ad, tmp_path_factory.mktemp("negotiate"))
    yield app, key
    app.directories.close()


def test_without_a_token_the_answer_is_401_negotiate_with_the_form_as_fallback(negotiate):
    status, headers, body = get(negotiate[0], "/sso/login?ReturnUrl=%2FMain%2F")
    assert status == "401 Unauthorized"
    assert headers_named(headers, "WWW-Authenticate") == ["Negotiate"]
    assert '<input id="username" name="username"' in body and 'name="ReturnUrl" value="/Main/"' in body


def test_a_kerberos_ticket_gets_the_cookie_without_a_password(negotiate):
    app, key = negotiate
    status, headers, _ = get(app, "/sso/login?ReturnUrl=%2FMain%2F", "Negotiate good-jdoe")
    assert status == "302 Found"
    assert headers_named(headers, "Location") == ["https://helpdesk.example.test/Main/"]
    assert headers_named(headers, "WWW-Authenticate") == ["Negotiate reply"]
    cookie = headers_named(headers, "Set-Cookie")[0]
    assert cookie.endswith("; Path=/; Secure; HttpOnly; SameSite=Lax")
    assert read_cookie(key, cookie.split(";")[0].partition("=")[2]).name == "EXAMPLE\\jdoe"


@pytest.mark.parametrize("user, reason", [("disabled", "disabled"), ("expired", "account_expired")])
def test_an_inactive_account_with_a_ticket_gets_no_cookie_and_a_page_saying_why(negotiate, user, reason):
    status, headers, body = get(negotiate[0], "/sso/login", f"Negotiate good-{user}")
    assert status == "403 Forbidden"
    assert headers_named(headers, "Set-Cookie") == []
    assert f'<p class="message" role="alert">{MESSAGES[reason]}</p>' in body


@pytest.mark.parametrize("token, note", [("Negotiate garbage", KERBEROS_FAILED), ("Negotiate good-nobody", NO_ACCOUNT)])
def test_a_failed_token_or_unknown_principal_falls_back_to_the_form(negotiate, token, note):
    status, headers, body = get(negotiate[0], "/sso/login", token)
    assert status == "200 OK"
    assert [c for c in headers_named(headers, "Set-Cookie") if c.startswith(".ASPXAUTH")] == []
    assert f'<p class="note" id="note">{note}</p>' in body and '<input id="password"' in body


def test_kerberos_only_shows_no_form(samba_ad, tmp_path):
    keytab = tmp_path / "http.keytab"  # read by the real acceptor only; the fake one stands in
    keytab.write_bytes(b"")
    app, _ = sign_in_app(samba_ad, tmp_path, form=False, kerberos_keytab=str(keytab))
    try:
        status, headers, body = get(app, "/sso/login")
        assert status == "401 Unauthorized" and headers_named(headers, "WWW-Authenticate") == ["Negotiate"]
        assert str(escape(KERBEROS_ONLY)) in body and "<form" not in body
    finally:
        app.directories.close()
