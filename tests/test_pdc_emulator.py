"""AD: a login's search and bind go to the PDC emulator (fSMORoleOwner) first when it is among urls.

badPwdCount is not replicated, and the PDC emulator's is the fullest. The fixture's second DC is a COPY of
the first: both are "DC1", so both name DC1 (dc1.example.test, which does not resolve on a test machine) as
the PDC emulator. To make the domain the second DC describes one where the PDC emulator is the FIRST DC,
the test sets DC1's server object dNSHostName, on the second DC only, to the first DC's address, which
is the host of its URL: what a real domain gives with dNSHostName = the name in urls.
"""

from __future__ import annotations

import contextlib
import logging

import ldap3
import pytest

from ssobridge.directory import Directory, parse_login_name
from tests.support.directory import bound
from tests.support.lockout import bad_password_count
from tests.support.services import settings_for

DC1_SERVER = "CN=DC1,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,DC=example,DC=test"


@contextlib.contextmanager
def pdc_host_name(ad, host: str):
    """DC1's server object (the PDC emulator's, per fSMORoleOwner) says dNSHostName=host, on `ad` only."""
    def set_to(value: str) -> None:
        with bound(ad, ad.admin_dn, ad.admin_password) as admin:
            admin.modify(DC1_SERVER, {"dNSHostName": [(ldap3.MODIFY_REPLACE, [value])]})
            assert admin.result["result"] == 0, admin.result
    set_to(host)
    try:
        yield
    finally:
        set_to("dc1.example.test")


@pytest.fixture
def second_dc_first(samba_ad, samba_ad_second_dc):
    return lambda **overrides: settings_for(samba_ad, urls=(samba_ad_second_dc.ldaps_url, samba_ad.ldaps_url),
                                            **overrides)


def test_logins_search_and_bind_on_the_pdc_emulator_when_it_is_among_urls(
        samba_ad, samba_ad_second_dc, second_dc_first, caplog):
    user = samba_ad.users["jdoe"]
    caplog.set_level(logging.INFO, "ssobridge.directory")
    before = bad_password_count(samba_ad, user.dn), bad_password_count(samba_ad_second_dc, user.dn)
    with pdc_host_name(samba_ad_second_dc, samba_ad.host):
        directory = Directory(second_dc_first())
        try:
            entry = directory.find_user(parse_login_name(user.login))
            assert entry.server == samba_ad.ldaps_url
            assert directory.verify_password(entry, b"wrong-" + user.password_bytes).name == "WRONG_CREDENTIALS"
            counted = bad_password_count(samba_ad, user.dn), bad_password_count(samba_ad_second_dc, user.dn)
            again = directory.find_user(parse_login_name(user.login))
            assert again.server == samba_ad.ldaps_url
            assert directory.verify_password(again, user.password_bytes).name == "OK"  # resets the count
        finally:
            directory.close()
    assert counted == (before[0] + 1, before[1])  # the wrong password went to the PDC emulator only
    assert [r.getMessage() for r in caplog.records if "event=pdc_emulator_first" in r.getMessage()] == \
        [f"event=pdc_emulator_first directory=ad server={samba_ad.ldaps_url} host={samba_ad.host}"]


def test_the_configured_order_stays_when_the_pdc_emulator_is_not_among_urls(samba_ad_second_dc, second_dc_first):
    # Both fixture DCs name dc1.example.test, which is not the host of any URL and does not resolve here.
    directory = Directory(second_dc_first())
    try:
        assert directory.find_user(parse_login_name("jdoe")).server == samba_ad_second_dc.ldaps_url
    finally:
        directory.close()


def test_pdc_emulator_first_false_keeps_the_configured_order(samba_ad, samba_ad_second_dc, second_dc_first):
    with pdc_host_name(samba_ad_second_dc, samba_ad.host):
        directory = Directory(second_dc_first(pdc_emulator_first=False))
        try:
            assert directory.find_user(parse_login_name("jdoe")).server == samba_ad_second_dc.ldaps_url
        finally:
            directory.close()
