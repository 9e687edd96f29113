"""The lockout shield on real directories: strangers typing passwords cannot lock an employee out.

The `lockable` user locks after 3 wrong passwords (AD: a PSO; OpenLDAP: its own pwdPolicySubentry), so the
shield's soft threshold for it is 1; everybody else locks after 10 (soft threshold 5). Each test runs its
own ssobridge (its own shield state) and restores the directory's counters.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.lockout import binds_since, directory_failures, directory_locked, slapd_binds
from tests.support.services import (WRONG, ad_config, authenticate, fail, openldap_config, start_service)

DEFAULT_POLICY_DN = "cn=default,ou=policies,dc=example,dc=org"
LOCKOUT = "Too many failed sign-ins. Try again later or contact your IT helpdesk."


@pytest.fixture(params=["ad", "openldap"])
def shielded(request, tmp_path):
    """(directory, a fresh ssobridge on it) for each directory type."""
    directory = request.getfixturevalue("samba_ad" if request.param == "ad" else "openldap")
    config = ad_config(directory) if request.param == "ad" else \
        openldap_config(directory, ppolicy_default_dn=DEFAULT_POLICY_DN)
    service = start_service(tmp_path, config, log_level="INFO")
    try:
        yield directory, service
    finally:
        service.stop()
        for user in directory.users.values():
            directory.unlock(user) if user.key == "lockable" else None


def _storm(service, login: str, count: int, threads: int = 8) -> list[str]:
    with ThreadPoolExecutor(threads) as pool:
        results = pool.map(lambda i: authenticate(service, login, f"wrong-{i}-Passw0rd")["Message"], range(count))
        return list(results)


def test_a_storm_of_wrong_passwords_never_locks_the_account_and_the_user_still_gets_in(shielded):
    directory, service = shielded
    user = directory.users["lockable"]
    assert authenticate(service, user.login, user.password)["OutputVariables"][0] == "Authentication=OK"
    binds_before = slapd_binds(directory) if directory.kind == "openldap" else None
    started = time.monotonic()
    first = _storm(service, user.login, 500)
    assert directory_failures(directory, user) == 1  # the soft threshold: one wrong bind, then none
    with ThreadPoolExecutor(1) as pool:
        second = pool.submit(_storm, service, user.login, 500)
        time.sleep(0.2)
        during = authenticate(service, user.login, user.password)  # known_password: still bound
        messages = first + second.result()
    elapsed = time.monotonic() - started
    assert during["OutputVariables"][0] == "Authentication=OK"
    assert messages.count(WRONG) == 1 and messages.count(LOCKOUT) == 999
    assert directory_failures(directory, user) == 0  # the right password reset it; no wrong bind since
    assert not directory_locked(directory, user)
    wrong_binds = service.log().count("reason='wrong_credentials'")
    assert wrong_binds == 1
    # slapd's bind counter also counts the service account's binds of new pooled connections: printed only
    binds = binds_since(directory, binds_before) if binds_before is not None else "n/a"
    print(f"\n{directory.kind}: 1000 wrong passwords in {elapsed:.1f} s, wrong binds {wrong_binds}, "
          f"directory count after {directory_failures(directory, user)}, "
          f"slapd binds (user and service) {binds}")


def test_the_same_wrong_password_again_is_not_counted(shielded):
    directory, service = shielded
    user = directory.users["jdoe"]  # locks after 10: soft threshold 5
    try:
        for _ in range(8):
            assert authenticate(service, user.login, "old-Passw0rd-on-a-phone") == fail(WRONG)
        assert directory_failures(directory, user) == 1
        assert authenticate(service, user.login, user.password)["OutputVariables"][0] == "Authentication=OK"
    finally:
        service.unlock(user.login)


def test_an_unknown_user_gets_the_same_messages_in_the_same_order_as_a_known_one(shielded):
    directory, service = shielded
    user = directory.users["jdoe"]
    try:
        known = [authenticate(service, user.login, f"wrong-{i}")["Message"] for i in range(7)]
        unknown = [authenticate(service, "nobody-here", f"wrong-{i}")["Message"] for i in range(7)]
        assert known == unknown == [WRONG] * 5 + [LOCKOUT] * 2
        if directory.kind == "openldap":  # slapd finds uid "ｊｄｏｅ" as jdoe: the same DN, the same count
            assert authenticate(service, "ｊｄｏｅ", "wrong-x")["Message"] == LOCKOUT
    finally:
        service.unlock(user.login)
        directory.unlock(user)


def test_sixteen_concurrent_wrong_passwords_do_not_overshoot(shielded):
    directory, service = shielded
    user = directory.users["jdoe"]
    try:
        messages = _storm(service, user.login, 16, threads=16)
        assert messages.count(WRONG) == 5 and messages.count(LOCKOUT) == 11
        assert directory_failures(directory, user) == 5
    finally:
        service.unlock(user.login)
        directory.unlock(user)


def test_lockouts_lists_a_soft_locked_account_and_unlock_lifts_it(samba_ad, tmp_path):
    service = start_service(tmp_path, ad_config(samba_ad), log_level="INFO")
    user = samba_ad.users["lockable"]
    try:
        assert service.command("lockouts").stdout == "No account is soft-locked.\n"
        assert authenticate(service, user.login, "wrong-Passw0rd") == fail(WRONG)
        assert authenticate(service, user.login, user.password) == fail(LOCKOUT)
        listed = service.command("lockouts").stdout
        assert listed.startswith(f"{user.dn}\tfailures counted here: 1\tuntil ")
        unlocked = service.command("unlock", user.login)
        assert unlocked.stdout == f"Unlocked {user.dn} (the directory's own lockout, if any, is not changed).\n"
        assert service.command("lockouts").stdout == "No account is soft-locked.\n"
        assert authenticate(service, user.login, user.password)["OutputVariables"][0] == "Authentication=OK"
    finally:
        service.stop()
        samba_ad.unlock(user)


def test_a_password_sprayed_across_many_accounts_is_refused_for_everyone(openldap, tmp_path):
    service = start_service(tmp_path, openldap_config(openldap), log_level="INFO")
    sprayed = "Winter2026!"
    try:
        for i in range(11):
            assert authenticate(service, f"ghost{i}", sprayed) == fail(WRONG)
        binds = slapd_binds(openldap)
        user = openldap.users["jdoe"]
        assert authenticate(service, user.login, sprayed) == fail(WRONG)
        assert binds_since(openldap, binds) == 0  # refused without a bind
        warnings = [line for line in service.log().splitlines() if "event=password_spray" in line]
        assert len(warnings) == 1 and "WARNING" in warnings[0] and sprayed not in service.log()
    finally:
        service.stop()


def test_a_password_of_only_invisible_characters_is_fail_without_a_bind(openldap, tmp_path):
    service = start_service(tmp_path, openldap_config(openldap), log_level="INFO")
    try:
        binds = slapd_binds(openldap)
        for password in ("\u00a0\u2003", "\u200b\u200d", "\u00ad", " \t"):
            assert authenticate(service, "jdoe", password) == fail(WRONG)
        assert binds_since(openldap, binds) == 0
    finally:
        service.stop()
