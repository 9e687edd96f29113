"""Finding a user, verifying a password, and reading an account's state, for AD and for OpenLDAP.

Three kinds of outcome, kept apart: an AccountState (the user's business: OK, wrong password, locked,
...), DirectoryUnavailable (infrastructure), and exceptions (bugs).
"""

from __future__ import annotations

import enum
import logging
import math
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Mapping

from cachetools import TTLCache
from ldap3 import BASE, SUBTREE, Connection

from ..config import DirectorySettings
from .connections import ConnectionPool, Connector, DirectoryUnavailable, describe_result
from .groups import MAX_NESTING, Group, sid_filter_value, split_unescaped, unescape_dn_value
from .names import LoginName, escape_filter_value, user_search_filter

log = logging.getLogger("ssobridge.directory")

PPOLICY_OID = "1.3.6.1.4.1.42.2.27.8.5.1"


class AccountState(enum.Enum):
    """What the directory says about an account; the values are the [messages] keys."""

    OK = "login_ok"
    WRONG_CREDENTIALS = "wrong_credentials"
    DISABLED = "account_disabled"
    LOCKED = "account_locked"
    ACCOUNT_EXPIRED = "account_expired"
    PASSWORD_EXPIRED = "password_expired"
    MUST_CHANGE = "must_change_password"
    LOGON_RESTRICTED = "logon_restricted"


class AmbiguousUser(Exception):
    """The user_filter matched more than one entry: a configuration problem, never a login."""


# Attributes whose values are binary even when the bytes happen to be valid UTF-8.
BINARY_ATTRIBUTES = frozenset(name.lower() for name in (
    "thumbnailPhoto", "jpegPhoto", "photo", "userCertificate", "userSMIMECertificate", "cACertificate",
    "nTSecurityDescriptor", "logonHours", "msExchMailboxGuid", "msExchMailboxSecurityDescriptor",
    "msDS-GenerationId", "sIDHistory", "tokenGroups", "userPassword", "unicodePwd", "mS-DS-ConsistencyGuid",
))


def render_guid(raw: bytes) -> str:
    """objectGUID as Windows writes it: the first three fields are little-endian."""
    return str(uuid.UUID(bytes_le=raw)) if len(raw) == 16 else raw.hex()


def render_sid(raw: bytes) -> str:
    """objectSid as S-1-<authority>-<sub>-<sub>..."""
    if len(raw) < 8 or len(raw) != 8 + 4 * raw[1]:
        return raw.hex()
    authority = int.from_bytes(raw[2:8], "big")
    subs = [int.from_bytes(raw[8 + 4 * i:12 + 4 * i], "little") for i in range(raw[1])]
    return "-".join(["S", str(raw[0]), str(authority), *map(str, subs)])


RENDERED_ATTRIBUTES = {"objectguid": render_guid, "objectsid": render_sid}


@dataclass(frozen=True)
class UserEntry:
    dn: str
    attributes: Mapping[str, tuple[bytes, ...]]  # lower-case attribute name -> raw values
    server: str = ""  # the URL of the server the entry was read from

    def texts(self, name: str) -> list[str]:
        """The attribute's values as text: objectGUID and objectSid rendered, other binary values never."""
        key = name.lower()
        raw_values = self.attributes.get(key, ())
        if key in RENDERED_ATTRIBUTES:
            return [RENDERED_ATTRIBUTES[key](raw) for raw in raw_values]
        if key in BINARY_ATTRIBUTES:
            return []
        values = []
        for raw in raw_values:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if "\x00" not in text:
                values.append(text)
        return values

    def first_text(self, name: str) -> str | None:
        values = [v for v in self.texts(name) if v.strip()]
        return values[0] if values else None

    def first_int(self, name: str) -> int | None:
        value = self.first_text(name)
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None


# --- Active Directory ----------------------------------------------------------------------------

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
AD_NEVER = (0, 0x7FFFFFFFFFFFFFFF)
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


def filetime_to_datetime(filetime: int) -> datetime:
    """AD time: 100-ns intervals since 1601-01-01 UTC."""
    seconds = filetime / 10_000_000 - 11_644_473_600
    return datetime.fromtimestamp(max(seconds, -62_135_596_800 + 86_400), tz=timezone.utc)


# --- OpenLDAP password policy (draft-behera-ldap-password-policy) --------------------------------

PPOLICY_ERRORS = {
    0: AccountState.PASSWORD_EXPIRED,  # passwordExpired
    1: AccountState.LOCKED,  # accountLocked
    2: AccountState.MUST_CHANGE,  # changeAfterReset
}
# With uid, for posixGroup membership (memberUid).
PPOLICY_STATE_ATTRIBUTES = ("pwdAccountLockedTime", "pwdReset", "pwdChangedTime", "pwdPolicySubentry", "uid")
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


def generalized_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value[:14], "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


@dataclass(frozen=True)
class PasswordPolicy:
    max_age: int = 0  # seconds; 0 = passwords never expire
    lockout_duration: int = 0  # seconds; 0 = locked until an administrator unlocks


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


# --- the directory ------------------------------------------------------------------------------

class Directory:
    """One configured directory: its servers, its service account, and the questions asked of it."""

    def __init__(self, settings: DirectorySettings, connector: Connector | None = None,
                 extra_attributes: tuple[str, ...] = ()):
        self.settings = settings
        self.connector = connector = connector or Connector(settings)
        self._service = ConnectionPool(connector, bind_as_service=True)
        self._binds = ConnectionPool(connector, bind_as_service=False)
        state = AD_STATE_ATTRIBUTES if settings.is_active_directory else PPOLICY_STATE_ATTRIBUTES
        mapped = {name for mapping in settings.attributes for name in mapping.attributes}
        self._attributes = sorted({*mapped, *state, *extra_attributes}, key=str.lower)
        self._policies: TTLCache = TTLCache(maxsize=64, ttl=300)
        self._policies_lock = threading.Lock()
        self._memberships: TTLCache = TTLCache(maxsize=10_000, ttl=settings.membership_cache_seconds)
        self._group_names: TTLCache = TTLCache(maxsize=100_000, ttl=settings.group_name_cache_seconds)
        self._groups_lock = threading.Lock()
        self._display_names: TTLCache = TTLCache(maxsize=10_000, ttl=settings.group_name_cache_seconds)

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def search_attributes(self) -> tuple[str, ...]:
        """What every user search reads: the mappings, the account state, and what providers asked for."""
        return tuple(self._attributes)

    def claims(self, name: LoginName) -> bool:
        """Whether a username typed with this DOMAIN\\ or @suffix belongs here (plain names: see DirectorySet)."""
        if name.domain is not None:
            return (self.settings.netbios_domain or "").lower() == name.domain.lower()
        if name.suffix is not None:
            return name.suffix.lower() in self.settings.upn_suffixes
        return False

    def user_filter(self, name: LoginName) -> str:
        suffixes = self.settings.upn_suffixes
        return user_search_filter(self.settings.user_filter, name, suffixes[0] if suffixes else None)

    def find_user(self, name: LoginName) -> UserEntry | None:
        """The one entry the user_filter finds; None for nobody; AmbiguousUser for several."""
        search_filter = self.user_filter(name)
        entries = self._search(self.settings.base_dn, SUBTREE, search_filter, self._attributes, size_limit=2)
        if len(entries) > 1:
            raise AmbiguousUser(f"user_filter {search_filter} matches more than one entry: "
                                f"{entries[0].dn!r}, {entries[1].dn!r}")
        return entries[0] if entries else None

    def verify_password(self, entry: UserEntry, password: bytes) -> AccountState:
        """Exactly one bind as the user's DN. A network failure here is never retried: a retry could
        count a wrong password twice toward the account's lockout."""
        controls = None if self.settings.is_active_directory else [(PPOLICY_OID, False, None)]

        def bind(connection: Connection) -> dict:
            connection.user = entry.dn
            connection.password = password  # bytes: sent as typed, no SASLprep
            connection.bind(read_server_info=False, controls=controls)
            return connection.result or {}

        result = self._binds.run(bind, retry_if_reused=False)
        if self.settings.is_active_directory:
            state = ad_bind_state(result)
        else:
            state = ppolicy_bind_state(result, entry)
        if state is None:
            raise DirectoryUnavailable(f"unexpected bind result {describe_result(result)}")
        return state

    def find_user_by_email(self, email: str) -> UserEntry | None:
        """The one user with this address: mail, and on AD also proxyAddresses (smtp:, any case)."""
        value = escape_filter_value(email.strip())
        if self.settings.is_active_directory:
            search_filter = (f"(&(objectCategory=person)(objectClass=user)"
                             f"(|(mail={value})(proxyAddresses=smtp:{value})))")
        else:
            search_filter = f"(&(objectClass=inetOrgPerson)(mail={value}))"
        entries = self._search(self.settings.base_dn, SUBTREE, search_filter, self._attributes, size_limit=2)
        if len(entries) > 1:
            raise AmbiguousUser(f"{len(entries)} entries have the address {email!r}: {entries[0].dn!r}, "
                                f"{entries[1].dn!r}")
        return entries[0] if entries else None

    def groups(self, entry: UserEntry) -> frozenset[Group]:
        """Every group of the user, nested ones (and on AD the primary group) included; cached per user."""
        key = entry.dn.lower()
        with self._groups_lock:
            cached = self._memberships.get(key)
        if cached is not None:
            return cached
        groups = self._ad_groups(entry) if self.settings.is_active_directory else self._ldap_groups(entry)
        with self._groups_lock:
            self._memberships[key] = groups
        return groups

    def _ad_groups(self, entry: UserEntry) -> frozenset[Group]:
        found = self._search(entry.dn, BASE, "(objectClass=*)", ["tokenGroups"])
        sids = found[0].attributes.get("tokengroups", ()) if found else ()
        with self._groups_lock:
            unknown = [sid for sid in sids if sid not in self._group_names]
        for start in range(0, len(unknown), 100):
            chunk = unknown[start:start + 100]
            search_filter = "(|" + "".join(f"(objectSid={sid_filter_value(sid)})" for sid in chunk) + ")"
            named = {}
            for group in self._search(self.settings.group_base_dn or self.settings.base_dn, SUBTREE, search_filter,
                                      ["sAMAccountName", "cn", "objectSid"]):
                for sid in group.attributes.get("objectsid", ()):
                    names = tuple(dict.fromkeys(n for n in (group.first_text("sAMAccountName"),
                                                            group.first_text("cn")) if n))
                    named[sid] = Group(group.dn, names, render_sid(sid))
            with self._groups_lock:
                for sid in chunk:
                    # A SID with no entry under the base (a builtin or foreign group) is known by its SID.
                    self._group_names[sid] = named.get(sid) or Group("", (), render_sid(sid))
        with self._groups_lock:
            return frozenset(self._group_names.get(sid) or Group("", (), render_sid(sid)) for sid in sids)

    def _ldap_groups(self, entry: UserEntry) -> frozenset[Group]:
        base = self.settings.group_base_dn or self.settings.base_dn
        found: dict[str, Group] = {}
        frontier = [entry.dn]
        uid = entry.first_text("uid")
        for depth in range(MAX_NESTING):
            clauses = [f"(member={escape_filter_value(dn)})(uniqueMember={escape_filter_value(dn)})"
                       for dn in frontier]
            if depth == 0 and uid:
                clauses.append(f"(&(objectClass=posixGroup)(memberUid={escape_filter_value(uid)}))")
            new = []
            for start in range(0, len(clauses), 50):
                search_filter = "(|" + "".join(clauses[start:start + 50]) + ")"
                for group in self._search(base, SUBTREE, search_filter, ["cn"]):
                    if group.dn.lower() not in found:
                        found[group.dn.lower()] = Group(group.dn, tuple(group.texts("cn")))
                        new.append(group.dn)
            if not new:
                break
            frontier = new
        return frozenset(found.values())

    def group_exists(self, name: str) -> bool:
        """Whether a group named in the rules (DN, name or SID) is in this directory: for `ssobridge check`."""
        base = self.settings.group_base_dn or self.settings.base_dn
        if name.upper().startswith("S-1-"):
            return bool(self._search(base, SUBTREE, f"(objectSid={escape_filter_value(name)})", ["1.1"], 1))
        if "=" in name:
            try:
                return bool(self._search(name, BASE, "(objectClass=*)", ["1.1"]))
            except DirectoryUnavailable:
                return False  # noSuchObject
        value = escape_filter_value(name)
        kinds = "(objectClass=group)" if self.settings.is_active_directory else \
            "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))"
        return bool(self._search(base, SUBTREE, f"(&{kinds}(|(cn={value})(sAMAccountName={value})))", ["1.1"], 1)
                    if self.settings.is_active_directory else
                    self._search(base, SUBTREE, f"(&{kinds}(cn={value}))", ["1.1"], 1))

    def display_name_of(self, dn: str) -> str:
        """The displayName (else cn) of another entry, such as a manager; cached like group names."""
        key = dn.lower()
        with self._groups_lock:
            cached = self._display_names.get(key)
        if cached is not None:
            return cached
        try:
            found = self._search(dn, BASE, "(objectClass=*)", ["displayName", "cn"])
        except DirectoryUnavailable:
            found = []  # noSuchObject: a manager who left; the DN's first value will do
        name = (found[0].first_text("displayName") or found[0].first_text("cn")) if found else None
        name = name or _first_rdn_value(dn)
        with self._groups_lock:
            self._display_names[key] = name
        return name

    def password_expires(self, entry: UserEntry) -> datetime | None:
        """When the password expires; None for never (or unknown)."""
        if self.settings.is_active_directory:
            value = entry.first_int("msDS-UserPasswordExpiryTimeComputed")
            return filetime_to_datetime(value) if value and value not in AD_NEVER else None
        changed = generalized_time(entry.first_text("pwdChangedTime"))
        policy = self._password_policy(entry)
        return changed + timedelta(seconds=policy.max_age) if changed and policy.max_age else None

    def last_logon(self, entry: UserEntry) -> datetime | None:
        """AD: lastLogonTimestamp (replicated, up to ~14 days behind); OpenLDAP: authTimestamp (lastbind)."""
        if self.settings.is_active_directory:
            value = entry.first_int("lastLogonTimestamp")
            return filetime_to_datetime(value) if value and value not in AD_NEVER else None
        return generalized_time(entry.first_text("authTimestamp"))

    def account_state(self, entry: UserEntry) -> AccountState:
        """The account's state read from its attributes, for single sign-on (no password to bind with)."""
        now = datetime.now(timezone.utc)
        if self.settings.is_active_directory:
            return ad_account_state(entry, now)
        return ppolicy_account_state(entry, self._password_policy(entry), now)

    def _password_policy(self, entry: UserEntry) -> PasswordPolicy:
        policy_dn = entry.first_text("pwdPolicySubentry") or self.settings.ppolicy_default_dn
        if not policy_dn:
            return PasswordPolicy()
        with self._policies_lock:
            cached = self._policies.get(policy_dn.lower())
        if cached is not None:
            return cached
        entries = self._search(policy_dn, BASE, "(objectClass=*)", ["pwdMaxAge", "pwdLockoutDuration"])
        policy = PasswordPolicy(max_age=entries[0].first_int("pwdMaxAge") or 0,
                                lockout_duration=entries[0].first_int("pwdLockoutDuration") or 0) \
            if entries else PasswordPolicy()
        with self._policies_lock:
            self._policies[policy_dn.lower()] = policy
        return policy

    def _search(self, base: str, scope: str, search_filter: str, attributes: list[str],
                size_limit: int = 0) -> list[UserEntry]:
        """Search as the service account."""
        def search(connection: Connection) -> list[UserEntry]:
            connection.search(base, search_filter, scope, attributes=attributes, size_limit=size_limit,
                              time_limit=math.ceil(self.settings.timeout))
            return self._entries(connection, base)

        return self._service.run(search, retry_if_reused=True)

    def _entries(self, connection: Connection, base: str) -> list[UserEntry]:
        result = connection.result or {}
        # 4 = sizeLimitExceeded: more entries than asked for, which find_user reports as ambiguous.
        if result.get("result") not in (0, 4):
            if result.get("result") == 32:
                raise DirectoryUnavailable(f"the base DN {base!r} does not exist (noSuchObject)")
            raise DirectoryUnavailable(f"search refused: {describe_result(result)}")
        server = f"{'ldaps' if connection.server.ssl else 'ldap'}://{connection.server.host}:{connection.server.port}"
        return [
            UserEntry(item["dn"], {k.lower(): tuple(v) for k, v in item.get("raw_attributes", {}).items()}, server)
            for item in connection.response or ()
            if item.get("type") == "searchResEntry"
        ]

    def close(self) -> None:
        self._service.close()
        self._binds.close()


def _first_rdn_value(dn: str) -> str:
    return unescape_dn_value(split_unescaped(dn, ",")[0].partition("=")[2].strip())


class DirectorySet:
    """All configured directories, and which one answers for a typed username."""

    def __init__(self, directories: list[Directory]):
        self.directories = directories
        self.default = next((d for d in directories if d.settings.default), directories[0] if directories else None)

    def route(self, name: LoginName) -> Directory | None:
        if name.domain is None and name.suffix is None:
            return self.default
        return next((d for d in self.directories if d.claims(name)), None)

    def close(self) -> None:
        for directory in self.directories:
            directory.close()
