"""The directory layer on its own against real servers: connection reuse and TLS host name checks."""

from __future__ import annotations

import ipaddress
import re

import pytest
from cryptography import x509

from ssobridge.directory import AccountState, Directory, DirectorySet, DirectoryUnavailable, parse_login_name
from tests.support.services import settings_for


@pytest.fixture(params=["samba_ad", "openldap"])
def directory(request):
    return request.getfixturevalue(request.param)


def test_connections_are_reused_across_logins(directory):
    bridge_side = Directory(settings_for(directory))
    user = directory.users["jdoe"]
    try:
        for _ in range(5):
            entry = bridge_side.find_user(parse_login_name(user.login))
            assert bridge_side.verify_password(entry, user.password_bytes) is AccountState.OK
        assert bridge_side.connector.opened == 2  # one service-account connection, one for user binds
    finally:
        bridge_side.close()


def test_a_certificate_for_another_host_is_refused(openldap):
    url = f"ldaps://{openldap.host_not_in_certificate}:{openldap.ldaps_port}"
    bridge_side = Directory(settings_for(openldap, urls=(url,)))
    try:
        with pytest.raises(DirectoryUnavailable, match="does not match the server name"):
            bridge_side.find_user(parse_login_name("jdoe"))
    finally:
        bridge_side.close()


def test_a_url_by_ip_address_verifies_against_the_certificates_ip_names(directory):
    """OpenSSL checks the address in the handshake (ldap3's own check ignores IP SANs on Python 3.12+)."""
    assert ipaddress.ip_address(directory.host)
    bridge_side = Directory(settings_for(directory, urls=(f"ldaps://{directory.host}:{directory.ldaps_port}",)))
    try:
        assert bridge_side.find_user(parse_login_name(directory.users["jdoe"].login)) is not None
        assert bridge_side.connector.certificate_expiry  # the handshake was verified and its certificate read
    finally:
        bridge_side.close()


def test_starttls_to_a_host_not_in_the_certificate_is_refused_with_its_names(openldap):
    url = f"ldap://{openldap.host_not_in_certificate}:{openldap.ldap_port}"
    bridge_side = Directory(settings_for(openldap, urls=(url,), start_tls=True))
    try:
        with pytest.raises(DirectoryUnavailable, match=re.escape(
                f"TLS certificate does not match the server name in the URL ({openldap.host_not_in_certificate}); "
                "the certificate names: localhost")):
            bridge_side.find_user(parse_login_name("jdoe"))
    finally:
        bridge_side.close()


def test_a_ca_file_holding_the_servers_own_certificate_pins_it_on_every_python(openldap, pki, tmp_path):
    """What `ssobridge init` writes when a DC presents no CA: its own certificate as ca_file (partial chain)."""
    pinned = tmp_path / "dc.pem"
    pinned.write_bytes(pki.server.cert_file.read_bytes())
    bridge_side = Directory(settings_for(openldap, ca_file=str(pinned)))
    try:
        assert bridge_side.find_user(parse_login_name("jdoe")) is not None
    finally:
        bridge_side.close()
    other = tmp_path / "other.pem"  # another server's certificate pins nothing for this one
    other.write_bytes(pki.wrong_host.cert_file.read_bytes())
    bridge_side = Directory(settings_for(openldap, ca_file=str(other)))
    try:
        with pytest.raises(DirectoryUnavailable, match="TLS certificate not trusted"):
            bridge_side.find_user(parse_login_name("jdoe"))
    finally:
        bridge_side.close()


def test_the_system_trust_store_does_not_trust_a_private_ca(openldap):
    bridge_side = Directory(settings_for(openldap, ca_file=None))
    try:
        with pytest.raises(DirectoryUnavailable, match="TLS certificate not trusted"):
            bridge_side.find_user(parse_login_name("jdoe"))
    finally:
        bridge_side.close()


def group_names(groups) -> set[str]:
    return {name.lower() for g in groups for name in g.names}


def test_nested_groups_and_the_primary_group_are_resolved(directory):
    bridge_side = Directory(settings_for(directory))
    try:
        jdoe = bridge_side.find_user(parse_login_name("jdoe"))
        names = group_names(bridge_side.groups(jdoe))
        assert {"sales team", "all staff"} <= names  # "All Staff" only through "Sales Team"
        if directory.kind == "ad":
            assert "domain users" in names  # the primary group, which no member attribute lists
        nobody = bridge_side.find_user(parse_login_name("nmail"))
        assert {"sales team", "all staff"}.isdisjoint(group_names(bridge_side.groups(nobody)))
    finally:
        bridge_side.close()


def test_memberships_are_cached_per_user(directory):
    bridge_side = Directory(settings_for(directory))
    try:
        jdoe = bridge_side.find_user(parse_login_name("jdoe"))
        first = bridge_side.groups(jdoe)
        with directory.outage():
            assert bridge_side.groups(jdoe) == first
    finally:
        bridge_side.close()


def test_users_are_found_by_email(directory):
    bridge_side = Directory(settings_for(directory))
    try:
        user = directory.users["jdoe"]
        assert bridge_side.find_user_by_email(user.mail.upper()).dn.lower() == user.dn.lower()
        assert bridge_side.find_user_by_email("nobody@example.test") is None
        assert bridge_side.find_user_by_email("*") is None
    finally:
        bridge_side.close()


def test_openldap_unique_member_and_posix_groups_count_too(openldap):
    from tests.support.directory import bound
    jdoe = openldap.users["jdoe"]
    unique = f"cn=Auditors,{openldap.users_dn}"
    posix = f"cn=shell-users,{openldap.users_dn}"
    with bound(openldap, openldap.admin_dn, openldap.admin_password) as admin:
        assert admin.add(unique, ["groupOfUniqueNames"], {"uniqueMember": [jdoe.dn]}), admin.result
        assert admin.add(posix, ["posixGroup"], {"gidNumber": 5000, "memberUid": [jdoe.login]}), admin.result
    bridge_side = Directory(settings_for(openldap))
    try:
        names = group_names(bridge_side.groups(bridge_side.find_user(parse_login_name("jdoe"))))
        assert {"auditors", "shell-users", "sales team", "all staff"} <= names
    finally:
        bridge_side.close()
        with bound(openldap, openldap.admin_dn, openldap.admin_password) as admin:
            admin.delete(unique)
            admin.delete(posix)


def test_ad_users_are_found_by_proxy_addresses(samba_ad):
    from ldap3 import MODIFY_DELETE, MODIFY_REPLACE

    from tests.support.directory import bound
    jdoe = samba_ad.users["jdoe"]
    with bound(samba_ad, samba_ad.admin_dn, samba_ad.admin_password) as admin:
        assert admin.modify(jdoe.dn, {"proxyAddresses": [(MODIFY_REPLACE, ["SMTP:jdoe@example.test",
                                                                          "smtp:john.alias@example.test"])]})
    bridge_side = Directory(settings_for(samba_ad))
    try:
        assert bridge_side.find_user_by_email("John.Alias@example.test").dn.lower() == jdoe.dn.lower()
    finally:
        bridge_side.close()
        with bound(samba_ad, samba_ad.admin_dn, samba_ad.admin_password) as admin:
            admin.modify(jdoe.dn, {"proxyAddresses": [(MODIFY_DELETE, [])]})


def test_a_search_base_that_does_not_exist_is_not_found_not_an_outage(directory):
    bridge_side = Directory(settings_for(directory))
    nowhere = Directory(settings_for(directory, base_dn=f"ou=nowhere,{directory.base_dn}",
                                     group_base_dn=f"ou=nowhere,{directory.base_dn}"))
    try:
        assert bridge_side.group_exists(f"cn=no such group,{directory.base_dn}") is False
        assert bridge_side.group_exists(directory.groups["sales"]) is True
        assert bridge_side.display_name_of(f"cn=Gone Manager,{directory.users_dn}") == "Gone Manager"
        assert nowhere.find_user(parse_login_name("jdoe")) is None
        assert nowhere.group_exists("Sales Team") is False
    finally:
        bridge_side.close()
        nowhere.close()


def test_in_an_outage_group_lookups_raise_and_no_name_is_cached(openldap):
    bridge_side = Directory(settings_for(openldap, connect_timeout=1, timeout=2))
    manager = openldap.users["jdoe"]
    try:
        with openldap.outage():
            with pytest.raises(DirectoryUnavailable):
                bridge_side.group_exists(openldap.groups["sales"])
            with pytest.raises(DirectoryUnavailable):
                bridge_side.group_exists("Sales Team")
            with pytest.raises(DirectoryUnavailable):
                bridge_side.display_name_of(manager.dn)
        assert bridge_side.display_name_of(manager.dn) == manager.display_name
    finally:
        bridge_side.close()


def test_each_servers_certificate_expiry_is_read_when_a_tls_connection_opens(openldap, pki):
    slapd = x509.load_pem_x509_certificate(pki.server.cert_file.read_bytes()).not_valid_after_utc.timestamp()
    over_ldaps = Directory(settings_for(openldap, name="ldaps"))
    over_start_tls = Directory(settings_for(openldap, name="start-tls", urls=(openldap.ldap_url,), start_tls=True))
    plain = Directory(settings_for(openldap, name="plain", urls=(openldap.ldap_url,)))
    directories = DirectorySet([over_ldaps, over_start_tls, plain])
    try:
        assert directories.certificate_expiries() == {}  # nothing opened yet
        for directory in directories.directories:
            directory.find_user(parse_login_name("jdoe"))
        assert directories.certificate_expiries() == {f"directory:ldaps:{openldap.ldaps_url}": slapd,
                                                      f"directory:start-tls:{openldap.ldap_url}": slapd}
    finally:
        directories.close()
