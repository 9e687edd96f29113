"""Active Directory (and Samba AD): bind sub-codes, userAccountControl, tokenGroups, FILETIME dates."""

from __future__ import annotations

import re
import threading
from datetime import datetime
from typing import Mapping

from cachetools import TTLCache, cachedmethod
from ldap3 import BASE

from ..config import DirectorySettings
from .entries import AD_NEVER, UserEntry, filetime_or_never, filetime_to_datetime
from .flavour import AccountState, Flavour, LockoutPolicy, Search
from .dn import naming_context, parent_dn
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
# badPwdCount and badPasswordTime are not replicated: they are as the DC that answered the search knows them.
AD_STATE_ATTRIBUTES = ("userAccountControl", "lockoutTime", "accountExpires", "pwdLastSet",
                       "msDS-User-Account-Control-Computed", "badPwdCount", "badPasswordTime", "msDS-ResultantPSO")
PSO_LOCKOUT = ("msDS-LockoutThreshold", "msDS-LockoutObservationWindow", "msDS-LockoutDuration")
DOMAIN_LOCKOUT = ("lockoutThreshold", "lockOutObservationWindow", "lockoutDuration")
POLICY_CACHE_SECONDS = 600


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


def interval_seconds(value: int | None) -> int:
    """An AD duration (negative, in 100 ns) in seconds; "never" (the most negative value) is 0."""
    if not value or value <= -(2 ** 63):
        return 0
    return abs(value) // 10_000_000


def ad_failures_since(entry: UserEntry, since: datetime) -> int | None:
    """badPwdCount, if the last wrong password (badPasswordTime) is not older than `since`."""
    count = entry.first_int("badPwdCount")
    if count is None:
        return None
    last = filetime_or_never(entry.first_int("badPasswordTime"))
    return count if last is not None and last >= since else 0


class ActiveDirectory(Flavour):
    state_attributes = AD_STATE_ATTRIBUTES
    counter_attributes = (("badPwdCount", "0"), ("badPasswordTime", "0"), ("lockoutTime", "0"))

    def __init__(self, settings: DirectorySettings, search: Search):
        super().__init__(settings, search)
        self._token_groups = TokenGroups(search, self.group_base, settings.group_name_cache_seconds)
        self._policies: TTLCache = TTLCache(maxsize=64, ttl=POLICY_CACHE_SECONDS)
        self._policies_lock = threading.Lock()

    def first_server_host(self) -> str | None:
        """The PDC emulator's dNSHostName. badPwdCount is per DC, and the PDC emulator's is the fullest (the
        other DCs pass a wrong password on to it), so a login's search and bind go there when it is in urls.
        The domain object's fSMORoleOwner names the PDC's NTDS Settings object, whose parent is its server
        object. None when not readable."""
        domain = naming_context(self.settings.base_dn)
        if not domain:
            root = self.search("", BASE, "(objectClass=*)", ["defaultNamingContext"])
            domain = root[0].first_text("defaultNamingContext") if root else None
        found = self.search(domain, BASE, "(objectClass=*)", ["fSMORoleOwner"]) if domain else []
        owner = found[0].first_text("fSMORoleOwner") if found else None
        if not owner:
            return None
        server = parent_dn(owner)
        found = self.search(server, BASE, "(objectClass=*)", ["dNSHostName"]) if server else []
        return found[0].first_text("dNSHostName") if found else None

    def lockout_policy(self, entry: UserEntry | None) -> LockoutPolicy:
        """From the PSO named by msDS-ResultantPSO, else from the domain object; cached ten minutes."""
        return self._lockout_policy_at(self.lockout_policy_dn(entry))

    @cachedmethod(lambda self: self._policies, key=lambda self, dn: dn.lower(), lock=lambda self: self._policies_lock)
    def _lockout_policy_at(self, dn: str) -> LockoutPolicy:
        names = DOMAIN_LOCKOUT if dn == naming_context(dn) else PSO_LOCKOUT
        found = self.search(dn, BASE, "(objectClass=*)", list(names))
        if not found or found[0].first_int(names[0]) is None:
            return LockoutPolicy(known=False)  # e.g. a PSO the service account may not read
        return LockoutPolicy(threshold=found[0].first_int(names[0]) or 0,
                             observation_seconds=interval_seconds(found[0].first_int(names[1])),
                             duration_seconds=interval_seconds(found[0].first_int(names[2])))

    def lockout_policy_dn(self, entry: UserEntry | None) -> str | None:
        """The PSO named by msDS-ResultantPSO, else the domain object."""
        pso = entry.first_text("msDS-ResultantPSO") if entry is not None else None
        return pso or naming_context(entry.dn if entry else self.settings.base_dn)

    def failures_since(self, entry: UserEntry, since: datetime) -> int | None:
        return ad_failures_since(entry, since)

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
