"""Raw probes for `ssobridge check`: one server at a time, one service bind each, plain results, the wording
left to the caller."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping
from urllib.parse import urlsplit

from ldap3 import BASE, SUBTREE, Connection
from ldap3.core.exceptions import LDAPException

from ..config import DirectorySettings
from .connections import Connector, DirectoryUnavailable, ServiceAccountRefused, describe_result
from .directory import Directory
from .guard import ServiceGuard
from .tls import presented_certificate


@dataclass(frozen=True)
class ServerProbe:
    """What one server said, all over ONE connection bound as the service account (one bind per server)."""

    problem: str | None = None  # the TLS handshake or the service bind failed: why
    refused: bool = False  # the service account was refused (or its refusal is still remembered)
    base_problem: str | None = None  # why base_dn cannot be read, when it cannot
    filter_problem: str | None = None  # why the filter is not a valid LDAP filter, when it is not
    example_dn: str | None = None  # an entry the filter matches (None: it matches nothing)
    groups: Mapping[str, bool] = field(default_factory=dict)  # group name -> found in this directory
    groups_problem: str | None = None  # why the groups could not be looked up
    # What the lockout shield reads (counter attributes, then "lockout policy <DN>") -> readable by the service
    # account; empty when not probed (nothing found, or not asked for).
    lockout_counters: Mapping[str, bool] = field(default_factory=dict)
    certificate_expires: float | None = None  # notAfter of the server's certificate (Unix time); None: no TLS


def probe_server(settings: DirectorySettings, url: str, guard: ServiceGuard, user_filter: str,
                 group_names: Iterable[str] = (), lockout_counters: bool = False) -> ServerProbe:
    """As the service account on the server `url`: TLS and the bind, can base_dn be read, does `user_filter`
    match anything under it, which of `group_names` exist, and (`lockout_counters`) can the lockout shield
    read the counters and policies of the users it finds. The guard's record stops the bind."""
    one = replace(settings, urls=(url,))
    connector = Connector(one, guard)
    try:
        connection = connector.open(bind_as_service=True)
    except ServiceAccountRefused as e:
        return ServerProbe(problem=str(e).removeprefix(f"{url}: "), refused=True,
                           certificate_expires=connector.certificate_expiry.get(url))
    except DirectoryUnavailable as e:
        return ServerProbe(problem=str(e).removeprefix(f"{url}: "))
    directory = Directory(one, _Held(one, connection))
    try:
        found = replace(_searches(connection, settings.base_dn, user_filter),
                        certificate_expires=connector.certificate_expiry.get(url))
        try:
            if lockout_counters and found.example_dn is not None:
                found = replace(found, lockout_counters=_lockout_counters(directory, connection, user_filter))
            groups = {name: directory.group_exists(name) for name in group_names}
        except DirectoryUnavailable as e:
            return replace(found, groups_problem=str(e))
        return replace(found, groups=groups)
    finally:
        directory.close()
        if not connection.closed:
            connection.unbind()


def _searches(connection: Connection, base_dn: str, user_filter: str) -> ServerProbe:
    if not connection.search(base_dn, "(objectClass=*)", BASE, attributes=["1.1"]):
        return ServerProbe(base_problem=describe_result(connection.result))
    try:
        connection.search(base_dn, user_filter, SUBTREE, attributes=["1.1"], size_limit=3)
    except LDAPException as e:
        return ServerProbe(filter_problem=str(e))
    found = [r for r in connection.response or () if r.get("type") == "searchResEntry"]
    return ServerProbe(example_dn=found[0]["dn"] if found else None)


COMPARE_READABLE = (5, 6, 16)  # compareFalse, compareTrue, noSuchAttribute: compared, so readable


def _lockout_counters(directory: Directory, connection: Connection, user_filter: str) -> dict[str, bool]:
    """Which counters the service account reads on the first entries `user_filter` finds, and which of their
    lockout policies (and the default one) it can read. A counter set on no entry is compared on the first:
    "not set" and "not readable" look alike in a search, not in a compare."""
    flavour = directory.flavour
    entries = flavour.search(directory.settings.base_dn, SUBTREE, user_filter, list(flavour.state_attributes), 10)
    counters = {}
    for name, value in flavour.counter_attributes:
        counters[name] = any(entry.first_text(name) is not None for entry in entries)
        if not counters[name] and entries:
            try:
                connection.compare(entries[0].dn, name, value)
            except (LDAPException, OSError) as e:
                raise DirectoryUnavailable(str(e)) from None
            counters[name] = (connection.result or {}).get("result") in COMPARE_READABLE
    for entry in [None, *entries]:
        dn = flavour.lockout_policy_dn(entry)
        if dn:
            counters[f"lockout policy {dn}"] = directory.lockout_policy(entry).known
    return counters


class _Held(Connector):
    """The probe's one connection, lent to a Directory for its group lookups: never a second bind."""

    def __init__(self, settings: DirectorySettings, connection: Connection):
        super().__init__(settings)
        self._connection: Connection | None = connection

    def open(self, bind_as_service: bool, after: Connection | None = None, server: str | None = None) -> Connection:
        connection, self._connection = self._connection, None
        if connection is None or connection.closed:
            raise DirectoryUnavailable("the connection to the server was lost")
        return connection


def peer_certificate(settings: DirectorySettings) -> bytes:
    """The DER certificate the first server presents, fetched without validating it (to show what is wrong).
    DirectoryUnavailable when it cannot be fetched."""
    url = urlsplit(settings.urls[0])
    use_ssl = url.scheme == "ldaps"
    try:
        return presented_certificate(url.hostname or "", url.port or (636 if use_ssl else 389), starttls=not use_ssl,
                                     timeout=settings.connect_timeout)
    except (LDAPException, OSError) as e:
        raise DirectoryUnavailable(str(e)) from e
