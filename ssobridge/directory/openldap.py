"""OpenLDAP with the ppolicy overlay (draft-behera password policy): response control, nested groups."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping

from cachetools import TTLCache, cachedmethod
from ldap3 import BASE

from ..config import DirectorySettings
from .entries import UserEntry, generalized_time
from .flavour import AccountState, Flavour, LockoutPolicy, Search
from .groups import Group, nested_groups

PPOLICY_OID = "1.3.6.1.4.1.42.2.27.8.5.1"
PPOLICY_ERRORS = {
    0: AccountState.PASSWORD_EXPIRED,  # passwordExpired
    1: AccountState.LOCKED,  # accountLocked
    2: AccountState.MUST_CHANGE,  # changeAfterReset
}
PPOLICY_ERROR_NAMES = {0: "passwordExpired", 1: "accountLocked", 2: "changeAfterReset"}
# With uid, for posixGroup membership (memberUid).
# pwdFailureTime is operational: returned only when asked for by name.
PPOLICY_STATE_ATTRIBUTES = ("pwdAccountLockedTime", "pwdReset", "pwdChangedTime", "pwdPolicySubentry", "uid",
                            "pwdFailureTime")
POLICY_ATTRIBUTES = ["pwdMaxAge", "pwdLockoutDuration", "pwdLockout", "pwdMaxFailure", "pwdFailureCountInterval"]
# pwdAccountLockedTime with this value means locked by an administrator until unlocked: disabled.
PPOLICY_ADMIN_LOCK = "000001010000Z"


def ppolicy_error(result: Mapping) -> int | None:
    """The error field of the password-policy response control, if the server sent one."""
    control = (result.get("controls") or {}).get(PPOLICY_OID)
    value = control.get("value") if isinstance(control, dict) else None
    return decode_ppolicy_response(value) if value else None


def decode_ppolicy_response(value: bytes) -> int | None:
    """PasswordPolicyResponseValue ::= SEQUENCE { warning [0] ... OPTIONAL, error [1] ENUMERATED OPTIONAL }."""
    tag, body, _ = _ber_element(value, 0)
    if tag != 0x30:
        return None
    position = 0
    while position < len(body):
        tag, content, position = _ber_element(body, position)
        if tag == 0x81:
            return int.from_bytes(content, "big") if content else None
    return None


def _ber_element(data: bytes, position: int) -> tuple[int, bytes, int]:
    tag = data[position]
    length = data[position + 1]
    position += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[position:position + count], "big")
        position += count
    return tag, data[position:position + length], position + length


def ppolicy_bind_state(result: Mapping, entry: UserEntry) -> AccountState | None:
    code = result.get("result")
    error = ppolicy_error(result)
    if code == 0:
        return AccountState.MUST_CHANGE if error == 2 else AccountState.OK
    if code != 49:
        return None
    state = PPOLICY_ERRORS.get(error, AccountState.WRONG_CREDENTIALS)
    if state is AccountState.LOCKED and entry.first_text("pwdAccountLockedTime") == PPOLICY_ADMIN_LOCK:
        return AccountState.DISABLED
    return state


@dataclass(frozen=True)
class PasswordPolicy:
    max_age: int = 0  # seconds; 0 = passwords never expire
    lockout_duration: int = 0  # seconds; 0 = locked until an administrator unlocks
    lockout: LockoutPolicy = LockoutPolicy()  # pwdLockout, pwdMaxFailure, pwdFailureCountInterval


def ppolicy_failures_since(entry: UserEntry, since: datetime) -> int:
    """The entry's pwdFailureTime values not older than `since`."""
    times = (generalized_time(value) for value in entry.texts("pwdFailureTime"))
    return sum(1 for moment in times if moment is not None and moment >= since)


def ppolicy_account_state(entry: UserEntry, policy: PasswordPolicy, now: datetime) -> AccountState:
    locked_at = entry.first_text("pwdAccountLockedTime")
    if locked_at == PPOLICY_ADMIN_LOCK:
        return AccountState.DISABLED
    if locked_at:
        since = generalized_time(locked_at)
        if policy.lockout_duration == 0 or since is None or (now - since).total_seconds() < policy.lockout_duration:
            return AccountState.LOCKED
    if (entry.first_text("pwdReset") or "").upper() == "TRUE":
        return AccountState.MUST_CHANGE
    changed = generalized_time(entry.first_text("pwdChangedTime"))
    if policy.max_age and changed and (now - changed).total_seconds() > policy.max_age:
        return AccountState.PASSWORD_EXPIRED
    return AccountState.OK


class OpenLDAP(Flavour):
    state_attributes = PPOLICY_STATE_ATTRIBUTES
    counter_attributes = (("pwdFailureTime", "19700101000000Z"),)

    def __init__(self, settings: DirectorySettings, search: Search):
        super().__init__(settings, search)
        self._policies: TTLCache = TTLCache(maxsize=64, ttl=600)
        self._policies_lock = threading.Lock()

    @classmethod
    def bind_controls(cls) -> list | None:
        return [(PPOLICY_OID, False, None)]

    @classmethod
    def bind_refusal(cls, result: Mapping) -> tuple[str, AccountState | None]:
        error = ppolicy_error(result)
        code = f"result {result.get('result')}"
        if error is not None:
            code += f" {PPOLICY_ERROR_NAMES.get(error, error)}"
        # The service account's own entry is not at hand: an administrator's lock shows as LOCKED.
        return code, ppolicy_bind_state(result, UserEntry("", {}))

    def lockout_policy(self, entry: UserEntry | None) -> LockoutPolicy:
        return self.password_policy(entry).lockout

    def lockout_policy_dn(self, entry: UserEntry | None) -> str | None:
        return (entry.first_text("pwdPolicySubentry") if entry else None) or self.settings.ppolicy_default_dn

    def failures_since(self, entry: UserEntry, since: datetime) -> int | None:
        return ppolicy_failures_since(entry, since)

    def bind_state(self, result: Mapping, entry: UserEntry) -> AccountState | None:
        return ppolicy_bind_state(result, entry)

    def account_state(self, entry: UserEntry, now: datetime) -> AccountState:
        return ppolicy_account_state(entry, self.password_policy(entry), now)

    def email_filter(self, value: str) -> str:
        return f"(&(objectClass=inetOrgPerson)(mail={value}))"

    def groups(self, entry: UserEntry) -> frozenset[Group]:
        return nested_groups(self.search, self.group_base, entry)

    def group_filter(self, value: str) -> str:
        return (f"(&(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))"
                f"(cn={value}))")

    def password_expires(self, entry: UserEntry) -> datetime | None:
        changed = generalized_time(entry.first_text("pwdChangedTime"))
        policy = self.password_policy(entry)
        return changed + timedelta(seconds=policy.max_age) if changed and policy.max_age else None

    def last_logon(self, entry: UserEntry) -> datetime | None:
        """authTimestamp, kept by the lastbind overlay."""
        return generalized_time(entry.first_text("authTimestamp"))

    def password_policy(self, entry: UserEntry | None) -> PasswordPolicy:
        """The entry's pwdPolicySubentry, else ppolicy_default_dn; cached for ten minutes."""
        policy_dn = self.lockout_policy_dn(entry)
        return self._password_policy_at(policy_dn) if policy_dn else PasswordPolicy()

    @cachedmethod(lambda self: self._policies, key=lambda self, dn: dn.lower(), lock=lambda self: self._policies_lock)
    def _password_policy_at(self, policy_dn: str) -> PasswordPolicy:
        entries = self.search(policy_dn, BASE, "(objectClass=*)", POLICY_ATTRIBUTES)
        return _password_policy(entries[0]) if entries else PasswordPolicy(lockout=LockoutPolicy(known=False))


def _password_policy(entry: UserEntry) -> PasswordPolicy:
    locks = (entry.first_text("pwdLockout") or "").upper() == "TRUE"
    duration = entry.first_int("pwdLockoutDuration") or 0
    return PasswordPolicy(
        max_age=entry.first_int("pwdMaxAge") or 0, lockout_duration=duration,
        lockout=LockoutPolicy(threshold=(entry.first_int("pwdMaxFailure") or 0) if locks else 0,
                              observation_seconds=entry.first_int("pwdFailureCountInterval") or 0,
                              duration_seconds=duration))
