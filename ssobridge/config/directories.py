"""Parsing [[directory]] and [attributes] (also [directory.attributes]) into their settings."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509

from ..mapping import Candidate, OutputMapping
from .reader import Table
from .settings import DEFAULT_USER_FILTERS, DirectorySettings, DirectoryType

_USER_FILTER_FIELDS = re.compile(r"\{([^{}]*)\}")


def directories_list(entries: list, attributes: tuple[OutputMapping, ...], problems: list[str],
                     folder: Path) -> tuple[DirectorySettings, ...]:
    if not entries:
        return ()
    result = []
    for index, entry in enumerate(entries):
        t = Table(entry, f"directory[{index}]", problems, DirectorySettings)
        result.append(_directory(t, index, attributes, folder))
        t.reject_unknown()
    names = [d.name.lower() for d in result]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(f"directory: the name {name!r} is used twice")
    if sum(d.default for d in result) > 1:
        problems.append("directory: more than one directory has default = true")
    _claims_unique([(d.name, d.netbios_domain) for d in result if d.netbios_domain], "netbios_domain", problems)
    _claims_unique([(d.name, s) for d in result for s in d.upn_suffixes], "upn_suffixes", problems)
    return tuple(result)


def _claims_unique(claims: list[tuple[str, str]], key: str, problems: list[str]) -> None:
    seen: dict[str, str] = {}
    for name, claim in claims:
        if claim.lower() in seen and seen[claim.lower()] != name:
            problems.append(f"directory.{key}: {claim!r} is claimed by both {seen[claim.lower()]!r} and {name!r}")
        seen[claim.lower()] = name


def _directory(t: Table, index: int, attributes: tuple[OutputMapping, ...], folder: Path) -> DirectorySettings:
    kind = t.member("type", DirectoryType, t.text("type", required=True))
    urls = t.texts("urls")
    domain = (t.text("domain") or "").strip().rstrip(".").lower() or None
    if not urls and not domain:
        t.problem("urls", 'is required (a list such as ["ldaps://dc1.example.com"]), or domain, whose DCs '
                          'are found through DNS')
    if urls and domain:
        t.problem("domain", "and urls exclude each other: name the servers, or the domain to find them in")
    nameservers = t.texts("nameservers")
    for address in nameservers:
        if not _is_address(address):
            t.problem("nameservers", f"{address!r} is not an IP address")
    start_tls = t.get("start_tls", bool)
    allow_plaintext = t.get("allow_plaintext", bool)
    urls = tuple(normal_url(url) if _check_url(t, url, start_tls, allow_plaintext) else url for url in urls)
    ca_file = t.text("ca_file")
    if ca_file:
        ca_file = str((folder / ca_file).absolute())  # relative to the config file's folder, shown absolute
        _check_ca_file(t, ca_file)
    bind_dn = t.text("bind_dn", "") or ""
    bind_password = t.text("bind_password", "") or ""
    if bind_dn and not bind_password:
        t.problem("bind_password", "is required when bind_dn is set")
    if not bind_dn:
        t.problem("bind_dn", "is required: the service account that searches for users")
    user_filter = t.text("user_filter") or DEFAULT_USER_FILTERS[kind or DirectoryType.LDAP]
    _check_user_filter(t, user_filter)
    netbios = t.text("netbios_domain")
    suffixes = tuple(s.lstrip("@").lower() for s in t.texts("upn_suffixes"))
    return DirectorySettings(
        name=t.text_or_default("name", f"directory{index + 1}"),
        type=kind or DirectoryType.LDAP,
        urls=urls,
        base_dn=t.text("base_dn", required=True) or "",
        bind_dn=bind_dn,
        bind_password=bind_password,
        ca_file=ca_file,
        start_tls=start_tls,
        allow_plaintext=allow_plaintext,
        connect_timeout=t.positive("connect_timeout", float),
        timeout=t.positive("timeout", float),
        netbios_domain=netbios.upper() if netbios else None,
        upn_suffixes=suffixes,
        user_filter=user_filter,
        default=t.get("default", bool),
        retry_down_after=t.positive("retry_down_after", float),
        service_retry_seconds=t.positive("service_retry_seconds", float),
        pdc_emulator_first=t.get("pdc_emulator_first", bool),
        ppolicy_default_dn=t.text("ppolicy_default_dn"),
        group_base_dn=t.text("group_base_dn"),
        membership_cache_seconds=t.positive("membership_cache_seconds", float),
        group_name_cache_seconds=t.positive("group_name_cache_seconds", float),
        attributes=attributes_table(Table(t.get("attributes", dict, {}), f"{t.key}.attributes", t.problems),
                                    attributes),
        domain=domain,
        nameservers=nameservers,
        discovery_refresh_seconds=t.positive("discovery_refresh_seconds", float),
    )


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _check_ca_file(t: Table, path: str) -> None:
    """Read now, so that a wrong file is a config problem at start, not an OpenSSL error at the first login."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        t.problem("ca_file", f"file not found: {path}")
        return
    except OSError as e:
        t.problem("ca_file", f"cannot be read: {path}: {e.strerror}")
        return
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        kind = "a DER (binary) certificate: convert it to PEM" if data[:1] == b"\x30" else "no PEM certificate"
        t.problem("ca_file", f"{path} holds {kind}; it must hold the CA certificate(s) that signed the "
                             "servers' certificates, in PEM (-----BEGIN CERTIFICATE-----)")


def normal_url(url: str) -> str:
    """One spelling per server, used everywhere (logs, metrics, check, UserEntry.server): the scheme and host in
    lower case, the port always written (636 for ldaps, 389 for ldap), nothing after it."""
    parts = urlsplit(url)
    tls = parts.scheme.lower() == "ldaps"
    return server_url(tls, parts.hostname or "", parts.port or (636 if tls else 389))


def server_url(tls: bool, host: str, port: int) -> str:
    host = host.lower()
    return f"{'ldaps' if tls else 'ldap'}://{'[' + host + ']' if ':' in host else host}:{port}"


def _check_url(t: Table, url: str, start_tls: bool, allow_plaintext: bool) -> bool:
    """Whether `url` can be used (each problem recorded)."""
    parts = urlsplit(url)
    if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
        t.problem("urls", f"{url!r} is not an ldap:// or ldaps:// URL with a host")
        return False
    try:
        parts.port
    except ValueError:
        t.problem("urls", f"{url!r} has an invalid port")
        return False
    if parts.scheme == "ldaps" and start_tls:
        t.problem("start_tls", f"{url!r} is already TLS (ldaps://); start_tls is for ldap:// URLs")
    if parts.scheme == "ldap" and not start_tls and not allow_plaintext:
        t.problem("urls", f"{url!r} would send passwords in clear text: use ldaps://, or set "
                          "start_tls = true, or (not recommended) allow_plaintext = true")
    return True


def _check_user_filter(t: Table, user_filter: str) -> None:
    if not (user_filter.startswith("(") and user_filter.endswith(")")):
        t.problem("user_filter", "must be an LDAP filter in parentheses")
    if user_filter.count("(") != user_filter.count(")"):
        t.problem("user_filter", "has unbalanced parentheses")
    fields = set(_USER_FILTER_FIELDS.findall(user_filter))
    if not fields & {"user", "upn"}:
        t.problem("user_filter", "must contain {user} or {upn}")
    if fields - {"user", "upn"}:
        t.problem("user_filter", f"unknown placeholders: {', '.join(sorted(fields - {'user', 'upn'}))}; "
                                 "only {user} and {upn} exist")


def attributes_table(t: Table, inherited: tuple[OutputMapping, ...]) -> tuple[OutputMapping, ...]:
    """An [attributes] table over the mappings it inherits; a key given here replaces the inherited one.

    A value is an attribute name, a list of candidates (attribute names or "{givenName} {sn}" templates),
    or a table {from = [...], join = "; "} that joins the values of multi-valued attributes.
    """
    mapping = {m.name: m for m in inherited}
    for name in t.data:
        t.used.add(name)
        if name not in ("EmailAddress", "DisplayName") and not (name.startswith("cf_") and len(name) > 3):
            t.problem(name, "must be EmailAddress, DisplayName or a cf_<Field> name")
            continue
        value = t.data[name]
        join = None
        if isinstance(value, dict):
            join = value.get("join")
            unknown = set(value) - {"from", "join"}
            if unknown or (join is not None and not isinstance(join, str)):
                t.problem(name, 'as a table takes from = [...] and optionally join = "separator"')
                continue
            value = value.get("from")
        candidates = [value] if isinstance(value, str) else value
        if not isinstance(candidates, list) or not candidates or \
                not all(isinstance(c, str) and c.strip() for c in candidates):
            t.problem(name, "must be an attribute name, a list of attribute names or templates, or a table "
                            "with from = [...]")
            continue
        parsed = tuple(Candidate(c.strip()) for c in candidates)
        for candidate in parsed:
            if candidate.problem():
                t.problem(name, candidate.problem())
        mapping[name] = OutputMapping(name, parsed, join)
    return tuple(mapping.values())
