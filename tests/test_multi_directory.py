"""One ssobridge, over HTTPS, in front of two AD domains and an OpenLDAP directory, with the first domain
controller of a domain stopped: the .NET client signs users of all three in."""

from __future__ import annotations

import time

import pytest

from tests.support.services import WEB_SERVICE_PASSWORD, directory_toml, start_service

AUTH = f"authPW={WEB_SERVICE_PASSWORD}"
DISABLED = "Your account is disabled. Contact your IT helpdesk."


@pytest.fixture(scope="module")
def bridge(samba_ad, samba_ad_second_dc, samba_ad_other, openldap, pki, tmp_path_factory):
    example = directory_toml(
        "example", "active_directory", [samba_ad_second_dc.ldaps_url, samba_ad.ldaps_url], samba_ad.base_dn,
        samba_ad.service_dn, samba_ad.service_password, ca_file=str(samba_ad.ca_file), netbios_domain="EXAMPLE",
        upn_suffixes=["example.test"], default=True, connect_timeout=2, timeout=5, retry_down_after=60)
    other = directory_toml(
        "other", "active_directory", [samba_ad_other.ldaps_url], samba_ad_other.base_dn, samba_ad_other.service_dn,
        samba_ad_other.service_password, ca_file=str(samba_ad_other.ca_file), netbios_domain="OTHER",
        upn_suffixes=["other.test"])
    ldap = directory_toml(
        "openldap", "ldap", [openldap.ldaps_url], openldap.base_dn, openldap.service_dn, openldap.service_password,
        ca_file=str(openldap.ca_file), upn_suffixes=["example.org"])
    ldap += '[directory.attributes]\n"cf_Department" = ["departmentNumber"]\n'
    body = '[attributes]\n"cf_Department" = ["department"]\n' + example + other + ldap
    service = start_service(tmp_path_factory.mktemp("multi"), body, tls=pki.server)
    yield service
    service.stop()


def login(dotnet, service, pki, username: str, password: str, soap: str = "11") -> dict:
    return dotnet.call(service.url, "Authenticate", [AUTH, f"loginUsername={username}", f"loginPassword={password}"],
                       soap=soap, ca_file=str(pki.ca.cert_file))


def ok(email: str, name: str, department: str) -> dict:
    return {"Success": True, "Message": "Login Successful", "OutputVariables": [
        "Authentication=OK", f"EmailAddress={email}", f"DisplayName={name}", f"cf_Department={department}"]}


@pytest.mark.parametrize("soap", ["11", "12"])
def test_users_of_two_ad_domains_and_openldap_log_in_with_the_first_dc_stopped(
        bridge, dotnet, pki, samba_ad, samba_ad_second_dc, samba_ad_other, openldap, soap):
    example, other, ldap = samba_ad.users["jdoe"], samba_ad_other.users["jdoe"], openldap.users["jdoe"]
    with samba_ad_second_dc.outage():  # the first URL of EXAMPLE
        started = time.monotonic()
        for username in ("EXAMPLE\\jdoe", "jdoe", "jdoe@example.test"):
            assert login(dotnet, bridge, pki, username, example.password, soap) == \
                ok(example.mail, "John Doe", "Sales")
        assert time.monotonic() - started < 10
        for username in ("OTHER\\jdoe", "jdoe@other.test", "other/JDOE"):
            assert login(dotnet, bridge, pki, username, other.password, soap) == \
                ok(other.mail, "Jane Other", "Research")
        assert login(dotnet, bridge, pki, "jdoe@example.org", ldap.password, soap) == \
            ok(ldap.mail, "John Doe", "Sales")


def test_the_domain_decides_who_jdoe_is(bridge, dotnet, pki, samba_ad, samba_ad_other):
    wrong = {"Success": True, "Message": "Wrong username or password.", "OutputVariables": ["Authentication=FAIL"]}
    assert login(dotnet, bridge, pki, "OTHER\\jdoe", samba_ad.users["jdoe"].password) == wrong
    assert login(dotnet, bridge, pki, "EXAMPLE\\jdoe", samba_ad_other.users["jdoe"].password) == wrong
    assert login(dotnet, bridge, pki, "NOWHERE\\jdoe", samba_ad.users["jdoe"].password) == wrong
    disabled = samba_ad_other.users["disabled"]
    assert login(dotnet, bridge, pki, f"OTHER\\{disabled.login}", disabled.password)["Message"] == DISABLED


def test_a_dead_first_dc_costs_one_connect_timeout_once(bridge, dotnet, pki, samba_ad, samba_ad_second_dc):
    user = samba_ad.users["jdoe"]
    with samba_ad_second_dc.outage():
        before = bridge.log().count("event=directory_server_down directory=example")
        timings = []
        for _ in range(5):
            started = time.monotonic()
            assert login(dotnet, bridge, pki, "EXAMPLE\\jdoe", user.password)["OutputVariables"][0] == \
                "Authentication=OK"
            timings.append(time.monotonic() - started)
        # Pooled connections to the stopped DC broke; at most one reconnect per pool notices it is down.
        assert bridge.log().count("event=directory_server_down directory=example") - before <= 2
        assert max(timings[2:]) < 1.0
