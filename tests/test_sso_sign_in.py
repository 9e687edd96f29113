"""The sign-in page against the real service and real directories (Samba AD, OpenLDAP): a good password gets
SmarterTrack's cookie and a 302 to ReturnUrl, and GetSignInCookieInfo (through the .NET client) then signs
that name in; a wrong password, a disabled account, a CSRF-less POST and an open redirect get nothing.
"""

from __future__ import annotations

import pytest

from tests.support.services import (ATTRIBUTES, MESSAGES, WRONG, ad_config, identity,
                                    openldap_config, start_service)
from tests.support.sso import Browser, form_value, signed_in, sso_toml

PORTAL = "https://helpdesk.example.test/"
RETURN = "https://helpdesk.example.test/Main/frmTickets.aspx?x=1"
MINUTES = 45


@pytest.fixture(scope="module", params=["ad", "openldap"])
def sso_site(request, tmp_path_factory):
    """(directory, service, machine key, the ticket name of jdoe) with [sso] enabled."""
    section, key = sso_toml(PORTAL, ("kb.example.test",), cookie_domain="example.test", cookie_path="/",
                            ticket_minutes=MINUTES, page_title="Example Corp helpdesk",
                            logo_url="https://intranet.example.test/logo.png", accent_color="#7a1f5c")
    if request.param == "ad":
        directory = request.getfixturevalue("samba_ad")
        config, domain = ad_config(directory), "EXAMPLE"
    else:
        directory = request.getfixturevalue("openldap")
        config, domain = openldap_config(directory, netbios_domain="EXAMPLEORG"), "EXAMPLEORG"
    service = start_service(tmp_path_factory.mktemp(f"sso-{request.param}"), config + ATTRIBUTES + section)
    yield directory, service, key, domain
    service.stop()


def test_good_password_gets_the_cookie_and_a_redirect_and_get_sign_in_cookie_info_accepts_it(sso_site, dotnet):
    directory, service, key, domain = sso_site
    user = directory.users["jdoe"]
    page, answer = Browser(service.url).sign_in(user.login, user.password, RETURN)
    assert page.status == 200
    assert answer.status == 302
    assert answer.header("Location") == RETURN
    ticket = signed_in(answer.cookie(".ASPXAUTH"), key, f"{domain}\\jdoe", MINUTES, service, dotnet,
                       identity(directory, "jdoe"))
    assert ticket.cookie_path == "/"
    assert user.password not in service.log()


def test_wrong_password_shows_the_message_keeps_the_username_and_sets_no_cookie(sso_site):
    directory, service, _, _ = sso_site
    _, answer = Browser(service.url).sign_in("jdoe", "Not-The-Passw0rd!", RETURN)
    assert answer.status == 200
    assert answer.cookie(".ASPXAUTH") is None
    assert f'<p class="message" id="message" role="alert">{WRONG}</p>' in answer.text
    assert form_value(answer.text, "username") == "jdoe"
    assert form_value(answer.text, "ReturnUrl") == RETURN
    assert "Not-The-Passw0rd!" not in answer.text
    assert "Not-The-Passw0rd!" not in service.log()


def test_disabled_account_gets_no_cookie_and_a_page_saying_why(sso_site):
    directory, service, _, _ = sso_site
    user = directory.users["disabled"]
    _, answer = Browser(service.url).sign_in(user.login, user.password, RETURN)
    assert answer.cookie(".ASPXAUTH") is None
    assert f'role="alert">{MESSAGES["disabled"]}</p>' in answer.text


@pytest.mark.parametrize("spoil", ["no field", "no cookie", "another token", "not a form"])
def test_post_without_a_matching_csrf_token_is_refused(sso_site, spoil):
    directory, service, _, _ = sso_site
    user = directory.users["jdoe"]
    browser = Browser(service.url)
    page = browser.get("/sso/login")
    fields = {"csrf": form_value(page.text, "csrf"), "username": user.login, "password": user.password}
    if spoil == "no field":
        del fields["csrf"]
    elif spoil == "no cookie":
        browser.cookies.clear()
    elif spoil == "another token":
        fields["csrf"] = form_value(Browser(service.url).get("/sso/login").text, "csrf")
    if spoil == "not a form":
        answer = browser.request("POST", "/sso/login", b'{"username": "jdoe"}', {"Content-Type": "application/json"})
        assert answer.status == 400
    else:
        answer = browser.post("/sso/login", fields)
        assert answer.status == 403
    assert answer.cookie(".ASPXAUTH") is None
    assert "This sign-in page has expired or was not sent by this site." in answer.text


def test_a_hostile_cookie_header_beside_the_csrf_cookie_still_signs_in(sso_site):
    """Neighbours' cookies that http.cookies would reject whole (JSON, a space, no "=") and a second cookie
    of the CSRF name after ours: the form still signs in (tests/unit/test_sign_in_cookies.py has the table)."""
    directory, service, _, _ = sso_site
    user = directory.users["jdoe"]
    browser = Browser(service.url)
    page = browser.get("/sso/login")
    nonce = browser.cookies["ssobridge-csrf"]
    hostile = f'prefs={{"theme":"dark"}}; note=hello world; flag; ssobridge-csrf={nonce}; ssobridge-csrf=forged'
    answer = browser.post("/sso/login", {"csrf": form_value(page.text, "csrf"), "username": user.login,
                                         "password": user.password}, {"Cookie": hostile})
    assert answer.status == 302 and answer.cookie(".ASPXAUTH") is not None


@pytest.mark.parametrize("return_url, reason", [
    ("https://evil.example/", "its host is neither portal_url's nor one of [sso] return_hosts"),
    ("//evil.example/", "it names another host (//...)"),
    ("/\\evil.example", "it holds a space, a control character or a backslash"),
    ("javascript:alert(1)", "its scheme is not http or https (javascript)"),
    ("https://helpdesk.example.test@evil.example/", "it holds user information (@)"),
])
def test_a_return_url_elsewhere_goes_to_portal_url_with_a_warning_saying_why(sso_site, return_url, reason):
    directory, service, _, _ = sso_site
    user = directory.users["jdoe"]
    _, answer = Browser(service.url).sign_in(user.login, user.password, return_url)
    assert (answer.status, answer.header("Location")) == (302, PORTAL)
    assert (f"WARNING ssobridge.sso event=sso_return_url_refused return_url={return_url!r} target={PORTAL!r} "
            f"reason={reason!r}") in service.log()


def test_a_return_host_and_a_path_are_followed(sso_site):
    directory, service, _, _ = sso_site
    user = directory.users["jdoe"]
    for return_url, target in [("https://kb.example.test/article/7", "https://kb.example.test/article/7"),
                               ("/Main/Default.aspx", "https://helpdesk.example.test/Main/Default.aspx")]:
        _, answer = Browser(service.url).sign_in(user.login, user.password, return_url)
        assert (answer.status, answer.header("Location")) == (302, target)


def test_logout_clears_the_cookie_and_goes_to_portal_url(sso_site):
    _, service, _, _ = sso_site
    answer = Browser(service.url).get("/sso/logout")
    assert (answer.status, answer.header("Location")) == (302, PORTAL)
    assert answer.cookie(".ASPXAUTH") == (".ASPXAUTH=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Domain=example.test; "
                                          "Max-Age=0; Path=/; HttpOnly; SameSite=Lax")


def test_sign_in_page_is_the_companys_accessible_and_scriptless(sso_site):
    _, service, _, _ = sso_site
    page = Browser(service.url).get("/sso/login?ReturnUrl=%2FMain%2F")
    assert page.header("Content-Security-Policy").startswith("default-src 'none'; style-src 'unsafe-inline'")
    assert page.header("X-Frame-Options") == "DENY"
    assert page.cookie("ssobridge-csrf").endswith("; Max-Age=1200; Path=/; HttpOnly; SameSite=Strict")
    text = page.text
    assert '<html lang="en">' in text and "<script" not in text
    assert "<title>Example Corp helpdesk</title>" in text and "<h1>Example Corp helpdesk</h1>" in text
    assert '<img class="logo" src="https://intranet.example.test/logo.png" alt="">' in text
    assert "background:#7a1f5c;color:#ffffff" in text
    assert '<label for="username">Username</label>' in text and '<label for="password">Password</label>' in text
    assert 'autocomplete="username"' in text and " autofocus" in text
    assert form_value(text, "ReturnUrl") == "/Main/"


def test_soap_endpoint_still_answers_beside_the_sign_in_site(sso_site):
    directory, service, _, _ = sso_site
    assert Browser(service.url).get("/ExternalProvider.asmx?wsdl").status == 200
    assert Browser(service.url).get("/sso/nothing-here").status == 404
    assert Browser(service.url).get("/sso/login?" + "&".join(f"a{i}=1" for i in range(30))).status == 200
