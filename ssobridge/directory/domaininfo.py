"""What a domain knows about itself, read over a trusted TLS connection (step 3 of `ssobridge init`).

The rootDSE (anonymous: defaultNamingContext, dnsHostName, supportedCapabilities), then ONE bind as the
service account (a refusal is said and never retried: each refused bind counts toward its lockout), then as
that account: its DN, the NetBIOS name (the crossRef whose nCName is the domain), the UPN suffixes and the
domain's lockout policy. Through the directory layer's Connector, so TLS, the name check and the nameservers
are exactly what serve will use.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ldap3 import BASE, SUBTREE, Connection
from ldap3.utils.conv import escape_filter_chars

from ..config import DirectorySettings
from .connections import Connector, DirectoryUnavailable, ServiceAccountRefused, bind_service_account, describe_result
from .directory import service_guard

ACTIVE_DIRECTORY_OID = "1.2.840.113556.1.4.800"  # supportedCapabilities: LDAP_CAP_ACTIVE_DIRECTORY_OID
_INTERVAL_UNITS = 10_000_000  # AD intervals: negative, in 100 ns


class DomainInfoRefused(Exception):
    """The facts cannot be read: the message says why (the DC unreachable, the account refused)."""


@dataclass(frozen=True)
class DomainFacts:
    base_dn: str
    dns_host_name: str
    active_directory: bool
    bind_dn: str  # the service account's DN
    netbios: str | None
    upn_suffixes: tuple[str, ...]  # the DNS domain first
    lockout_threshold: int  # 0: the domain never locks accounts
    observation_seconds: int


def read_facts(settings: DirectorySettings, domain: str, account: str, password: str) -> DomainFacts:
    """`settings`: the one DC's URL, its ca_file and nameservers; `account` as the admin typed it."""
    connector = Connector(settings, service_guard(settings, None))  # a refusal is remembered in this run only
    try:
        connection = connector.open(bind_as_service=False)
    except DirectoryUnavailable as e:
        raise DomainInfoRefused(f"{settings.urls[0]}: {str(e).removeprefix(settings.urls[0] + ': ')}") from None
    try:
        root = _one(connection, "", ["defaultNamingContext", "configurationNamingContext", "dnsHostName",
                                     "supportedCapabilities"])
        base_dn = _first(root, "defaultNamingContext")
        if not base_dn:
            raise DomainInfoRefused(f"{settings.urls[0]}: the rootDSE names no defaultNamingContext: is it a domain "
                              "controller?")
        active_directory = ACTIVE_DIRECTORY_OID in root.get("supportedCapabilities", [])
        bound = replace(settings, bind_dn=bind_name(account, domain), bind_password=password)
        try:
            bind_service_account(connection, bound)
        except ServiceAccountRefused as e:
            raise DomainInfoRefused(f"the service account {bound.bind_dn!r} was refused: {describe_result(e.result)}. "
                              "Not tried again (each refused bind counts toward the account's lockout): check "
                              "the name and the password, then run init again") from None
        partitions = f"CN=Partitions,{_first(root, 'configurationNamingContext')}"
        crossref = _search(connection, partitions, f"(&(objectClass=crossRef)(nCName={escape_filter_chars(base_dn)}))",
                           ["nETBIOSName"])
        suffixes = _one(connection, partitions, ["uPNSuffixes"]).get("uPNSuffixes", [])
        policy = _one(connection, base_dn, ["lockoutThreshold", "lockOutObservationWindow"])
        return DomainFacts(
            base_dn=base_dn, dns_host_name=_first(root, "dnsHostName") or "", active_directory=active_directory,
            bind_dn=account_dn(connection, base_dn, account),
            netbios=_first(crossref[0], "nETBIOSName") if crossref else None,
            upn_suffixes=tuple(dict.fromkeys([domain.lower(), *(s.lower() for s in suffixes)])),
            lockout_threshold=int(_first(policy, "lockoutThreshold") or 0),
            observation_seconds=abs(int(_first(policy, "lockOutObservationWindow") or 0)) // _INTERVAL_UNITS)
    finally:
        connection.unbind()


def bind_name(account: str, domain: str) -> str:
    """A DN, user@suffix and DOMAIN\\user bind as typed; a bare sAMAccountName as user@<DNS domain>, the
    name AD accepts for every account (its implicit UPN) before the NetBIOS name is known."""
    return account if "=" in account or "@" in account or "\\" in account else f"{account}@{domain.lower()}"


def account_dn(connection: Connection, base_dn: str, account: str) -> str:
    """The service account's DN, for bind_dn: as given, else found by UPN or sAMAccountName."""
    if "=" in account:
        return account
    name = account.rpartition("\\")[2]
    login = escape_filter_chars(name.partition("@")[0])
    filters = f"(|(userPrincipalName={escape_filter_chars(name)})(sAMAccountName={login}))" if "@" in name else \
        f"(sAMAccountName={login})"
    found = _search(connection, base_dn, filters, ["1.1"])
    if len(found) != 1:
        raise DomainInfoRefused(f"the service account {account!r} bound, but {len(found)} entries under {base_dn} "
                          "match it: give its DN with --service-account")
    return found[0]["dn"]


def _search(connection: Connection, base: str, search_filter: str, attributes: list[str]) -> list[dict]:
    connection.search(base, search_filter, SUBTREE, attributes=attributes)
    return [r for r in connection.response or () if r.get("type") == "searchResEntry"]


def _one(connection: Connection, dn: str, attributes: list[str]) -> dict:
    if not connection.search(dn, "(objectClass=*)", BASE, attributes=attributes):
        return {}
    entries = [r for r in connection.response or () if r.get("type") == "searchResEntry"]
    return dict(entries[0]["attributes"]) if entries else {}


def _first(entry: dict, name: str) -> str | None:
    attributes = entry.get("attributes", entry)
    value = attributes.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else str(value)
