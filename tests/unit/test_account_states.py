"""Decoding what AD and OpenLDAP say about an account: pure logic (the servers' side is in tests/integration)."""

from datetime import datetime, timedelta, timezone

import pytest

from ssobridge.directory.activedirectory import ad_account_state, ad_bind_state
from ssobridge.directory.entries import UserEntry
from ssobridge.directory.flavour import AccountState
from ssobridge.directory.openldap import (PasswordPolicy, decode_ppolicy_response, ppolicy_account_state,
                                         ppolicy_bind_state)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def ad_error(code: str) -> dict:
    return {"result": 49, "message": f"80090308: LdapErr: DSID-0C090439, comment: AcceptSecurityContext error, "
                                     f"data {code}, v4563\x00"}


@pytest.mark.parametrize("code, state", [
    ("525", AccountState.WRONG_CREDENTIALS), ("52e", AccountState.WRONG_CREDENTIALS),
    ("530", AccountState.LOGON_RESTRICTED), ("531", AccountState.LOGON_RESTRICTED),
    ("532", AccountState.PASSWORD_EXPIRED), ("533", AccountState.DISABLED), ("701", AccountState.ACCOUNT_EXPIRED),
    ("773", AccountState.MUST_CHANGE), ("775", AccountState.LOCKED),
])
def test_ad_bind_subcodes_are_decoded(code, state):
    assert ad_bind_state(ad_error(code)) is state


def test_ad_bind_without_subcode_is_a_wrong_password_and_other_results_are_not_about_credentials():
    assert ad_bind_state({"result": 49, "message": ""}) is AccountState.WRONG_CREDENTIALS
    assert ad_bind_state({"result": 0}) is AccountState.OK
    assert ad_bind_state({"result": 52, "message": "unavailable"}) is None


def entry(**attributes) -> UserEntry:
    return UserEntry("CN=x", {k.lower(): (str(v).encode(),) for k, v in attributes.items()})


def filetime(moment: datetime) -> int:
    return int((moment.timestamp() + 11_644_473_600) * 10_000_000)


@pytest.mark.parametrize("attributes, state", [
    ({"userAccountControl": 512, "pwdLastSet": 1}, AccountState.OK),
    ({"userAccountControl": 514}, AccountState.DISABLED),
    ({"userAccountControl": 512, "msDS-User-Account-Control-Computed": 0x10}, AccountState.LOCKED),
    ({"userAccountControl": 512, "lockoutTime": 5}, AccountState.LOCKED),
    ({"userAccountControl": 512, "lockoutTime": 5, "msDS-User-Account-Control-Computed": 0}, AccountState.OK),
    ({"userAccountControl": 512, "accountExpires": filetime(NOW - timedelta(days=1))}, AccountState.ACCOUNT_EXPIRED),
    ({"userAccountControl": 512, "accountExpires": filetime(NOW + timedelta(days=1))}, AccountState.OK),
    ({"userAccountControl": 512, "accountExpires": 0x7FFFFFFFFFFFFFFF}, AccountState.OK),
    ({"userAccountControl": 512, "pwdLastSet": 0}, AccountState.MUST_CHANGE),
    ({"userAccountControl": 512, "pwdLastSet": 7, "msDS-User-Account-Control-Computed": 0x800000},
     AccountState.PASSWORD_EXPIRED),
])
def test_ad_account_state_is_read_from_attributes(attributes, state):
    assert ad_account_state(entry(**attributes), NOW) is state


# BER of PasswordPolicyResponseValue: SEQUENCE { error [1] ENUMERATED n }
def ppolicy_value(error: int) -> bytes:
    return bytes([0x30, 0x03, 0x81, 0x01, error])


def test_ppolicy_response_control_is_decoded_with_and_without_a_warning():
    assert decode_ppolicy_response(ppolicy_value(1)) == 1
    warning_then_error = bytes([0x30, 0x08, 0xA0, 0x03, 0x80, 0x01, 0x05, 0x81, 0x01, 0x02])
    assert decode_ppolicy_response(warning_then_error) == 2
    assert decode_ppolicy_response(bytes([0x30, 0x05, 0xA0, 0x03, 0x80, 0x01, 0x05])) is None


def bind_result(code: int, error: int | None) -> dict:
    controls = {"1.3.6.1.4.1.42.2.27.8.5.1": {"value": ppolicy_value(error)}} if error is not None else {}
    return {"result": code, "controls": controls}


@pytest.mark.parametrize("code, error, locked_time, state", [
    (0, None, None, AccountState.OK),
    (0, 2, None, AccountState.MUST_CHANGE),
    (49, None, None, AccountState.WRONG_CREDENTIALS),
    (49, 0, None, AccountState.PASSWORD_EXPIRED),
    (49, 1, "20261127100000Z", AccountState.LOCKED),
    (49, 1, "000001010000Z", AccountState.DISABLED),
])
def test_ppolicy_bind_results_are_decoded(code, error, locked_time, state):
    user = entry(pwdAccountLockedTime=locked_time) if locked_time else entry()
    assert ppolicy_bind_state(bind_result(code, error), user) is state


def test_ppolicy_unexpected_result_is_not_about_credentials():
    assert ppolicy_bind_state({"result": 51}, entry()) is None


@pytest.mark.parametrize("attributes, policy, state", [
    ({}, PasswordPolicy(), AccountState.OK),
    ({"pwdAccountLockedTime": "000001010000Z"}, PasswordPolicy(), AccountState.DISABLED),
    ({"pwdAccountLockedTime": "20261127115900Z"}, PasswordPolicy(lockout_duration=0), AccountState.LOCKED),
    ({"pwdAccountLockedTime": "20261127115900Z"}, PasswordPolicy(lockout_duration=300), AccountState.LOCKED),
    ({"pwdAccountLockedTime": "20261127110000Z"}, PasswordPolicy(lockout_duration=300), AccountState.OK),
    ({"pwdReset": "TRUE"}, PasswordPolicy(), AccountState.MUST_CHANGE),
    ({"pwdChangedTime": "20261001000000Z"}, PasswordPolicy(max_age=86400), AccountState.PASSWORD_EXPIRED),
    ({"pwdChangedTime": "20261127000000Z"}, PasswordPolicy(max_age=86400), AccountState.OK),
])
def test_ppolicy_account_state_is_read_from_attributes(attributes, policy, state):
    assert ppolicy_account_state(entry(**attributes), policy, NOW) is state


def test_binary_values_are_never_returned_as_text():
    user = UserEntry("CN=x", {"thumbnailphoto": (b"GIF89a",), "x-blob": (b"\xff\xfe\x00\x01",),
                              "mail": (b"a@b.c",)})
    assert user.texts("thumbnailPhoto") == [] and user.texts("x-blob") == []
    assert user.first_text("MAIL") == "a@b.c"


def test_object_guid_and_sid_are_rendered_as_windows_writes_them():
    guid = bytes.fromhex("7a3f6a2c1b0e4d4f8a9b0c1d2e3f4a5b")
    sid = bytes.fromhex("010500000000000515000000a065cf7e784b9b5ffe77c87051040000")
    user = UserEntry("CN=x", {"objectguid": (guid,), "objectsid": (sid,)})
    assert user.texts("objectGUID") == ["2c6a3f7a-0e1b-4f4d-8a9b-0c1d2e3f4a5b"]
    assert user.texts("objectSid") == ["S-1-5-21-2127521184-1604012920-1892186110-1105"]
