"""Domain controllers found through DNS: SRV records in RFC 2782 order, host names resolved through a chosen
nameserver, found again every few minutes (a [[directory]] with `domain`, and `ssobridge init`).

AD registers `_ldap._tcp.dc._msdcs.<domain>` for its DCs; a plain LDAP directory may have only
`_ldap._tcp.<domain>`, asked second. The records name hosts and the LDAP port (389); the DCs are then used by
host name, LDAPS on 636 (or StartTLS on the port given), and each certificate is checked against that name.

Sites are not used: the site of THIS machine is what would choose `_ldap._tcp.<site>._sites.dc._msdcs.<domain>`,
and only a CLDAP "netlogon ping" with its address tells it (the DC maps the client's address to a subnet); the
rootDSE says only the DC's own site. Every DC of the domain is listed, in RFC 2782 order, and the failover
(servers.py) moves on from one that does not answer.

With `nameservers`, the DCs' host names are resolved through them too (A and AAAA): a machine whose own
resolver does not know the domain (tests; a DMZ host) still reaches the DCs by name.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import dns.exception
import dns.inet
import dns.resolver
from ldap3 import Server

from .. import metrics
from ..config import DirectorySettings
from ..config.directories import server_url

log = logging.getLogger("ssobridge.directory")

AD_RECORD = "_ldap._tcp.dc._msdcs.{domain}"
LDAP_RECORD = "_ldap._tcp.{domain}"

HOST_CACHE_SECONDS = 60.0  # a DC's addresses are looked up again after this (the TLS name stays the same)


class DiscoveryError(Exception):
    """DNS gave no usable answer: no SRV record (`record`: the last name asked), or no answer at all."""

    def __init__(self, text: str, record: str = "", timed_out: bool = False):
        super().__init__(text)
        self.record = record
        self.timed_out = timed_out


@dataclass(frozen=True)
class Target:
    """One SRV target: a DC by host name (no trailing dot, lower case) and the port it registered."""

    host: str
    port: int
    priority: int = 0
    weight: int = 0


@dataclass(frozen=True)
class Found:
    record: str  # the SRV name that answered
    targets: tuple[Target, ...]  # in RFC 2782 order
    nameservers: tuple[str, ...]  # () : the system's resolver


def resolver(nameservers: Sequence[str], timeout: float) -> dns.resolver.Resolver:
    """The system's resolver, or one asking only `nameservers` (Resolver(configure=False): no resolv.conf)."""
    if nameservers:
        chosen = dns.resolver.Resolver(configure=False)
        chosen.nameservers = list(nameservers)
    else:
        chosen = dns.resolver.Resolver()
    chosen.lifetime = timeout  # the whole lookup, every nameserver and retry included
    chosen.timeout = min(timeout, 2.0)
    return chosen


def find_domain_controllers(domain: str, nameservers: Sequence[str] = (), timeout: float = 5.0) -> Found:
    """The DCs of `domain` (AD's record first, then plain LDAP's), in RFC 2782 order; DiscoveryError when
    neither record exists or DNS does not answer."""
    ask = resolver(nameservers, timeout)
    domain = domain.strip().rstrip(".").lower()
    asked = []
    for pattern in (AD_RECORD, LDAP_RECORD):
        record = pattern.format(domain=domain)
        asked.append(record)
        try:
            answer = ask.resolve(record, "SRV", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
            continue
        except dns.exception.Timeout:
            raise DiscoveryError(f"DNS did not answer for {record} within {timeout:g} s "
                                 f"({_through(nameservers)})", record, timed_out=True) from None
        targets = [Target(str(r.target).rstrip(".").lower(), r.port, r.priority, r.weight) for r in answer
                   if str(r.target) != "."]  # "." : the service is decidedly not available (RFC 2782)
        if targets:
            return Found(record, tuple(rfc2782_order(targets)), tuple(nameservers))
    raise DiscoveryError(f"no SRV record {' nor '.join(asked)} ({_through(nameservers)})", asked[-1])


def rfc2782_order(targets: Sequence[Target], chance: random.Random | None = None) -> list[Target]:
    """Lowest priority first; within a priority, a weighted random order: each next target is drawn with a
    probability proportional to its weight, weight-0 targets kept for last (RFC 2782, "Usage rules")."""
    chance = chance or random.Random()
    ordered = []
    for priority in sorted({t.priority for t in targets}):
        left = sorted((t for t in targets if t.priority == priority), key=lambda t: t.weight)  # zeros first
        while left:
            total = sum(t.weight for t in left)
            pick = chance.randint(0, total)
            running = 0
            for index, target in enumerate(left):
                running += target.weight
                if running >= pick:
                    ordered.append(left.pop(index))
                    break
    return ordered


def _through(nameservers: Sequence[str]) -> str:
    return f"asked {', '.join(nameservers)}" if nameservers else "asked the system's resolver"


_host_cache: dict[tuple[str, tuple[str, ...]], tuple[float, tuple[str, ...]]] = {}
_host_cache_lock = threading.Lock()


def host_addresses(host: str, nameservers: Sequence[str], timeout: float) -> tuple[str, ...]:
    """The addresses of `host` through `nameservers` (IPv4 first), cached HOST_CACHE_SECONDS; the last
    addresses known are kept while the nameservers do not answer. DiscoveryError when none is known."""
    if dns.inet.is_address(host):
        return (host,)
    key = (host.lower(), tuple(nameservers))
    now = time.monotonic()
    with _host_cache_lock:
        cached = _host_cache.get(key)
    if cached is not None and now - cached[0] < HOST_CACHE_SECONDS:
        return cached[1]
    ask = resolver(nameservers, timeout)
    addresses: list[str] = []
    failure = None
    for kind in ("A", "AAAA"):
        try:
            addresses += [str(r) for r in ask.resolve(host, kind, search=False)]
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        except dns.exception.Timeout:
            failure = "timed out"
            break
        except dns.resolver.NoNameservers:
            failure = "no nameserver answered"
            break
    if not addresses:
        if cached is not None and failure:
            return cached[1]  # DNS is down, the DC may not be: try it where it was
        raise DiscoveryError(f"cannot resolve {host}: {failure or 'no A or AAAA record'} ({_through(nameservers)})")
    with _host_cache_lock:
        _host_cache[key] = (now, tuple(addresses))
    return tuple(addresses)


def server_urls(found: Found, start_tls: bool) -> tuple[str, ...]:
    """The URLs of the DCs found: LDAPS on 636 by host name (SRV gives the LDAP port), or the LDAP port with
    StartTLS. Each DC once, in the order found."""
    urls = (server_url(False, t.host, t.port) if start_tls else server_url(True, t.host, 636) for t in found.targets)
    return tuple(dict.fromkeys(urls))


def describe_found(found: Found) -> str:
    return f"SRV {found.record} ({_through(found.nameservers)}): {', '.join(f'{t.host}:{t.port}' for t in found.targets)}"


class DomainWatch:
    """The DCs of a [[directory]] with `domain`: looked up at start (first_lookup), then again every
    discovery_refresh_seconds by a background thread (start(); each serve worker has its own) until close().
    A failed lookup keeps the servers known (DNS down is no reason to drop a DC) and is tried again after
    retry_down_after (or discovery_refresh_seconds, when shorter)."""

    def __init__(self, settings: DirectorySettings):
        self.settings = settings
        self.apply: Callable[[tuple[str, ...]], None] = lambda urls: None  # gives the new list to the Servers
        self.found: Found | None = None
        self.error = ""  # why the last lookup failed; "" when it did not
        self._next = 0.0
        self._started = False
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._reported: set[str] = set()

    def first_lookup(self) -> tuple[str, ...]:
        return self._lookup() or ()

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._refresh_forever, name="ssobridge-discovery", daemon=True).start()

    def close(self) -> None:
        self._closed.set()

    def _refresh_forever(self) -> None:
        while not self._closed.wait(max(0.0, self._next - time.monotonic())):
            try:
                urls = self._lookup()
            except Exception:  # a bug must not end the refreshes of this worker: logged, tried again later
                log.exception("event=directory_discovery_error directory=%s", self.settings.name)
                self._next = time.monotonic() + self.settings.discovery_refresh_seconds
                continue
            if urls is not None:
                self.apply(urls)

    def _lookup(self) -> tuple[str, ...] | None:
        settings = self.settings
        try:
            found = find_domain_controllers(settings.domain or "", settings.nameservers, settings.connect_timeout)
        except DiscoveryError as e:
            self.error = str(e)
            self._next = time.monotonic() + min(settings.retry_down_after, settings.discovery_refresh_seconds)
            log.warning("event=directory_discovery_failed directory=%s domain=%s error=%r", settings.name,
                        settings.domain, self.error)
            return None
        self.found, self.error = found, ""
        self._next = time.monotonic() + settings.discovery_refresh_seconds
        urls = server_urls(found, settings.start_tls)
        for target in found.targets if settings.nameservers else ():
            try:  # known now, so that a DC found later is still reached while DNS is down
                host_addresses(target.host, settings.nameservers, settings.connect_timeout)
            except DiscoveryError:
                pass  # said when a connection to it is opened
        for url in self._reported - set(urls):
            metrics.discovered(settings.name, url, False)
        for url in urls:
            metrics.discovered(settings.name, url, True)
        if set(urls) != self._reported:
            log.info("event=directory_discovered directory=%s %s servers=%s", settings.name, describe_found(found),
                     ",".join(urls))
        self._reported = set(urls)
        return urls


class ResolvedServer(Server):
    """ldap3's Server with the host's addresses given (looked up through the directory's nameservers)
    instead of asked of the system's resolver."""

    def __init__(self, host: str, addresses: tuple[str, ...], **options):
        super().__init__(host, **options)
        self._addresses = addresses

    @property
    def address_info(self) -> list:
        if not self._address_info:  # the shape of ldap3's: getaddrinfo's five, availability and when checked
            self._address_info = [[socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM,
                                   socket.IPPROTO_TCP, "", (a, self.port, 0, 0) if ":" in a else (a, self.port),
                                   None, None] for a in self._addresses]
        return self._address_info
