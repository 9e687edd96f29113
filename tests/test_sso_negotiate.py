"""Kerberos sign-in (Negotiate) on /sso/login, end to end: a real running ssobridge with the keytab of the
`kerberos` fixture, tickets from Samba AD's KDC (kinit), the real directory lookup (find_principal), the
account check of GetSignInCookieInfo, the cookie, and then GetSignInCookieInfo through the .NET client.

The KDC itself refuses tickets to disabled, expired and locked accounts (AS and TGS: "Client's credentials have
been revoked"), so ssobridge's own check matters for a ticket issued before the account changed (tickets live
for hours): those tests take the ticket while the account is still good, then change it.
"""

from __future__ import annotations

import base64
from contextlib import contextmanager
from urllib.parse import quote

import ldap3
import pytest
from markupsafe import escape

from ssobridge.sso.web import KERBEROS_FAILED, KERBEROS_ONLY, NO_ACCOUNT
from tests.support.directory import bound
from tests.support.services import ATTRIBUTES, MESSAGES, ad_config, identity, start_service
from tests.support.sso import Browser, form_value, signed_in, sso_toml

PORTAL = "https://helpdesk.example.test/"
RETURN = "https://helpdesk.example.test/Main/frmTickets.aspx?x=1"
MINUTES = 45
GARBAGE = "Negotiate " + base64.b64encode(b"\x60\x03garbage").decode()
REVOKED = "Client's credentials have been revoked"


def kerberos_service(samba_ad, kerberos, folder, **extra):
    """ssobridge on samba_ad with [sso] and the fixture's keytab: (service, machine key)."""
    section, key = sso_toml(PORTAL, cookie_domain="example.test", cookie_path="/", ticket_minutes=MINUTES,
                            kerberos_keytab=kerberos.keytab, kerberos_principal=kerberos.principal, **extra)
    return start_service(folder, ad_config(samba_ad) + ATTRIBUTES + section), key


@pytest.fixture(scope="module")
def negotiate_site(samba_ad, kerberos, tmp_path_factory):
    service, key = kerberos_service(samba_ad, kerberos, tmp_path_factory.mktemp("negotiate"))
    yield service, key
    service.stop()


def sign_in(service, authorization: str | None, return_url: str | None = RETURN):
    path = "/sso/login" + (f"?ReturnUrl={quote(return_url, safe='')}" if return_url else "")
    return Browser(service.url).get(path, {"Authorization": authorization} if authorization else None)


@contextmanager
def changed_for_a_moment(directory, user, attribute: str, value: str):
    """`attribute` of the user's entry is `value` inside the block and its old value again after it."""
    with bound(directory, directory.admin_dn, directory.admin_password) as admin:
        admin.search(user.dn, "(objectClass=*)", ldap3.BASE, attributes=[attribute])
        before = admin.response[0]["raw_attributes"][attribute]
        assert admin.modify(user.dn, {attribute: [(ldap3.MODIFY_REPLACE, [value])]}), admin.result
    try:
        yield
    finally:
        with bound(directory, directory.admin_dn, directory.admin_password) as admin:
            assert admin.modify(user.dn, {attribute: [(ldap3.MODIFY_REPLACE, before)]}), admin.result


def test_a_kerberos_ticket_gets_the_cookie_without_a_password_and_get_sign_in_cookie_info_accepts_it(
        negotiate_site, kerberos, samba_ad, dotnet):
    service, key = negotiate_site
    client = kerberos.negotiate_client(kerberos.kinit(samba_ad.users["jdoe"]))

    answer = sign_in(service, "Negotiate " + base64.b64encode(client.step()).decode())

    assert (answer.status, answer.header("Location")) == (302, RETURN)
    scheme, _, mutual = answer.header("WWW-Authenticate").partition(" ")
    assert scheme == "Negotiate"
    assert client.step(base64.b64decode(mutual)) is None and client.complete  # the client trusts the server
    signed_in(answer.cookie(".ASPXAUTH"), key, "EXAMPLE\\jdoe", MINUTES, service, dotnet, identity(samba_ad, "jdoe"))
    assert "event=sso_sign_in method=kerberos name='EXAMPLE\\\\jdoe'" in service.log()


def test_without_a_token_the_answer_is_401_negotiate_with_the_form_as_fallback(negotiate_site):
    answer = sign_in(negotiate_site[0], None, "/Main/")
    assert answer.status == 401
    assert [v for k, v in answer.headers if k.lower() == "www-authenticate"] == ["Negotiate"]
    assert answer.cookie(".ASPXAUTH") is None
    assert '<input id="password"' in answer.text and form_value(answer.text, "ReturnUrl") == "/Main/"


def machine_header(kerberos, folder) -> str:
    """What a service running as a domain PC's SYSTEM account sends: a real ticket for the principal DC1$@REALM
    (the DC's computer account, from its keys), which is no person: AD's user filter does not find it."""
    import spnego

    keytab = kerberos.export_keytab(folder / "dc1.keytab", f"DC1$@{kerberos.realm}")
    client = spnego.client(spnego.KerberosKeytab(keytab=f"FILE:{keytab}", principal=f"DC1$@{kerberos.realm}"),
                           hostname=kerberos.host, service="HTTP", protocol="negotiate")
    return "Negotiate " + base64.b64encode(client.step()).decode()


@pytest.mark.parametrize("token, note", [("garbage", KERBEROS_FAILED), ("a computer's", NO_ACCOUNT)])
def test_a_failed_token_or_a_principal_without_a_person_falls_back_to_the_form(negotiate_site, kerberos, tmp_path,
                                                                                token, note):
    header = GARBAGE if token == "garbage" else machine_header(kerberos, tmp_path)
    answer = sign_in(negotiate_site[0], header)
    assert answer.status == 200
    assert answer.cookie(".ASPXAUTH") is None and answer.header("WWW-Authenticate") is None
    assert f'<p class="note" id="note">{note}</p>' in answer.text and '<input id="password"' in answer.text
    assert form_value(answer.text, "ReturnUrl") == RETURN
    reason = "error='Invalid token was supplied'" if token == "garbage" else \
        "principal='DC1$@EXAMPLE.TEST' reason='no directory entry'"
    assert f"WARNING ssobridge.sso event=sso_kerberos outcome=FAIL {reason}" in negotiate_site[0].log()


@pytest.mark.parametrize("key, attribute, good, reason", [
    ("disabled", "userAccountControl", "512", "disabled"),  # NORMAL_ACCOUNT without ACCOUNTDISABLE
    ("account_expired", "accountExpires", "0", "account_expired"),  # 0: never expires
])
def test_an_inactive_account_gets_no_ticket_and_a_ticket_from_before_gets_no_cookie(negotiate_site, kerberos, samba_ad,
                                                                                    key, attribute, good, reason):
    user = samba_ad.users[key]
    with pytest.raises(RuntimeError, match=REVOKED):  # the KDC itself refuses the account
        kerberos.kinit(user)
    with changed_for_a_moment(samba_ad, user, attribute, good):
        header = kerberos.negotiate_header(kerberos.kinit(user))

    answer = sign_in(negotiate_site[0], header)

    assert answer.status == 403
    assert answer.cookie(".ASPXAUTH") is None
    assert f'<p class="message" role="alert">{escape(MESSAGES[reason])}</p>' in answer.text


def test_a_locked_account_with_a_ticket_from_before_gets_no_cookie(negotiate_site, kerberos, samba_ad):
    user = samba_ad.users["lockable"]
    ccache = kerberos.kinit(user)
    header = kerberos.negotiate_header(ccache)
    samba_ad.lock_out(user)
    try:
        with pytest.raises(Exception, match=REVOKED):  # no more service tickets for the locked account
            kerberos.negotiate_token(ccache, host="dc1.example.test", service="HOST")

        answer = sign_in(negotiate_site[0], header)

        assert answer.status == 403
        assert answer.cookie(".ASPXAUTH") is None
        assert f'<p class="message" role="alert">{escape(MESSAGES["locked"])}</p>' in answer.text
    finally:
        samba_ad.unlock(user)


def test_kerberos_only_shows_no_form_and_refuses_a_failed_token(samba_ad, kerberos, tmp_path):
    service, _ = kerberos_service(samba_ad, kerberos, tmp_path, form=False)
    try:
        challenge = sign_in(service, None)
        assert challenge.status == 401 and challenge.header("WWW-Authenticate") == "Negotiate"
        failed = sign_in(service, GARBAGE)
        assert failed.status == 403 and failed.header("WWW-Authenticate") is None
        for answer in (challenge, failed):
            assert str(escape(KERBEROS_ONLY)) in answer.text and "<form" not in answer.text
            assert answer.cookie(".ASPXAUTH") is None
    finally:
        service.stop()
