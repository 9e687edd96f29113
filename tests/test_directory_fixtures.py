"""The directory fixtures are what they claim: each account state, checked with raw ldap3 binds.

These tests document the servers' behaviour the bridge relies on; they use no ssobridge code.
"""

from __future__ import annotations

import socket
import ssl

import ldap3
import pytest
from ldap3.core.exceptions import LDAPException, LDAPSocketOpenError
from ldap3.utils.dn import parse_dn

from tests.support.directory import (PPOLICY_OID, PPOLICY_REQUEST, bind_result, bound, connect,
                                     decode_ppolicy_value, empty_password_bind_result, ppolicy_response,
                                     tls_settings)
from tests.support.network import TEST_NET

OK_USERS = ["jdoe", "no_mail", "non_ascii", "escaped_dn", "nbsp_password", "lockable"]


def ad_subcode(result: dict) -> str | None:
    """The "data NNN" of an AD bind error message."""
    message = result["message"]
    return message.split(" data ", 1)[1].split(",", 1)[0] if " data " in message else None


# --- Active Directory (Samba) ----------------------------------------------------------------------

@pytest.mark.parametrize("key", OK_USERS + ["upn_differs"])
def test_ad_user_binds_by_dn_with_the_right_password(samba_ad, key):
    user = samba_ad.users[key]
    assert bind_result(samba_ad, user.dn, user.password_bytes)["result"] == 0


@pytest.mark.parametrize("key, subcode", [("disabled", "533"), ("must_change", "773"),
                                          ("account_expired", "701"), ("password_expired", "532")])
def test_ad_account_state_shows_as_subcode_with_the_right_password(samba_ad, key, subcode):
    user = samba_ad.users[key]
    result = bind_result(samba_ad, user.dn, user.password_bytes)
    assert (result["result"], ad_subcode(result)) == (49, subcode)


@pytest.mark.parametrize("key", ["jdoe", "disabled", "must_change", "account_expired", "password_expired"])
def test_ad_wrong_password_is_52e_whatever_the_state(samba_ad, key):
    result = bind_result(samba_ad, samba_ad.users[key].dn, "Wrong-Passw0rd!")
    assert (result["result"], ad_subcode(result)) == (49, "52e")


def test_ad_accepts_upn_and_down_level_logon_name_but_not_a_bare_login(samba_ad):
    jdoe, max_ = samba_ad.users["jdoe"], samba_ad.users["upn_differs"]
    assert bind_result(samba_ad, jdoe.upn, jdoe.password)["result"] == 0
    assert bind_result(samba_ad, f"{samba_ad.netbios_domain}\\{jdoe.login}", jdoe.password)["result"] == 0
    assert bind_result(samba_ad, "max.mustermann@example.test", max_.password)["result"] == 0
    assert ad_subcode(bind_result(samba_ad, jdoe.login, jdoe.password)) == "52e"


def test_ad_plain_ldap_refuses_simple_bind(samba_ad):
    user = samba_ad.users["jdoe"]
    connection = connect(samba_ad, user.dn, user.password, use_ssl=False)
    assert not connection.bind()
    assert connection.result["description"] == "strongerAuthRequired"


def test_ad_lock_out_shows_775_even_for_the_right_password_until_unlocked(samba_ad):
    user = samba_ad.users["lockable"]
    samba_ad.lock_out(user)
    try:
        with bound(samba_ad, samba_ad.service_dn, samba_ad.service_password) as service:
            service.search(user.dn, "(objectClass=*)", ldap3.BASE,
                           attributes=["lockoutTime", "msDS-User-Account-Control-Computed"])
            entry = service.entries[0]
            assert entry.lockoutTime.raw_values[0] != b"0"
            assert int(entry["msDS-User-Account-Control-Computed"].value) & 0x10  # UF_LOCKOUT
    finally:
        samba_ad.unlock(user)
    assert bind_result(samba_ad, user.dn, user.password)["result"] == 0


def test_ad_service_account_reads_state_identity_and_token_groups(samba_ad):
    user = samba_ad.users["jdoe"]
    state = ["userAccountControl", "lockoutTime", "accountExpires", "pwdLastSet",
             "msDS-User-Account-Control-Computed"]
    identity = ["sAMAccountName", "userPrincipalName", "mail", "displayName", "cn", "department", "title",
                "telephoneNumber", "givenName", "sn", "memberOf", "objectSid"]
    with bound(samba_ad, samba_ad.service_dn, samba_ad.service_password) as service:
        service.search(user.dn, "(objectClass=user)", ldap3.BASE, attributes=state + identity + ["tokenGroups"])
        entry = service.entries[0].entry_attributes_as_dict
    missing = {name for name in state + identity + ["tokenGroups"] if not entry.get(name)}
    assert missing == {"lockoutTime"}  # set at the first lockout only
    assert (entry["mail"], entry["displayName"], entry["department"]) == (
        ["jdoe@example.test"], ["John Doe"], ["Sales"])
    assert len(entry["tokenGroups"]) >= 3  # Domain Users, Sales Team and, nested, All Staff


def test_ad_expired_password_shows_in_computed_account_control(samba_ad):
    with bound(samba_ad, samba_ad.service_dn, samba_ad.service_password) as service:
        service.search(samba_ad.users["password_expired"].dn, "(objectClass=*)", ldap3.BASE,
                       attributes=["msDS-User-Account-Control-Computed"])
        assert int(service.entries[0]["msDS-User-Account-Control-Computed"].value) & 0x800000


def test_ad_in_chain_rule_finds_nested_groups(samba_ad):
    user = samba_ad.users["jdoe"]
    with bound(samba_ad, samba_ad.service_dn, samba_ad.service_password) as service:
        service.search(samba_ad.base_dn, f"(member:1.2.840.113556.1.4.1941:={user.dn})", attributes=["cn"])
        assert {entry.entry_dn for entry in service.entries} == set(samba_ad.groups.values())


def test_ad_users_without_mail_or_display_name_have_none(samba_ad):
    user = samba_ad.users["no_mail"]
    with bound(samba_ad, samba_ad.service_dn, samba_ad.service_password) as service:
        service.search(user.dn, "(objectClass=*)", ldap3.BASE, attributes=["mail", "displayName", "cn"])
        entry = service.entries[0].entry_attributes_as_dict
    # ldap3 lists a requested attribute the entry lacks with no values.
    assert (entry["mail"], entry["displayName"], entry["cn"]) == ([], [], [user.cn])


def test_ad_outage_refuses_connections_and_start_restores_the_data(samba_ad):
    user = samba_ad.users["jdoe"]
    with samba_ad.outage():
        with pytest.raises(LDAPSocketOpenError):
            bind_result(samba_ad, user.dn, user.password)
    assert bind_result(samba_ad, user.dn, user.password)["result"] == 0


# --- OpenLDAP (slapd with ppolicy) -----------------------------------------------------------------

@pytest.mark.parametrize("key", OK_USERS)
def test_openldap_user_binds_with_an_empty_policy_response(openldap, key):
    user = openldap.users[key]
    result = bind_result(openldap, user.dn, user.password_bytes, [PPOLICY_REQUEST])
    assert result["result"] == 0
    assert ppolicy_response(result) == {"warning": None, "error": None}


@pytest.mark.parametrize("key, code, error", [("disabled", 49, "accountLocked"),
                                              ("password_expired", 49, "passwordExpired"),
                                              ("must_change", 0, "changeAfterReset")])
def test_openldap_account_state_shows_in_the_policy_response(openldap, key, code, error):
    user = openldap.users[key]
    result = bind_result(openldap, user.dn, user.password_bytes, [PPOLICY_REQUEST])
    assert (result["result"], ppolicy_response(result)["error"]) == (code, error)


def test_openldap_without_the_request_control_a_locked_account_is_a_plain_49(openldap):
    user = openldap.users["disabled"]
    result = bind_result(openldap, user.dn, user.password_bytes)
    assert result["result"] == 49 and "controls" not in result


def test_ldap3_leaves_the_policy_response_undecoded_in_result_controls(openldap):
    user = openldap.users["disabled"]
    control = bind_result(openldap, user.dn, user.password_bytes, [PPOLICY_REQUEST])["controls"][PPOLICY_OID]
    assert control["value"] == b"\x30\x03\x81\x01\x01"  # SEQUENCE { error [1] accountLocked(1) }
    assert decode_ppolicy_value(b"\x30\x05\xa0\x03\x81\x01\x02") == {"warning": ("graceAuthNsRemaining", 2),
                                                                    "error": None}


def test_openldap_lock_out_and_unlock(openldap):
    user = openldap.users["lockable"]
    openldap.lock_out(user)
    try:
        with bound(openldap, openldap.service_dn, openldap.service_password) as service:
            service.search(user.dn, "(objectClass=*)", ldap3.BASE, attributes=["pwdAccountLockedTime"])
            assert service.entries[0].pwdAccountLockedTime.value
    finally:
        openldap.unlock(user)
    assert bind_result(openldap, user.dn, user.password)["result"] == 0


def test_openldap_empty_password_binds_anonymously_for_any_dn(openldap):
    """allow bind_anon_dn: the hole the bridge must close itself. ldap3 refuses to send this bind."""
    for dn in (openldap.users["jdoe"].dn, f"uid=nobody,{openldap.users_dn}"):
        result = empty_password_bind_result(openldap, dn)
        assert result["result"] == 0 and not result["who_am_i"]  # anonymous


def test_ad_empty_password_is_a_wrong_password(samba_ad):
    """And it counts toward lockout (DIRECTORY-TESTING.md), so the bridge must never send it."""
    result = empty_password_bind_result(samba_ad, samba_ad.users["jdoe"].dn)
    assert (result["result"], ad_subcode(result)) == (49, "52e")


def test_openldap_service_account_reads_policy_attributes_and_policies(openldap):
    with bound(openldap, openldap.service_dn, openldap.service_password) as service:
        service.search(openldap.users_dn, "(uid=*)", attributes=["uid", "mail", "displayName", "departmentNumber",
                                                                 "pwdAccountLockedTime", "pwdReset",
                                                                 "pwdChangedTime", "pwdPolicySubentry"])
        by_uid = {entry.uid.value: entry.entry_attributes_as_dict for entry in service.entries}
        service.search(f"ou=policies,{openldap.base_dn}", "(objectClass=pwdPolicy)", attributes=["pwdMaxFailure"])
        assert len(service.entries) == 3  # default, expires-at-once, lockout-after-3
    assert by_uid["disabled"]["pwdAccountLockedTime"] == ["000001010000Z"]
    assert by_uid["mustchange"]["pwdReset"] == ["TRUE"]  # get_info=NONE: no schema, no typing
    assert by_uid["pwdexpired"]["pwdPolicySubentry"]
    assert by_uid["jdoe"]["pwdChangedTime"] and by_uid["jdoe"]["departmentNumber"] == ["Sales"]
    assert (by_uid["nmail"]["mail"], by_uid["nmail"]["displayName"]) == ([], [])


def test_openldap_groups_nest_by_dn(openldap):
    with bound(openldap, openldap.service_dn, openldap.service_password) as service:
        service.search(openldap.groups["staff"], "(objectClass=*)", ldap3.BASE, attributes=["member"])
        assert openldap.groups["sales"] in service.entries[0].member.values


def test_openldap_users_bind_only_by_dn(openldap):
    user = openldap.users["jdoe"]
    assert bind_result(openldap, f"{user.login}@example.org", user.password)["result"] == 34


def test_openldap_outage_and_start(openldap):
    user = openldap.users["jdoe"]
    with openldap.outage():
        with pytest.raises(LDAPSocketOpenError):
            bind_result(openldap, user.dn, user.password)
    assert bind_result(openldap, user.dn, user.password)["result"] == 0


# --- a second DC of EXAMPLE (a copy, not a replica) and a second domain, OTHER --------------------

def test_second_dc_gives_the_same_answer_for_every_user_as_the_first(samba_ad, samba_ad_second_dc):
    assert (samba_ad_second_dc.host, samba_ad_second_dc.ldaps_url) == (f"{TEST_NET}.4", f"ldaps://{TEST_NET}.4:636")
    assert samba_ad_second_dc.users == samba_ad.users and samba_ad_second_dc.base_dn == samba_ad.base_dn

    def answers(directory):
        results = {key: bind_result(directory, user.dn, user.password_bytes) for key, user in directory.users.items()}
        return {key: (result["result"], ad_subcode(result)) for key, result in results.items()}

    first, second = answers(samba_ad), answers(samba_ad_second_dc)
    assert second == first
    assert (second["jdoe"], second["disabled"], second["password_expired"]) == ((0, None), (49, "533"), (49, "532"))
    jdoe = samba_ad.users["jdoe"]
    for name in (f"EXAMPLE\\{jdoe.login}", jdoe.upn, samba_ad.service_dn):
        password = samba_ad.service_password if name == samba_ad.service_dn else jdoe.password
        assert bind_result(samba_ad_second_dc, name, password)["result"] == 0, name


def test_second_dc_holds_the_same_objects(samba_ad, samba_ad_second_dc):
    """Same GUIDs and SIDs (a copy of the database), so nested groups resolve the same on both."""
    user = samba_ad.users["jdoe"]
    seen = []
    for directory in (samba_ad, samba_ad_second_dc):
        with bound(directory, directory.service_dn, directory.service_password) as service:
            service.search(user.dn, "(objectClass=user)", ldap3.BASE,
                           attributes=["objectGUID", "objectSid", "mail", "tokenGroups"])
            entry = service.entries[0].entry_attributes_as_dict
            service.search(directory.base_dn, f"(member:1.2.840.113556.1.4.1941:={user.dn})", attributes=["cn"])
            seen.append((entry, {group.entry_dn for group in service.entries}))
    assert seen[0] == seen[1]
    assert seen[1][1] == set(samba_ad.groups.values())


def test_either_dc_of_example_can_be_stopped_while_the_other_answers(samba_ad, samba_ad_second_dc):
    user = samba_ad.users["jdoe"]
    for down, up in ((samba_ad_second_dc, samba_ad), (samba_ad, samba_ad_second_dc)):
        with down.outage():
            with pytest.raises(LDAPSocketOpenError):
                bind_result(down, user.dn, user.password)
            assert bind_result(up, user.dn, user.password)["result"] == 0
    for directory in (samba_ad, samba_ad_second_dc):
        assert bind_result(directory, user.dn, user.password)["result"] == 0


def test_second_dc_is_a_copy_not_a_replica(samba_ad, samba_ad_second_dc):
    """The documented limitation: a lockout on one DC does not reach the other."""
    user = samba_ad_second_dc.users["lockable"]
    samba_ad_second_dc.lock_out(user)
    try:
        assert bind_result(samba_ad, user.dn, user.password)["result"] == 0
    finally:
        samba_ad_second_dc.unlock(user)
    assert bind_result(samba_ad_second_dc, user.dn, user.password)["result"] == 0


def test_other_domain_users_bind_by_dn_down_level_name_and_upn(samba_ad_other):
    assert (samba_ad_other.realm, samba_ad_other.netbios_domain, samba_ad_other.upn_suffix) == (
        "OTHER.TEST", "OTHER", "other.test")
    assert samba_ad_other.ldaps_url == f"ldaps://{TEST_NET}.3:636"
    for key in ("jdoe", "other_only", "lockable"):
        user = samba_ad_other.users[key]
        for name in (user.dn, f"OTHER\\{user.login}", user.upn):
            assert bind_result(samba_ad_other, name, user.password_bytes)["result"] == 0, name
    disabled = samba_ad_other.users["disabled"]
    assert ad_subcode(bind_result(samba_ad_other, disabled.dn, disabled.password)) == "533"
    assert bind_result(samba_ad_other, samba_ad_other.service_dn, samba_ad_other.service_password)["result"] == 0


def test_jdoe_of_each_domain_is_a_different_person(samba_ad, samba_ad_other):
    example, other = samba_ad.users["jdoe"], samba_ad_other.users["jdoe"]
    assert example.login == other.login == "jdoe"
    assert parse_dn(example.dn) != parse_dn(other.dn) and example.password != other.password
    assert (other.cn, other.mail) == ("Jane Other", "jane.other@other.test")
    # Each password fails in the other domain; neither DC knows the other domain's names.
    assert ad_subcode(bind_result(samba_ad_other, "OTHER\\jdoe", example.password)) == "52e"
    assert ad_subcode(bind_result(samba_ad, "EXAMPLE\\jdoe", other.password)) == "52e"
    assert ad_subcode(bind_result(samba_ad_other, "EXAMPLE\\jdoe", example.password)) == "52e"
    assert ad_subcode(bind_result(samba_ad, "jdoe@other.test", other.password)) == "52e"
    only_other = samba_ad_other.users["other_only"]
    assert ad_subcode(bind_result(samba_ad, f"EXAMPLE\\{only_other.login}", only_other.password)) == "52e"
    # Different domains: different domain SIDs, naming contexts.
    sids = []
    for directory, user in ((samba_ad, example), (samba_ad_other, other)):
        with bound(directory, directory.service_dn, directory.service_password) as service:
            service.search("", "(objectClass=*)", ldap3.BASE, attributes=["defaultNamingContext"])
            assert service.entries[0].defaultNamingContext.value == directory.base_dn
            service.search(user.dn, "(objectClass=user)", ldap3.BASE, attributes=["objectSid"])
            sids.append(service.entries[0].objectSid.raw_values[0][:-4])  # without the RID
    assert sids[0] != sids[1]


def test_other_domain_service_account_reads_people_and_groups(samba_ad_other):
    user = samba_ad_other.users["jdoe"]
    with bound(samba_ad_other, samba_ad_other.service_dn, samba_ad_other.service_password) as service:
        service.search(samba_ad_other.users_dn, "(sAMAccountName=jdoe)",
                       attributes=["mail", "displayName", "department", "memberOf"])
        assert [entry.entry_dn for entry in service.entries] == [user.dn]
        entry = service.entries[0].entry_attributes_as_dict
    assert (entry["mail"], entry["displayName"], entry["department"], entry["memberOf"]) == (
        [user.mail], [user.display_name], ["Research"], [samba_ad_other.groups["research"]])


def test_other_domain_lock_out_and_unlock(samba_ad_other):
    user = samba_ad_other.users["lockable"]
    samba_ad_other.lock_out(user)
    samba_ad_other.unlock(user)
    assert bind_result(samba_ad_other, user.dn, user.password)["result"] == 0


# --- both -----------------------------------------------------------------------------------------

@pytest.fixture(params=["samba_ad", "openldap"])
def directory(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(params=["samba_ad", "samba_ad_second_dc", "samba_ad_other", "openldap"])
def any_server(request):
    """Every directory server a fixture runs: each must serve our certificate for its own address."""
    return request.getfixturevalue(request.param)


def test_nbsp_password_works_only_as_bytes(directory):
    """ldap3 SASLpreps a str password (NBSP -> space); bytes go out as typed. The str attempt comes first,
    so the right password afterwards resets the failure count."""
    user = directory.users["nbsp_password"]
    assert bind_result(directory, user.dn, user.password)["result"] == 49
    assert bind_result(directory, user.dn, user.password_bytes)["result"] == 0


def test_the_server_certificate_is_ours_and_names_the_host(any_server):
    with socket.create_connection((any_server.host, any_server.ldaps_port), timeout=5) as raw:
        context = ssl.create_default_context(cafile=str(any_server.ca_file))
        with context.wrap_socket(raw, server_hostname=any_server.host) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_the_wrong_ca_file_fails_verification(any_server):
    server = ldap3.Server(any_server.host, port=any_server.ldaps_port, use_ssl=True, get_info=ldap3.NONE,
                          tls=tls_settings(any_server.wrong_ca_file, any_server.host), connect_timeout=5)
    with pytest.raises(LDAPSocketOpenError, match="certificate verify failed"):
        ldap3.Connection(server, auto_bind=False).open()


def test_an_address_not_in_the_certificate_fails_the_hostname_check(openldap):
    server = ldap3.Server(openldap.host_not_in_certificate, port=openldap.ldaps_port, use_ssl=True,
                          get_info=ldap3.NONE, tls=tls_settings(openldap.ca_file, openldap.host_not_in_certificate),
                          connect_timeout=5)
    with pytest.raises(LDAPSocketOpenError, match="does not match the server name in the URL"):
        ldap3.Connection(server).open()


def test_dead_url_refuses_at_once(dead_ldap_url):
    server = ldap3.Server(dead_ldap_url, get_info=ldap3.NONE, connect_timeout=5)
    with pytest.raises(LDAPSocketOpenError, match="refused"):
        ldap3.Connection(server).open()


def test_black_hole_accepts_and_never_answers(blackhole_ldap_url):
    server = ldap3.Server(blackhole_ldap_url, get_info=ldap3.NONE, connect_timeout=5)
    # receive_timeout must be an int: ldap3 packs it with struct (a float raises struct.error).
    connection = ldap3.Connection(server, "cn=x", "y", receive_timeout=1)
    connection.open()  # TCP is accepted
    with pytest.raises(LDAPException):
        connection.bind()
