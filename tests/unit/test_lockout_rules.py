"""The shield's pure rules, table-driven: thresholds, windows, the decision, keys, the scrypt budget."""

from __future__ import annotations

import pytest

from ssobridge.lockout.rules import (Facts, TokenBucket, Verdict, account_key, decide, is_blank_password,
                                     soft_threshold, window_seconds)


@pytest.mark.parametrize("directory, configured, expected", [
    (0, None, 10), (0, 7, 7), (None, None, 1), (1, None, 1), (2, None, 1), (3, None, 1), (4, None, 2),
    (5, None, 2), (6, None, 3), (10, None, 5), (50, None, 5), (10, 8, 8), (10, 9, 8), (3, 5, 1),
])
def test_soft_threshold(directory, configured, expected):
    assert soft_threshold(directory, configured) == expected


@pytest.mark.parametrize("observation, configured, expected", [
    (0, None, 1800), (1800, None, 1860), (3600, None, 3660), (3600, 600, 600),
])
def test_window(observation, configured, expected):
    assert window_seconds(observation, configured) == expected


@pytest.mark.parametrize("failures, repeated, sprayed, known, expected", [
    (0, False, False, False, Verdict.BIND),
    (4, False, False, False, Verdict.BIND),
    (0, True, False, False, Verdict.REFUSE_REPEATED),
    (5, False, False, False, Verdict.REFUSE_LOCKED),
    (5, True, False, False, Verdict.REFUSE_LOCKED),
    (5, False, False, True, Verdict.BIND_KNOWN),
    (0, False, True, False, Verdict.REFUSE_SPRAYED),
    (5, False, True, True, Verdict.REFUSE_SPRAYED),
])
def test_decide(failures, repeated, sprayed, known, expected):
    assert decide(Facts(failures, 5, repeated, sprayed, known)) is expected


def test_account_keys_share_one_counter_per_entry_and_per_normalised_name():
    assert account_key("ad", "CN=Zoe, OU=People,DC=example,DC=test", "x") == \
        account_key("ad", "cn=zoe,ou=people,dc=example,dc=test", "y")
    assert account_key("ad", None, "ｚｏｅ") == account_key("AD", None, "Zoe") == "name:ad:zoe"
    # A comma in a CN: one account however it is escaped, and not the same as a CN without the space.
    assert account_key("ad", "CN=Doe\\, John,OU=People,DC=example,DC=test", "") == \
        account_key("", "cn=doe\\2c john, ou=people, dc=example, dc=test", "") == \
        "dn:cn=doe\\, john,ou=people,dc=example,dc=test"
    assert account_key("ad", "CN=Doe\\,John,OU=People,DC=example,DC=test", "") != \
        account_key("ad", "CN=Doe\\, John,OU=People,DC=example,DC=test", "")
    assert account_key("", "CN=Doe, John,OU=People,DC=example,DC=test", "") == \
        account_key("", "CN=Doe\\, John,OU=People,DC=example,DC=test", "")  # typed to unlock: read leniently
    assert account_key("", " Doe John ", "") == "dn:doe john"  # no DN (typed to unlock): as it is


@pytest.mark.parametrize("password, blank", [
    (" ", True), ("\u00a0\u2003", True), ("\u200b\u200d\ufeff", True), ("\x01\x7f", True), ("\u00ad", True),
    (" a ", False), ("Passw0rd", False),
])
def test_blank_passwords(password, blank):
    assert is_blank_password(password) is blank


def test_the_scrypt_budget_refills_at_its_rate():
    now = [0.0]
    bucket = TokenBucket(rate=4, burst=2, clock=lambda: now[0])
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    now[0] += 0.25
    assert [bucket.take(), bucket.take()] == [True, False]
