"""What differs between directory types, behind one small interface.

A Directory asks its Flavour every question whose answer depends on the directory type: which state
attributes to read, how to bind and read the bind's result, the account's state without a bind, how to
find someone by email, their groups, and a few dates. Each type is one module (activedirectory.py,
openldap.py); a new one (389-DS, FreeIPA) is one new module and one line in directory.FLAVOURS.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Mapping, Protocol

from ..config import DirectorySettings
from .entries import UserEntry
from .groups import Group


class AccountState(enum.Enum):
    """What the directory says about an account, with what every caller says about it: its [messages] key
    (what SmarterTrack shows the user at login), its words (the user card, `explain`), and whether the
    account cannot be used at all (inactive: inactive_accounts = "as_unknown" treats the person as unknown;
    an expired password or one that must be changed leaves them a member)."""

    # (message key, words, inactive)
    OK = ("login_ok", "enabled", False)
    WRONG_CREDENTIALS = ("wrong_credentials", "wrong credentials", False)
    DISABLED = ("account_disabled", "disabled", True)
    LOCKED = ("account_locked", "locked", True)
    ACCOUNT_EXPIRED = ("account_expired", "account expired", True)
    PASSWORD_EXPIRED = ("password_expired", "password expired", False)
    MUST_CHANGE = ("must_change_password", "must change password", False)
    LOGON_RESTRICTED = ("logon_restricted", "logon restricted", False)

    def __init__(self, message_key: str, words: str, inactive: bool):
        self.message_key, self.words, self.inactive = message_key, words, inactive


@dataclass(frozen=True)
class LockoutPolicy:
    """The directory's own lockout policy for an account (AD: PSO or domain; OpenLDAP: pwdPolicy)."""

    threshold: int = 0  # wrong passwords that lock the account; 0 = the directory never locks
    observation_seconds: int = 0  # how long a failure counts toward the threshold
    duration_seconds: int = 0  # how long a lockout lasts; 0 = until an administrator unlocks
    known: bool = True  # False: the policy could not be read (the shield then assumes the worst)


class Search(Protocol):
    """A search as the service account: a base that does not exist gives [], an outage DirectoryUnavailable."""

    def __call__(self, base: str, scope: str, search_filter: str, attributes: list[str],
                 size_limit: int = 0) -> list[UserEntry]: ...


class Flavour:
    """One directory type. Made once per Directory, with the directory's settings and its service search."""

    # Read with every user search, so account_state needs no second search.
    state_attributes: tuple[str, ...] = ()
    # The per-account failure counters the lockout shield reads (among state_attributes), each with a value
    # of its syntax (`check` compares it to tell "not set" from "not readable").
    counter_attributes: tuple[tuple[str, str], ...] = ()

    def __init__(self, settings: DirectorySettings, search: Search):
        self.settings = settings
        self.search = search

    @property
    def group_base(self) -> str:
        return self.settings.group_base_dn or self.settings.base_dn

    def first_server_host(self) -> str | None:
        """The host name of the server logins should go to first, when it is among urls (AD: the PDC
        emulator); None: the configured order. DirectoryUnavailable when it cannot be read."""
        return None

    def lockout_policy_dn(self, entry: UserEntry | None) -> str | None:
        """The DN of the entry lockout_policy reads for `entry`; None when there is none to read."""
        return None

    def lockout_policy(self, entry: UserEntry | None) -> LockoutPolicy:
        """The account's lockout policy; for None (nobody found), the directory's default one."""
        raise NotImplementedError

    def failures_since(self, entry: UserEntry, since: datetime) -> int | None:
        """Wrong passwords the directory counted for the entry since `since`; None when not readable."""
        raise NotImplementedError

    @classmethod
    def bind_controls(cls) -> list | None:
        """The controls sent with a bind, the user's and the service account's (ldap3's (oid, criticality,
        value) tuples)."""
        return None

    @classmethod
    def bind_refusal(cls, result: Mapping) -> tuple[str, AccountState | None]:
        """A refused service-account bind: the directory's own code, as an administrator looks it up, and
        the state it means (None when the result is not about the credentials)."""
        return f"result {result.get('result')}", None

    def bind_state(self, result: Mapping, entry: UserEntry) -> AccountState | None:
        """The state a bind result reveals; None when the result is not about the credentials."""
        raise NotImplementedError

    def account_state(self, entry: UserEntry, now: datetime) -> AccountState:
        """Read from the entry what a bind would reveal, for a sign-on without a password."""
        raise NotImplementedError

    def email_filter(self, value: str) -> str:
        """The filter finding a user by address; `value` is already escaped (RFC 4515)."""
        raise NotImplementedError

    def groups(self, entry: UserEntry) -> frozenset[Group]:
        """Every group of the user, nested ones included."""
        raise NotImplementedError

    def group_filter(self, value: str) -> str:
        """The filter finding a group by name; `value` is already escaped (RFC 4515)."""
        raise NotImplementedError

    def password_expires(self, entry: UserEntry) -> datetime | None:
        """When the password expires; None for never (or unknown)."""
        raise NotImplementedError

    def last_logon(self, entry: UserEntry) -> datetime | None:
        raise NotImplementedError
