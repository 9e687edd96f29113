"""The directory layer on its own against real servers: connection reuse and TLS host name checks."""

from __future__ import annotations

import pytest

from ssobridge.config import DEFAULT_ATTRIBUTES, DEFAULT_USER_FILTERS, DirectorySettings
from ssobridge.directory import AccountState, Directory, DirectoryUnavailable, parse_login_name


def settings_for(directory, **overrides) -> DirectorySettings:
    kind = "active_directory" if directory.kind == "ad" else "ldap"
    values = dict(name=directory.kind, type=kind, urls=(directory.ldaps_url,), base_dn=directory.base_dn,
                  bind_dn=directory.service_dn, bind_password=directory.service_password,
                  ca_file=str(directory.ca_file), start_tls=False, allow_plaintext=False, connect_timeout=3,
                  timeout=5, netbios_domain=directory.netbios_domain,
                  upn_suffixes=(directory.upn_suffix,) if directory.upn_suffix else (),
                  user_filter=DEFAULT_USER_FILTERS[kind], default=False, retry_down_after=30,
                  ppolicy_default_dn=None, attributes=DEFAULT_ATTRIBUTES)
    values.update(overrides)
    return DirectorySettings(**values)


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


def test_the_system_trust_store_does_not_trust_a_private_ca(openldap):
    bridge_side = Directory(settings_for(openldap, ca_file=None))
    try:
        with pytest.raises(DirectoryUnavailable, match="TLS certificate not trusted"):
            bridge_side.find_user(parse_login_name("jdoe"))
    finally:
        bridge_side.close()
