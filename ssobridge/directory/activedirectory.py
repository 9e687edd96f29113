"""Active Directory (and Samba AD): bind sub-codes, userAccountControl, tokenGroups, FILETIME dates."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Mapping

from ..config import DirectorySettings
from .entries import AD_NEVER, UserEntry, filetime_or_never, filetime_to_datetime
from .flavour import AccountState, Flavour, Search
from .groups import Group, TokenGroups

# The "data NNN" sub-code of an AD bind error (result 49). AD reveals all but 775 only for a right password.
AD_BIND_SUBCODES = {
    "525": AccountState.WRONG_CREDENTIALS,  # no such user
    "52e": AccountState.WRONG_CREDENTIALS,
    "530": AccountState.LOGON_RESTRICTED,  # not permitted to log on at this time
    "531": AccountState.LOGON_RESTRICTED,  # not permitted to log on at this workstation
    "532": AccountState.PASSWORD_EXPIRED,
    "533": AccountState.DISABLED,
    "701": AccountState.ACCOUNT_EXPIRED,
    "773": AccountState.MUST_CHANGE,
    "775": AccountState.LOCKED,
}
_AD_SUBCODE = re.compile(r"\bdata ([0-9a-f]{3,8})\b", re.IGNORECASE)

UF_ACCOUNTDISABLE = 0x2
UF_LOCKOUT = 0x10
UF_PASSWORD_EXPIRED = 0x800000
AD_STATE_ATTRIBUTES = ("userAccountControl", "lockoutTime", "accountExpires", "pwdLastSet",
                       "msDS-User-Account-Control-Computed")


def ad_bind_state(result: Mapping) -> AccountState | None:
    """The state an AD bind result reveals; None when the result is not about the credentials."""
    if result.get("result") == 0:
        return AccountState.OK
    if result.get("result") != 49:
        return None
    match = _AD_SUBCODE.search(result.get("message") or "")
    code = match.group(1).lower() if match else "52e"
    return AD_BIND_SUBCODES.get(code, AccountState.WRONG_CREDENTIALS)


def ad_account_state(entry: UserEntry, now: datetime) -> AccountState:
    """Read from the entry what a bind would reveal, for a sign-on without a password."""
    control = entry.first_int("userAccountControl") or 0
    computed = entry.first_int("msDS-User-Account-Control-Computed")
    if control & UF_ACCOUNTDISABLE:
        return AccountState.DISABLED
    locked = computed & UF_LOCKOUT if computed is not None else (entry.first_int("lockoutTime") or 0) > 0
    if locked:
        return AccountState.LOCKED
    expires = entry.first_int("accountExpires")
    if expires is not None and expires not in AD_NEVER and filetime_to_datetime(expires) <= now:
        return AccountState.ACCOUNT_EXPIRED
    if entry.first_int("pwdLastSet") == 0:
        return AccountState.MUST_CHANGE
    if computed is not None and computed & UF_PASSWORD_EXPIRED:
        return AccountState.PASSWORD_EXPIRED
    return AccountState.OK


class ActiveDirectory(Flavour):
    state_attributes = AD_STATE_ATTRIBUTES

    def __init__(self, settings: DirectorySettings, search: Search):
        super().__init__(settings, search)
        self._token_groups = TokenGroups(search, self.group_base, settings.group_name_cache_seconds)

    def bind_state(self, result: Mapping, entry: UserEntry) -> AccountState | None:
        return ad_bind_state(result)

    @classmethod
    def bind_refusal(cls, result: Mapping) -> tuple[str, AccountState | None]:
        match = _AD_SUBCODE.search(result.get("message") or "")
        code = f"data {match.group(1).lower()}" if match else f"result {result.get('result')}"
        return code, ad_bind_state(result)

    def account_state(self, entry: UserEntry, now: datetime) -> AccountState:
        return ad_account_state(entry, now)

    def email_filter(self, value: str) -> str:
        return f"(&(objectCategory=person)(objectClass=user)(|(mail={value})(proxyAddresses=smtp:{value})))"

    def groups(self, entry: UserEntry) -> frozenset[Group]:
        return self._token_groups.of(entry)

    def group_filter(self, value: str) -> str:
        return f"(&(objectClass=group)(|(cn={value})(sAMAccountName={value})))"

    def password_expires(self, entry: UserEntry) -> datetime | None:
        return filetime_or_never(entry.first_int("msDS-UserPasswordExpiryTimeComputed"))

    def last_logon(self, entry: UserEntry) -> datetime | None:
        """lastLogonTimestamp: replicated, so up to ~14 days behind."""
        return filetime_or_never(entry.first_int("lastLogonTimestamp"))
