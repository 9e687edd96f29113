"""The service account guard against real Samba AD and slapd: a wrong bind_password never locks the service
account, whatever the portal and `ssobridge check` do, and service resumes once the account is fixed."""

from __future__ import annotations

import logging
import time

import ldap3
import pytest

from ssobridge.config import DEFAULT_MESSAGES, DEFAULT_USER_FILTERS, DirectorySettings, LoginSettings
from ssobridge.directory import Directory, DirectorySet, parse_login_name
from ssobridge.directory.connections import ServiceAccountRefused
from tests.support.directory import bound
from tests.support.services import (ATTRIBUTES, MESSAGES, ad_config, authenticate, fail, identity, ok,
                                    start_service)
from ssobridge.providers.base import Variables
from ssobridge.providers.login import LoginProvider
from tests.support.services import settings_for, ssobridge

WRONG_BIND_PASSWORD = "Not-The-Service-Passw0rd"


def service_account_counters(ad) -> tuple[int, int]:
    """(badPwdCount, lockoutTime) of the service account, as the DC's administrator reads them."""
    with bound(ad, ad.admin_dn, ad.admin_password) as admin:
        admin.search(ad.service_dn, "(objectClass=*)", ldap3.BASE, attributes=["badPwdCount", "lockoutTime"])
        raw = admin.response[0]["raw_attributes"]
    return int((raw.get("badPwdCount") or [b"0"])[0]), int((raw.get("lockoutTime") or [b"0"])[0])


def right_password_binds(ad) -> bool:
    """Also what puts badPwdCount back to 0 for the next test."""
    with bound(ad, ad.service_dn, ad.service_password):
        return True


def refusal_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "event=service_account_refused" in line]


def test_a_wrong_bind_password_under_100_logins_and_3_checks_never_locks_the_service_account(tmp_path, samba_ad):
    jdoe = samba_ad.users["jdoe"]
    assert service_account_counters(samba_ad) == (0, 0)
    service = start_service(tmp_path, ad_config(samba_ad, bind_password=WRONG_BIND_PASSWORD), log_level="INFO")
    try:
        answers = [authenticate(service, jdoe.login, jdoe.password) for _ in range(100)]
        checks = [ssobridge("check", "--config", str(tmp_path / "ssobridge.toml")) for _ in range(3)]
        log = service.log()
    finally:
        service.stop()
    try:
        assert answers == [fail(MESSAGES["unavailable"])] * 100
        for done in checks:
            assert done.returncode == 1
            assert "  service account: PROBLEM: service account password is wrong (data 52e), refused by " \
                   f"{samba_ad.ldaps_url} at " in done.stdout
            assert "not bound again, so that it is not locked out (service_retry_seconds = 60)" in done.stdout
        [line] = refusal_lines(log)
        assert line.split(" ", 3)[3] == (  # after the date, time and process id
            f"ERROR ssobridge.directory event=service_account_refused directory=example-ad "
            f"server={samba_ad.ldaps_url} bind_dn='{samba_ad.service_dn}' code='data 52e' "
            "reason='service account password is wrong' no_service_bind_for=60.0s")
        assert WRONG_BIND_PASSWORD not in log
        bad_password_count, lockout_time = service_account_counters(samba_ad)
        print(f"service account after 100 logins and 3 checks: badPwdCount={bad_password_count}")
        assert (bad_password_count, lockout_time) == (1, 0)
    finally:
        assert right_password_binds(samba_ad)


def test_within_service_retry_seconds_calls_fail_at_once_and_service_resumes_with_the_right_password(
        tmp_path, samba_ad):
    jdoe = samba_ad.users["jdoe"]
    retry = 6
    service = start_service(tmp_path, ad_config(samba_ad, bind_password=WRONG_BIND_PASSWORD,
                                                service_retry_seconds=retry) + ATTRIBUTES)
    try:
        assert authenticate(service, jdoe.login, jdoe.password) == fail(MESSAGES["unavailable"])
        refused_at = time.monotonic()
        started = time.perf_counter()
        answers = [authenticate(service, jdoe.login, jdoe.password) for _ in range(20)]
        per_call = (time.perf_counter() - started) / 20
    finally:
        service.stop()
    assert answers == [fail(MESSAGES["unavailable"])] * 20
    assert per_call < 0.05, f"{per_call * 1000:.1f} ms per call"
    assert service_account_counters(samba_ad) == (1, 0)  # no bind: the DC saw only the first

    # A new config with the right password, another process: the refusal in data_dir still holds...
    service = start_service(tmp_path, ad_config(samba_ad, service_retry_seconds=retry) + ATTRIBUTES)
    try:
        assert time.monotonic() - refused_at < retry - 1, "the service took too long to start for this test"
        assert authenticate(service, jdoe.login, jdoe.password) == fail(MESSAGES["unavailable"])
        assert service_account_counters(samba_ad) == (1, 0)
        # ...until the interval is over.
        time.sleep(max(0.0, refused_at + retry + 0.2 - time.monotonic()))
        assert authenticate(service, jdoe.login, jdoe.password) == ok(*identity(samba_ad, "jdoe"))
    finally:
        service.stop()
    assert service_account_counters(samba_ad) == (0, 0)  # the right password reset the count
    assert not list(tmp_path.glob("service-guard-*.json"))


def test_check_binds_once_per_directory_and_again_only_with_force(tmp_path, samba_ad, samba_ad_second_dc):
    urls = [samba_ad.ldaps_url, samba_ad_second_dc.ldaps_url]
    config = tmp_path / "ssobridge.toml"

    def check(bind_password: str, *options: str):
        config.write_text("[smartertrack]\nweb_service_password = 'x'\n"
                          + ad_config(samba_ad, urls=urls, bind_password=bind_password), encoding="utf-8")
        return ssobridge("check", "--config", str(config), *options)

    try:
        first = check(WRONG_BIND_PASSWORD)
        assert first.returncode == 1
        assert f"  {samba_ad.ldaps_url}: PROBLEM\n    service account password is wrong (data 52e), refused by " \
               f"{samba_ad.ldaps_url} at " in first.stdout
        assert f"  {samba_ad_second_dc.ldaps_url}: NOT TRIED: the service account was refused by " \
               f"{samba_ad.ldaps_url}; the other servers would refuse it too" in first.stdout
        assert service_account_counters(samba_ad) == (1, 0)
        assert service_account_counters(samba_ad_second_dc) == (0, 0)

        remembered = check(samba_ad.service_password)  # fixed, but within service_retry_seconds
        assert remembered.returncode == 1
        assert "  service account: PROBLEM: service account password is wrong (data 52e)" in remembered.stdout
        assert "then run `ssobridge check --force` to bind now" in remembered.stdout
        assert f"  {samba_ad.ldaps_url}: OK" not in remembered.stdout
        assert service_account_counters(samba_ad) == (1, 0)

        wrong_again = check(WRONG_BIND_PASSWORD, "--force")  # --force binds once more, and only once
        assert wrong_again.returncode == 1 and "NOT TRIED" in wrong_again.stdout
        assert service_account_counters(samba_ad) == (2, 0)

        forced = check(samba_ad.service_password, "--force")
        assert forced.returncode == 0, forced.stdout
        assert f"  {samba_ad.ldaps_url}: OK" in forced.stdout and f"  {samba_ad_second_dc.ldaps_url}: OK" in \
            forced.stdout
        assert service_account_counters(samba_ad) == (0, 0)
        assert check(samba_ad.service_password).returncode == 0  # the record is gone
    finally:
        assert right_password_binds(samba_ad)


def ldap_settings(openldap, **overrides) -> DirectorySettings:
    values = dict(name="openldap", type="ldap", urls=(openldap.ldaps_url,), base_dn=openldap.base_dn,
                  bind_dn=openldap.service_dn, bind_password=openldap.service_password,
                  ca_file=str(openldap.ca_file), connect_timeout=3, timeout=5,
                  user_filter=DEFAULT_USER_FILTERS["ldap"])
    values.update(overrides)
    return DirectorySettings(**values)


def test_slapd_service_account_refusals_are_told_apart_by_the_ppolicy_control(tmp_path, openldap, caplog):
    wrong = Directory(ldap_settings(openldap, bind_password=WRONG_BIND_PASSWORD), data_dir=str(tmp_path / "a"))
    try:
        with pytest.raises(ServiceAccountRefused, match=r"service account password is wrong \(result 49\), "):
            wrong.find_user(parse_login_name("jdoe"))
    finally:
        wrong.close()

    with bound(openldap, openldap.admin_dn, openldap.admin_password) as admin:
        admin.modify(openldap.service_dn, {"pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, ["000001010000Z"])]})
        assert admin.result["result"] == 0, admin.result
    locked = Directory(ldap_settings(openldap), data_dir=str(tmp_path / "b"))
    try:
        with pytest.raises(ServiceAccountRefused,
                           match=r"service account is LOCKED \(result 49 accountLocked\), refused by "):
            locked.find_user(parse_login_name("jdoe"))
        with pytest.raises(ServiceAccountRefused, match="service account is LOCKED"):  # remembered: no bind
            locked.find_user(parse_login_name("jdoe"))
    finally:
        locked.close()
        with bound(openldap, openldap.admin_dn, openldap.admin_password) as admin:
            admin.modify(openldap.service_dn, {"pwdAccountLockedTime": [(ldap3.MODIFY_DELETE, [])]})
    assert [r.getMessage().split(" reason=")[1] for r in caplog.records
            if "event=service_account_refused" in r.getMessage()] == \
        ["'service account password is wrong' no_service_bind_for=60.0s",
         "'service account is LOCKED' no_service_bind_for=60.0s"]
    fixed = Directory(ldap_settings(openldap), data_dir=str(tmp_path / "c"))
    try:
        assert fixed.find_user(parse_login_name("jdoe")).dn.lower().startswith("uid=jdoe,")
    finally:
        fixed.close()


def test_logins_blocked_by_the_guard_log_warnings_and_the_refusal_alone_is_an_error(tmp_path, samba_ad, caplog):
    jdoe = samba_ad.users["jdoe"]
    settings = settings_for(samba_ad, name="example-ad", bind_password=WRONG_BIND_PASSWORD)
    directories = DirectorySet([Directory(settings, data_dir=str(tmp_path))])
    provider = LoginProvider(directories, DEFAULT_MESSAGES, LoginSettings())
    caplog.set_level(logging.INFO)
    try:
        answers = [provider.authenticate(Variables.from_pairs([("loginUsername", jdoe.login),
                                                               ("loginPassword", jdoe.password)]))
                   for _ in range(5)]
    finally:
        directories.close()
        assert right_password_binds(samba_ad)
    assert {(a.success, a.message, a.outputs) for a in answers} == \
        {(True, DEFAULT_MESSAGES["directory_unavailable"], (("Authentication", "FAIL"),))}
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert [line.split(" ", 1)[0] for line in errors] == ["event=service_account_refused"]
    blocked = [r for r in caplog.records if "event=directory_unavailable" in r.getMessage()]
    assert [r.levelname for r in blocked] == ["WARNING"] * 5
    assert blocked[-1].getMessage().startswith(
        "event=directory_unavailable operation=Authenticate directory=example-ad "
        'error="service account password is wrong (data 52e), refused by ')
