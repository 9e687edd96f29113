"""Finding a user, verifying a password, and reading an account's state, whatever the directory type.

Three kinds of outcome, kept apart: an AccountState (the user's business: OK, wrong password, locked,
...), DirectoryUnavailable (infrastructure), and exceptions (bugs). "Not found" is an empty result:
a search base that does not exist (noSuchObject) is "not found" too, never an outage, and an outage is
never "not found".

Finding a person answers a Finding: found, not found, ambiguous or unavailable. An ambiguous
user, one the user_filter (or an email address) finds more than once, is a configuration problem, mapped
the same way by every provider. Nobody is let in as either entry: login answers FAIL wrong_credentials and
logs both DNs at ERROR; the policy providers, the user card and the sign-in page treat the person as not
in the directory, and log both DNs too.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable

from cachetools import TTLCache, cachedmethod
from ldap3 import BASE, SUBTREE, Connection
from ldap3.utils.conv import escape_filter_chars

from .. import metrics
from ..config import DirectorySettings, DirectoryType
from . import ber
from .activedirectory import ActiveDirectory
from .connections import (ConnectionPool, Connector, DirectoryUnavailable, ServiceAccountRefused, connection_url,
                          describe_result, url_of_host)
from .entries import UserEntry
from .flavour import AccountState, Flavour, LockoutPolicy
from .guard import ServiceGuard
from .dn import first_value
from .groups import Group
from .names import LoginName, parse_login_name, user_search_filter
from .openldap import OpenLDAP

# The config's directory `type` -> its flavour. A new directory type is one module and one line here.
FLAVOURS: dict[DirectoryType, type[Flavour]] = {
    DirectoryType.ACTIVE_DIRECTORY: ActiveDirectory,
    DirectoryType.LDAP: OpenLDAP,
}

NO_SUCH_OBJECT = 32
FIRST_SERVER_SECONDS = 600  # the PDC emulator is learned again this often (and after a failover)

log = logging.getLogger("ssobridge.directory")
SIZE_LIMIT_EXCEEDED = 4


class CountedCache(TTLCache):
    """A TTLCache whose lookups are counted in ssobridge_cache_requests (hit or miss) under its name."""

    def __init__(self, name: str, maxsize: int, ttl: float):
        super().__init__(maxsize, ttl)
        self.name = name

    def __getitem__(self, key):
        try:
            value = super().__getitem__(key)
        except KeyError:
            metrics.cache(self.name, False)
            raise
        metrics.cache(self.name, True)
        return value

    def setdefault(self, key, default=None):
        """cachedmethod's store after a miss: not a lookup, so not counted."""
        if key in self:
            return TTLCache.__getitem__(self, key)
        self[key] = default
        return default


class AmbiguousUser(Exception):
    """The user_filter (or an email address) matched more than one entry: a configuration problem, never a login."""


class Outcome(enum.Enum):
    """What looking for a person came to. Decided here, where it happens, so that no caller reads an outage
    or an ambiguity as "nobody" (or the reverse) by catching the wrong exception."""

    FOUND = "found"
    NOT_FOUND = "not found"
    AMBIGUOUS = "ambiguous"  # the user_filter or an email address matches more than one entry
    UNAVAILABLE = "unavailable"  # the directory could not answer


@dataclass(frozen=True)
class Finding:
    """The one answer to "find the person", which each provider maps once."""

    outcome: Outcome
    directory: Directory | None = None  # FOUND only
    entry: UserEntry | None = None  # FOUND only
    error: str = ""  # AMBIGUOUS: the filter and two of the DNs it matched; UNAVAILABLE: the directory problem
    service_refused: bool = False  # UNAVAILABLE because the service account is refused (its guard logged it)


def finding(find: Callable[[], tuple[Directory, UserEntry] | None]) -> Finding:
    """The Finding of `find`, which returns (directory, entry), None for nobody, or raises AmbiguousUser or
    DirectoryUnavailable."""
    try:
        found = find()
    except AmbiguousUser as e:
        return Finding(Outcome.AMBIGUOUS, error=str(e))
    except DirectoryUnavailable as e:
        return Finding(Outcome.UNAVAILABLE, error=str(e), service_refused=isinstance(e, ServiceAccountRefused))
    return Finding(Outcome.FOUND, *found) if found else Finding(Outcome.NOT_FOUND)


class Directory:
    """One configured directory: its servers, its service account, and the questions asked of it."""

    def __init__(self, settings: DirectorySettings, connector: Connector | None = None,
                 extra_attributes: tuple[str, ...] = (), data_dir: str | None = None):
        """`data_dir`: where the service account guard keeps its record (None: in this process only)."""
        self.settings = settings
        self.connector = connector = connector or Connector(settings, service_guard(settings, data_dir))
        self._service = ConnectionPool(connector, bind_as_service=True)
        self._binds = ConnectionPool(connector, bind_as_service=False)
        self.flavour: Flavour = FLAVOURS[settings.type](settings, self._search)
        mapped = {name for mapping in settings.attributes for name in mapping.attributes}
        self._attributes = sorted({*mapped, *self.flavour.state_attributes, *extra_attributes}, key=str.lower)
        self._memberships = CountedCache("memberships", maxsize=10_000, ttl=settings.membership_cache_seconds)
        self._display_names = CountedCache("display_names", maxsize=10_000, ttl=settings.group_name_cache_seconds)
        self._lock = threading.Lock()
        self._first_server_learned: tuple[float, int] | None = None  # (when, connector.failovers then)

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

    def find(self, name: LoginName) -> Finding:
        """The person this directory's user_filter finds for the name (find_user), as a Finding."""
        return finding(lambda: (self, entry) if (entry := self.find_user(name)) else None)

    def find_user(self, name: LoginName) -> UserEntry | None:
        """The one entry the user_filter finds; None for nobody; AmbiguousUser for several."""
        search_filter = self.user_filter(name)
        return self._one(search_filter, f"user_filter {search_filter} matches more than one entry")

    def find_user_by_email(self, email: str) -> UserEntry | None:
        """The one user with this address (the flavour says where addresses are: mail, proxyAddresses)."""
        search_filter = self.flavour.email_filter(escape_filter_chars(email.strip()))
        return self._one(search_filter, f"several entries have the address {email!r}")

    def _one(self, search_filter: str, ambiguity: str) -> UserEntry | None:
        self._order_servers()
        entries = self._search(self.settings.base_dn, SUBTREE, search_filter, self._attributes, size_limit=2)
        if len(entries) > 1:
            raise AmbiguousUser(f"{ambiguity}: {entries[0].dn!r}, {entries[1].dn!r}")
        return entries[0] if entries else None

    def _order_servers(self) -> None:
        """AD: the PDC emulator first, when it is among urls (pdc_emulator_first), so that a login's search
        and its bind (pinned to the search's server) go to it. Learned once, again every
        FIRST_SERVER_SECONDS and after a failover; idle connections to other servers are then closed."""
        if not self.settings.pdc_emulator_first or len(self.connector.urls) < 2:
            return
        connector = self.connector
        with self._lock:
            learned = self._first_server_learned
            if learned is not None and learned[1] == connector.failovers and \
                    time.monotonic() - learned[0] < FIRST_SERVER_SECONDS:
                return
            self._first_server_learned = (time.monotonic(), connector.failovers)  # one thread learns
        try:
            host = self.flavour.first_server_host()
        except DirectoryUnavailable:
            return  # the login's own search says what is wrong
        url = url_of_host(self.connector.urls, host) if host else None
        with self._lock:
            self._first_server_learned = (time.monotonic(), connector.failovers)
        if url is None:
            return
        if connector.put_first(url):
            log.info("event=pdc_emulator_first directory=%s server=%s host=%s", self.name, url, host)
        if connector.first_url == url:
            self._service.close(except_to=url)
            self._binds.close(except_to=url)

    def verify_password(self, entry: UserEntry, password: bytes) -> AccountState:
        """Exactly one bind as the user's DN, on the server the entry was read from (AD's lockout
        counters are per DC). A network failure here is never retried: a retry could count a wrong
        password twice toward the account's lockout."""
        controls = self.flavour.bind_controls()

        def bind(connection: Connection) -> dict:
            connection.user = entry.dn
            connection.password = password  # bytes: sent as typed, no SASLprep
            if ber.simple_bind(connection, controls) is None:  # else ldap3's own (pyasn1) bind
                connection.bind(read_server_info=False, controls=controls)
            return connection.result or {}

        with metrics.directory_timer(self.name, "bind"):
            result = self._binds.run(bind, retry=False, server=entry.server or None)
        state = self.flavour.bind_state(result, entry)
        if state is None:
            raise DirectoryUnavailable(f"unexpected bind result {describe_result(result)}")
        return state

    def lockout_policy(self, entry: UserEntry | None) -> LockoutPolicy:
        """The account's lockout policy (for None, the directory's default one); cached ten minutes."""
        return self.flavour.lockout_policy(entry)

    def failures_since(self, entry: UserEntry, since: datetime) -> int | None:
        """Wrong passwords the directory counted since `since`, read from the entry; None if not readable."""
        return self.flavour.failures_since(entry, since)

    def account_state(self, entry: UserEntry) -> AccountState:
        """The account's state read from its attributes, for single sign-on (no password to bind with)."""
        return self.flavour.account_state(entry, datetime.now(timezone.utc))

    @cachedmethod(lambda self: self._memberships, key=lambda self, entry: entry.dn.lower(),
                  lock=lambda self: self._lock)
    def groups(self, entry: UserEntry) -> frozenset[Group]:
        """Every group of the user, nested ones (and on AD the primary group) included; cached per user."""
        return self.flavour.groups(entry)

    def group_exists(self, name: str) -> bool:
        """Whether a group named in the rules (DN, name or SID) is in this directory: for `ssobridge check`.
        DirectoryUnavailable when the directory cannot say."""
        if "=" in name and not name.upper().startswith("S-1-"):
            return bool(self._search(name, BASE, "(objectClass=*)", ["1.1"]))
        value = escape_filter_chars(name)
        search_filter = f"(objectSid={value})" if name.upper().startswith("S-1-") else self.flavour.group_filter(value)
        return bool(self._search(self.flavour.group_base, SUBTREE, search_filter, ["1.1"], 1))

    @cachedmethod(lambda self: self._display_names, key=lambda self, dn: dn.lower(), lock=lambda self: self._lock)
    def display_name_of(self, dn: str) -> str:
        """The displayName (else cn) of another entry, such as a manager; cached like group names.
        An entry that is gone (a manager who left) is named by its DN's first value; in an outage,
        DirectoryUnavailable, and nothing is cached."""
        found = self._search(dn, BASE, "(objectClass=*)", ["displayName", "cn"])
        name = (found[0].first_text("displayName") or found[0].first_text("cn")) if found else None
        return name or first_value(dn) or dn

    def password_expires(self, entry: UserEntry) -> datetime | None:
        """When the password expires; None for never (or unknown)."""
        return self.flavour.password_expires(entry)

    def last_logon(self, entry: UserEntry) -> datetime | None:
        """AD: lastLogonTimestamp (replicated, up to ~14 days behind); OpenLDAP: authTimestamp (lastbind)."""
        return self.flavour.last_logon(entry)

    def _search(self, base: str, scope: str, search_filter: str, attributes: list[str],
                size_limit: int = 0) -> list[UserEntry]:
        """Search as the service account: [] when nothing matches or the base does not exist."""
        def search(connection: Connection) -> list[UserEntry]:
            time_limit = math.ceil(self.settings.timeout)
            # ber.search writes the request itself (ldap3's pyasn1 path costs ~0.3 ms of CPU); else ldap3.
            if not ber.search(connection, base, scope, search_filter, attributes, size_limit, time_limit):
                connection.search(base, search_filter, scope, attributes=attributes, size_limit=size_limit,
                                  time_limit=time_limit)
            return _entries(connection)

        with metrics.directory_timer(self.name, "search"):
            return self._service.run(search, retry=True)

    def check_service(self) -> None:
        """For readiness: DirectoryUnavailable unless a server answers the service account. What is known
        decides without the network (a refusal the guard recorded, every server marked down); otherwise
        one BASE search of base_dn, on a pooled connection when there is one. A refusal is said briefly."""
        try:
            if self.connector.guard.refusal() is None and self.connector.servers.all_down():
                raise DirectoryUnavailable(self.connector.servers.describe_down())
            self._search(self.settings.base_dn, BASE, "(objectClass=*)", ["1.1"])
        except ServiceAccountRefused as e:
            refusal = self.connector.guard.refusal()
            raise ServiceAccountRefused(f"{refusal.words} ({refusal.code}), refused by {refusal.server}"
                                        if refusal else str(e)) from None

    def close(self) -> None:
        self._service.close()
        self._binds.close()
        if self.connector.watch is not None:
            self.connector.watch.close()


def service_guard(settings: DirectorySettings, data_dir: str | None, since: float = 0.0) -> ServiceGuard:
    """The guard of a directory's service account, decoding refusals as its directory type does."""
    return ServiceGuard(settings, data_dir, FLAVOURS[settings.type], since)


def _entries(connection: Connection) -> list[UserEntry]:
    result = connection.result or {}
    if result.get("result") == NO_SUCH_OBJECT:
        return []  # the base is not there: nothing under it, which is not an outage
    # sizeLimitExceeded: more entries than asked for, which find_user reports as ambiguous.
    if result.get("result") not in (0, SIZE_LIMIT_EXCEEDED):
        raise DirectoryUnavailable(f"search refused: {describe_result(result)}")
    server = connection_url(connection)
    return [
        UserEntry(item["dn"], {k.lower(): tuple(v) for k, v in item.get("raw_attributes", {}).items()}, server)
        for item in connection.response or ()
        if item.get("type") == "searchResEntry"
    ]


class DirectorySet:
    """All configured directories, which one answers for a typed username, and the one "find the person" rule."""

    def __init__(self, directories: list[Directory]):
        self.directories = directories
        self.default = next((d for d in directories if d.settings.default), directories[0] if directories else None)

    @classmethod
    def from_settings(cls, settings: Iterable[DirectorySettings], extra_attributes: tuple[str, ...] = (),
                      connector: Callable[[DirectorySettings], Connector] | None = None,
                      data_dir: str | None = None) -> DirectorySet:
        """The directories of a config; `extra_attributes` are read with every user search (policy, card);
        `connector` replaces the network (the demo's sample directory); `data_dir` is [server] data_dir."""
        return cls([Directory(s, connector(s) if connector else None, extra_attributes=extra_attributes,
                              data_dir=data_dir) for s in settings])

    def route(self, name: LoginName) -> Directory | None:
        """The directory claiming the name's DOMAIN\\ or @suffix; the default one for a plain name."""
        if name.domain is None and name.suffix is None:
            return self.default
        return next((d for d in self.directories if d.claims(name)), None)

    def find(self, username: str | None = None, email: str | None = None) -> Finding:
        """The person: by username in the directory it routes to, else by email in each directory in turn."""
        return finding(lambda: self._find(username, email))

    def _find(self, username: str | None, email: str | None) -> tuple[Directory, UserEntry] | None:
        name = parse_login_name(username) if username else None
        directory = self.route(name) if name else None
        entry = directory.find_user(name) if directory else None
        if directory is not None and entry is not None:
            return directory, entry
        for directory in self.directories if email else ():
            entry = directory.find_user_by_email(email)
            if entry is not None:
                return directory, entry
        return None

    def find_principal(self, principal: str) -> Finding:
        """The person a Kerberos principal names. user@REALM: the realm is a UPN suffix (AD's realm is its DNS
        domain in upper case, the usual first upn_suffixes entry), the user_filter finds {user} = user and
        {upn} = user@realm; an enterprise name upn@suffix@REALM is that UPN; DOMAIN\\user (SSPI) as typed.
        Not found for a realm no directory claims, or nobody; no email fallback."""
        rest, at, realm = principal.rpartition("@")
        if at and "@" in rest:
            principal = rest  # an enterprise principal: the part before the realm is a UPN
        name = parse_login_name(principal)
        directory = self.route(name) if name and (name.domain or name.suffix) else None
        return directory.find(name) if directory else Finding(Outcome.NOT_FOUND)

    def certificate_expiries(self) -> dict[str, float]:
        """{"directory:<name>:<url>": notAfter (Unix time)} of each server's certificate, as seen when a TLS
        connection to it last opened (a server not connected to yet is absent)."""
        return {f"directory:{d.name}:{url}": expires for d in self.directories
                for url, expires in d.connector.certificate_expiry.items()}

    def close(self) -> None:
        for directory in self.directories:
            directory.close()
