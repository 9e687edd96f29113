"""Authenticate and GetSignInCookieInfo against a real Samba AD DC and a real OpenLDAP slapd.

Every account state is produced by the server itself; each test reads back the exact OutputVariables
and Message SmarterTrack would get. Both directories run the same people (tests/support/people.py).
"""

from __future__ import annotations

import pytest

from tests.support.services import (ATTRIBUTES, AUTH, MESSAGES, WRONG, ad_config, authenticate, call, fail, identity,
                                    ok, openldap_config, sign_in_cookie, start_service)


# --- Active Directory username forms -------------------------------------------------------------

@pytest.mark.parametrize("form", ["EXAMPLE\\{login}", "example/{login}", "{login}@example.test",
                                  "{login}@EXAMPLE.TEST", "{login}", "  {login}  ", "EXAMPLE\\{LOGIN}"])
@pytest.mark.parametrize("soap12", [False, True])
def test_ad_user_logs_in_with_every_username_form(samba_ad, ad_service, form, soap12):
    user = samba_ad.users["jdoe"]
    username = form.format(login=user.login, LOGIN=user.login.upper())
    assert authenticate(ad_service, username, user.password, soap12) == ok(*identity(samba_ad, "jdoe"))


@pytest.mark.parametrize("username", ["max.mustermann@example.test", "EXAMPLE\\mmuster", "mmuster"])
def test_ad_upn_prefix_and_sam_account_name_may_differ(samba_ad, ad_service, username):
    user = samba_ad.users["upn_differs"]
    assert authenticate(ad_service, username, user.password) == ok(*identity(samba_ad, "upn_differs"))


@pytest.mark.parametrize("username", ["OTHER\\jdoe", "jdoe@other.test", "jdoe@example.test.evil"])
def test_ad_domain_or_suffix_the_directory_does_not_claim_fails(samba_ad, ad_service, username):
    assert authenticate(ad_service, username, samba_ad.users["jdoe"].password) == fail(WRONG)


# --- both directories --------------------------------------------------------------------------------

def test_ordinary_user_gets_ok_with_mapped_attributes(site):
    directory, service = site
    user = directory.users["jdoe"]
    assert authenticate(service, user.login, user.password) == ok(*identity(directory, "jdoe"))


def test_missing_mail_and_display_name_fall_back_to_next_candidate(site):
    directory, service = site
    user = directory.users["no_mail"]
    result = authenticate(service, user.login, user.password)
    assert result == ok(*identity(directory, "no_mail"))
    if directory.kind == "ad":
        assert f"EmailAddress={user.upn}" in result["OutputVariables"]
    else:  # no mail and no UPN: EmailAddress is left out, not sent empty
        assert not any(v.startswith("EmailAddress=") for v in result["OutputVariables"])
    assert f"DisplayName={user.cn}" in result["OutputVariables"]


@pytest.mark.parametrize("key", ["non_ascii", "escaped_dn", "nbsp_password"])
def test_awkward_names_and_passwords_log_in(site, key):
    directory, service = site
    user = directory.users[key]
    assert authenticate(service, user.login, user.password) == ok(*identity(directory, key))


def test_nbsp_password_with_a_plain_space_instead_fails(site):
    directory, service = site
    user = directory.users["nbsp_password"]
    assert authenticate(service, user.login, user.password.replace("\u00a0", " ")) == fail(WRONG)


def test_wrong_password_fails(site):
    directory, service = site
    assert authenticate(service, directory.users["jdoe"].login, "not-the-password") == fail(WRONG)


def test_unknown_user_fails_like_a_wrong_password(site):
    _, service = site
    assert authenticate(service, "nobody-here", "whatever-1") == fail(WRONG)


@pytest.mark.parametrize("username", ["*", "jd*", "*)(uid=*", "jdoe)(|(uid=*", "(", ")", "\\", "jdoe\\",
                                      "*)(sAMAccountName=*))(|(cn=*"])
def test_filter_metacharacters_in_usernames_match_nobody(site, username):
    directory, service = site
    assert authenticate(service, username, directory.users["jdoe"].password) == fail(WRONG)
    assert sign_in_cookie(service, username) == fail(WRONG)


def test_whitespace_password_fails_even_where_an_empty_one_would_bind_anonymously(openldap, ldap_service):
    user = openldap.users["jdoe"]
    assert authenticate(ldap_service, user.login, " ") == fail(WRONG)
    result = call(ldap_service.url, "Authenticate", [AUTH, f"loginUsername={user.login}", "loginPassword="])
    assert result == {"Success": False, "Message": "Required Input Missing: loginPassword", "OutputVariables": []}


@pytest.mark.parametrize("key, message", [("disabled", "disabled"), ("must_change", "must_change"),
                                          ("password_expired", "password_expired")])
def test_account_states_fail_with_their_reason(site, key, message):
    directory, service = site
    user = directory.users[key]
    assert authenticate(service, user.login, user.password) == fail(MESSAGES[message])


def test_ad_expired_account_fails_with_its_reason(samba_ad, ad_service):
    user = samba_ad.users["account_expired"]
    assert authenticate(ad_service, user.login, user.password) == fail(MESSAGES["account_expired"])


def test_states_revealed_only_for_the_right_password(site):
    directory, service = site
    assert authenticate(service, directory.users["must_change"].login, "wrong-Passw0rd") == fail(WRONG)
    if directory.kind == "ad":  # OpenLDAP reports an administrator's lock for any password, as AD does 775
        assert authenticate(service, directory.users["disabled"].login, "wrong-Passw0rd") == fail(WRONG)


def test_locked_account_fails_as_locked_and_sso_refuses_it(site):
    directory, service = site
    user = directory.users["lockable"]
    directory.lock_out(user)
    try:
        assert authenticate(service, user.login, user.password) == fail(MESSAGES["locked"])
        assert sign_in_cookie(service, user.login) == fail(MESSAGES["locked"])
    finally:
        directory.unlock(user)
    assert authenticate(service, user.login, user.password)["OutputVariables"][0] == "Authentication=OK"


# --- GetSignInCookieInfo ------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["jdoe", "no_mail", "non_ascii", "escaped_dn"])
def test_sign_in_cookie_returns_the_same_attributes_without_a_password(site, key):
    directory, service = site
    user = directory.users[key]
    assert sign_in_cookie(service, user.login) == authenticate(service, user.login, user.password)


@pytest.mark.parametrize("key, message", [("disabled", "disabled"), ("must_change", "must_change"),
                                          ("password_expired", "password_expired")])
def test_sign_in_cookie_refuses_accounts_that_may_not_sign_in(site, key, message):
    directory, service = site
    assert sign_in_cookie(service, directory.users[key].login) == fail(MESSAGES[message])


def test_ad_sign_in_cookie_refuses_an_expired_account(samba_ad, ad_service):
    assert sign_in_cookie(ad_service, samba_ad.users["account_expired"].login) == fail(MESSAGES["account_expired"])


def test_sign_in_cookie_for_unknown_user_fails(site):
    _, service = site
    assert sign_in_cookie(service, "nobody-here") == fail(WRONG)


def test_sso_may_be_allowed_for_must_change_when_configured(openldap, tmp_path):
    body = openldap_config(openldap) + "[login]\nsso_allow_must_change = true\n"
    service = start_service(tmp_path, body)
    try:
        user = openldap.users["must_change"]
        result = sign_in_cookie(service, user.login)
        assert result["OutputVariables"][0] == "Authentication=OK"
        assert authenticate(service, user.login, user.password) == fail(MESSAGES["must_change"])
    finally:
        service.stop()


# --- connections and TLS -------------------------------------------------------------------------------

def test_directory_outage_is_unavailable_not_a_wrong_password(openldap, ldap_service):
    user = openldap.users["jdoe"]
    with openldap.outage():
        assert authenticate(ldap_service, user.login, user.password) == fail(MESSAGES["unavailable"])
        assert sign_in_cookie(ldap_service, user.login) == fail(MESSAGES["unavailable"])
    # Back up: the dropped pooled connections are replaced without a restart of ssobridge.
    assert authenticate(ldap_service, user.login, user.password) == ok(*identity(openldap, "jdoe"))


def test_wrong_ca_file_is_unavailable_and_logged_as_a_certificate_problem(site, tmp_path):
    directory, _ = site
    make = ad_config if directory.kind == "ad" else openldap_config
    service = start_service(tmp_path, make(directory, ca_file=str(directory.wrong_ca_file)))
    try:
        user = directory.users["jdoe"]
        assert authenticate(service, user.login, user.password) == fail(MESSAGES["unavailable"])
        assert "TLS certificate not trusted (check ca_file)" in service.log()
    finally:
        service.stop()


def test_start_tls_on_ldap_url_works(site, tmp_path):
    directory, _ = site
    make = ad_config if directory.kind == "ad" else openldap_config
    service = start_service(tmp_path, make(directory, urls=[directory.ldap_url], start_tls=True) + ATTRIBUTES)
    try:
        user = directory.users["jdoe"]
        assert authenticate(service, user.login, user.password) == ok(*identity(directory, "jdoe"))
    finally:
        service.stop()


def test_ad_refuses_plaintext_simple_bind_by_default_and_says_so(samba_ad, tmp_path):
    service = start_service(tmp_path, ad_config(samba_ad, urls=[samba_ad.ldap_url], allow_plaintext=True))
    try:
        user = samba_ad.users["jdoe"]
        assert authenticate(service, user.login, user.password) == fail(MESSAGES["unavailable"])
        assert "strongerAuthRequired" in service.log()
    finally:
        service.stop()


def test_first_dead_server_is_skipped(site, tmp_path, dead_ldap_url):
    directory, _ = site
    make = ad_config if directory.kind == "ad" else openldap_config
    dead_url = dead_ldap_url.replace("ldap://", "ldaps://")
    # one worker: a down-mark is kept in each worker's memory, so each of several would find the dead server once
    service = start_service(tmp_path, make(directory, urls=[dead_url, directory.ldaps_url]) + ATTRIBUTES,
                            server="workers = 1\n")
    try:
        user = directory.users["jdoe"]
        for _ in range(3):
            assert authenticate(service, user.login, user.password) == ok(*identity(directory, "jdoe"))
        assert service.log().count("event=directory_server_down") == 1  # marked down once, then skipped
    finally:
        service.stop()


def test_characters_xml_forbids_in_directory_values_are_stripped(openldap, ldap_service, dotnet):
    from ldap3 import MODIFY_DELETE, MODIFY_REPLACE

    from tests.support.directory import bound
    user = openldap.users["nbsp_password"]  # has no title of its own
    with bound(openldap, openldap.admin_dn, openldap.admin_password) as admin:
        assert admin.modify(user.dn, {"title": [(MODIFY_REPLACE, ["Ops\x0bLead\x01"])]}), admin.result
    try:
        variables = [AUTH, f"loginUsername={user.login}", f"loginPassword={user.password}"]
        for result in (authenticate(ldap_service, user.login, user.password),
                       dotnet.call(ldap_service.url, "Authenticate", variables)):
            assert result["OutputVariables"][0] == "Authentication=OK"
            assert "cf_Job Title=OpsLead" in result["OutputVariables"]
    finally:
        with bound(openldap, openldap.admin_dn, openldap.admin_password) as admin:
            admin.modify(user.dn, {"title": [(MODIFY_DELETE, [])]})


def test_a_rejected_password_is_counted_once_not_retried(site):
    from tests.support.lockout import directory_failures
    directory, service = site
    user = directory.users["lockable"]  # locks at the third wrong password
    try:
        assert authenticate(service, user.login, "wrong-Passw0rd") == fail(WRONG)
        assert directory_failures(directory, user) == 1  # one bind: had it been retried, 2
    finally:
        service.unlock(user.login)
        directory.unlock(user)
    assert authenticate(service, user.login, user.password)["OutputVariables"][0] == "Authentication=OK"


def test_object_guid_and_templates_are_mapped_from_ad(samba_ad, tmp_path):
    import uuid

    from tests.support.directory import bound
    user = samba_ad.users["jdoe"]
    with bound(samba_ad, samba_ad.admin_dn, samba_ad.admin_password) as admin:
        admin.search(user.dn, "(objectClass=*)", "BASE", attributes=["objectGUID", "objectSid"])
        guid = str(uuid.UUID(bytes_le=admin.response[0]["raw_attributes"]["objectGUID"][0]))
    mapping = ('[attributes]\nDisplayName = ["{sn}, {givenName}"]\n"cf_Directory ID" = "objectGUID"\n'
               '"cf_SID" = "objectSid"\n"cf_Photo" = ["thumbnailPhoto", "title"]\n')
    service = start_service(tmp_path, ad_config(samba_ad) + mapping)
    try:
        outputs = authenticate(service, user.login, user.password)["OutputVariables"]
    finally:
        service.stop()
    assert outputs[:3] == ["Authentication=OK", f"EmailAddress={user.mail}", "DisplayName=Doe, John"]
    assert f"cf_Directory ID={guid}" in outputs
    assert any(o.startswith("cf_SID=S-1-5-21-") for o in outputs)
    assert f"cf_Photo={user.attributes['title']}" in outputs


def test_a_refused_service_account_is_not_tried_on_every_server(openldap, tmp_path):
    body = openldap_config(openldap, urls=[openldap.ldaps_url, openldap.ldaps_url.replace("127.0.0.1", "localhost")])
    body = body.replace(f'bind_password = "{openldap.service_password}"', 'bind_password = "not-it"')
    service = start_service(tmp_path, body)
    try:
        user = openldap.users["jdoe"]
        assert authenticate(service, user.login, user.password) == fail(MESSAGES["unavailable"])
        log = service.log()
    finally:
        service.stop()
    assert log.count("could not bind: invalidCredentials") == 1  # the first server only
    assert "event=directory_server_down" not in log


def test_a_server_that_accepts_but_never_answers_costs_connect_timeout_once(openldap, tmp_path,
                                                                            blackhole_ldaps_url):
    import time
    body = openldap_config(openldap, urls=[blackhole_ldaps_url, openldap.ldaps_url], connect_timeout=1, timeout=30)
    # one worker: the down-mark is kept in each worker's memory, so each of several would pay the timeout once
    service = start_service(tmp_path, body + ATTRIBUTES, server="workers = 1\n")
    try:
        user = openldap.users["jdoe"]
        started = time.monotonic()
        assert authenticate(service, user.login, user.password) == ok(*identity(openldap, "jdoe"))
        assert time.monotonic() - started < 5  # one connect_timeout (1 s), not the 30 s timeout
        started = time.monotonic()
        assert authenticate(service, user.login, user.password) == ok(*identity(openldap, "jdoe"))
        assert time.monotonic() - started < 0.5  # skipped while marked down
    finally:
        service.stop()
