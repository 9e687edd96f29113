"""Connections to the directory's servers: TLS, timeouts, failover and reuse.

One helper owns "get a connection, use it, give it back" (ConnectionPool.connection). Connections are
reused across requests because a TLS handshake costs more than the search and the bind together.
"""

from __future__ import annotations

import logging
import math
import queue
import re
import select
import socket
import ssl
import time
from typing import Callable, Iterable, TypeVar
from urllib.parse import urlsplit

from ldap3 import NONE, SIMPLE, SYNC, Connection, Server
from ldap3.core.exceptions import LDAPException

from .. import metrics
from ..config import DirectorySettings
from ..config.directories import server_url
from .discovery import DiscoveryError, DomainWatch, ResolvedServer, host_addresses
from .guard import ServiceGuard
from .servers import Servers, ServerState
from .tls import NAME_MISMATCH_TEXT, VerifiedTls, verifying_context

log = logging.getLogger("ssobridge.directory")

T = TypeVar("T")


class DirectoryUnavailable(Exception):
    """No server of the directory could do what was asked: an outage or a misconfiguration, never the user's fault."""


class ServiceAccountRefused(DirectoryUnavailable):
    """The server answered, but refused the service account's bind (bind_dn / bind_password); or such a
    refusal, recorded by the ServiceGuard, still stops service binds. `result`: ldap3's bind result."""

    def __init__(self, text: str, result: dict | None = None):
        super().__init__(text)
        self.result = result or {}


class Connector:
    """Opens connections to a directory's servers in the configured order.

    A server that fails to connect is marked down and skipped for `retry_down_after` seconds, so a dead
    domain controller costs one connect timeout, not one per request; when every server is marked down,
    requests answer DirectoryUnavailable at once while one probe per server finds one back (servers.py).
    A refused service-account bind is not an outage: the other servers would refuse it too, and each try
    counts toward the service account's lockout, so it stops the attempt at once, and the guard stops
    service binds to the directory for service_retry_seconds (see guard.py).
    """

    def __init__(self, settings: DirectorySettings, guard: ServiceGuard | None = None):
        self.settings = settings
        self.guard = guard or ServiceGuard(settings)
        # A request waits for another's first open of a server at most as long as that open may take.
        wait = 2 * max(1, math.ceil(settings.connect_timeout)) + 1
        # A domain instead of urls: its DCs from DNS now, and again every discovery_refresh_seconds.
        self.watch = DomainWatch(settings) if settings.domain and not settings.urls else None
        urls = self.watch.first_lookup() if self.watch else settings.urls
        self.servers = Servers(settings.name, urls, settings.retry_down_after, wait, self._probe)
        if self.watch:
            self.watch.apply = self.servers.replace
            self.watch.start()
        self.opened = 0  # connections opened so far: with reuse, it stays small (benchmarks read it)
        self.certificate_expiry: dict[str, float] = {}  # server URL -> its certificate's notAfter (Unix time)
        uses_tls = settings.start_tls or bool(self.watch) or any(url.startswith("ldaps:") for url in urls)
        self.tls_context = verifying_context(settings.ca_file) if uses_tls else None

    @property
    def failovers(self) -> int:
        """Servers marked down so far, and searches retried: Directory learns the PDC emulator again after one."""
        return self.servers.failovers

    @failovers.setter
    def failovers(self, value: int) -> None:
        self.servers.failovers = value

    @property
    def first_url(self) -> str:
        return self.servers.order[0].url

    @property
    def urls(self) -> tuple[str, ...]:
        """The servers now, in the order tried (with a domain: those DNS listed at the last lookup)."""
        return tuple(s.url for s in self.servers.order)

    def put_first(self, url: str) -> bool:
        """Try the server `url` (one of urls) first from now on; True when that changed the order."""
        return self.servers.put_first(url)

    def open(self, bind_as_service: bool, after: Connection | None = None, server: str | None = None) -> Connection:
        """A new connection. `after`: one that just failed, so begin with the server after its own.
        `server` (a URL): to that server only, whatever its state (a login's bind, see ConnectionPool.run)."""
        if bind_as_service and (refusal := self.guard.refusal()) is not None:
            raise ServiceAccountRefused(refusal.describe())  # at once: no network, no bind
        if server is not None:
            try:
                return self._open_state(self.servers.pinned(server), bind_as_service, claimed=False)
            except ServiceAccountRefused:
                raise
            except DirectoryUnavailable as e:
                raise DirectoryUnavailable(f"{server}: {e}") from None
        failures, tried = [], set()
        while (state := self.servers.choose(after, tried)) is not None:
            tried.add(state.url)
            try:
                return self._open_state(state, bind_as_service, claimed=state.probing)
            except ServiceAccountRefused:
                raise
            except DirectoryUnavailable as e:
                failures.append(f"{state.url}: {e}")
        if not failures and self.watch and not self.servers.order:
            raise DirectoryUnavailable(f"no server found in DNS for {self.settings.domain}: {self.watch.error}")
        raise DirectoryUnavailable("; ".join(failures) or self.servers.describe_down())

    def _open_state(self, state: ServerState, bind_as_service: bool, claimed: bool) -> Connection:
        started = time.monotonic()
        try:
            # A new ldap3 Server each time: it would otherwise remember a failed address on its own
            # and refuse it for a while after the server is back ("invalid server address").
            with metrics.directory_timer(self.settings.name, "connect"):
                server = ldap3_server(state.url, self.settings, self.tls_context)
                connection = self._open_on(server, state.url, bind_as_service)
        except ServiceAccountRefused as e:
            self.servers.answered(state, claimed)  # it answered: the refusal is the guard's business
            raise ServiceAccountRefused(f"{state.url}: {e}", e.result) from None
        except DirectoryUnavailable as e:
            self.servers.failed(state, str(e), time.monotonic() - started, claimed)
            raise
        except BaseException:
            if claimed:
                self.servers.released(state)
            raise
        self.servers.answered(state, claimed)
        with self.servers.lock:
            self.opened += 1
        return connection

    def _probe(self, url: str) -> None:
        """The background probe of a server marked down: a connection (TLS included, no bind), closed again."""
        _close_quietly(self._open_on(ldap3_server(url, self.settings, self.tls_context), url, bind_as_service=False))

    def _open_on(self, server: Server, url: str, bind_as_service: bool) -> Connection:
        settings = self.settings
        connection = Connection(
            server, authentication=SIMPLE, client_strategy=SYNC, auto_bind="NONE", raise_exceptions=False,
            read_only=True, auto_referrals=False, check_names=False,
            # Opening (TCP, TLS handshake, StartTLS, service bind) is bounded by connect_timeout: a server
            # that accepts but never answers is as dead as one that refuses. ldap3 wants whole seconds.
            receive_timeout=max(1, math.ceil(settings.connect_timeout)),
        )
        try:
            connection.open(read_server_info=False)
            # ldap3 otherwise stalls ~40 ms per request on Nagle's algorithm.
            connection.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if settings.start_tls and not connection.start_tls(read_server_info=False):
                raise DirectoryUnavailable(f"StartTLS refused: {describe_result(connection.result)}")
            if (expires := certificate_expiry(connection)) is not None:
                self.certificate_expiry[url] = expires
            if bind_as_service:
                self._bind_service_account(connection, url)
            _set_receive_timeout(connection, settings.timeout)
        except (LDAPException, OSError, ssl.SSLError) as e:
            _close_quietly(connection)
            raise DirectoryUnavailable(describe_open_error(e, server.host)) from None
        except DirectoryUnavailable:
            _close_quietly(connection)
            raise
        return connection

    def _bind_service_account(self, connection: Connection, url: str) -> None:
        guard = self.guard
        with guard.lock:  # threads that waited here see the refusal the first one recorded
            if (refusal := guard.refusal()) is not None:
                raise ServiceAccountRefused(refusal.describe())
            try:
                with metrics.directory_timer(self.settings.name, "service_bind"):
                    bind_service_account(connection, self.settings, guard.bind_controls())
            except ServiceAccountRefused as e:
                refusal = guard.refused(url, e.result, describe_result(e.result))
                raise ServiceAccountRefused(refusal.describe(), e.result) from None
        guard.bound()


def certificate_expiry(connection: Connection) -> float | None:
    """When the certificate the server presented expires (Unix time), read from the handshake already made;
    None on plain LDAP."""
    tls = connection.socket
    certificate = tls.getpeercert() if isinstance(tls, ssl.SSLSocket) else None
    return ssl.cert_time_to_seconds(certificate["notAfter"]) if certificate else None


def _set_receive_timeout(connection: Connection, seconds: float) -> None:
    """From now on, each answer may take `seconds` (the directory's timeout)."""
    connection.receive_timeout = max(1, math.ceil(seconds))
    connection.socket.settimeout(seconds)


def bind_service_account(connection: Connection, settings: DirectorySettings, controls: list | None = None) -> None:
    # The password goes as bytes: ldap3 would apply SASLprep to a str and change some passwords.
    connection.user = settings.bind_dn
    connection.password = settings.bind_password.encode("utf-8")
    if not connection.bind(read_server_info=False, controls=controls):
        raise ServiceAccountRefused(f"the service account {settings.bind_dn!r} could not bind: "
                                    f"{describe_result(connection.result)}", connection.result)


def ldap3_server(url: str, settings: DirectorySettings, tls_context: ssl.SSLContext | None) -> Server:
    """ldap3's Server for `url`; `tls_context` (verifying_context) for LDAPS and StartTLS. With nameservers,
    the host's addresses come from them (the TLS name stays the host's)."""
    parts = urlsplit(url)
    use_ssl = parts.scheme == "ldaps"
    tls = VerifiedTls(tls_context, parts.hostname or "") if use_ssl or settings.start_tls else None
    # get_info=NONE: reading the schema costs ~100 ms per connection on AD and nothing here needs it.
    options = dict(port=parts.port or (636 if use_ssl else 389), use_ssl=use_ssl, tls=tls, get_info=NONE,
                   connect_timeout=settings.connect_timeout)
    if not settings.nameservers:
        return Server(parts.hostname, **options)
    try:
        addresses = host_addresses(parts.hostname or "", settings.nameservers, settings.connect_timeout)
    except DiscoveryError as e:
        raise DirectoryUnavailable(str(e)) from None
    return ResolvedServer(parts.hostname, addresses, **options)


def url_of_host(urls: Iterable[str], host: str) -> str | None:
    """The first of `urls` whose host is `host`: the same name (any case), or an address either resolves to."""
    name = host.rstrip(".").lower()
    addresses = _addresses(name)
    for url in urls:
        url_host = (urlsplit(url).hostname or "").rstrip(".").lower()
        if url_host == name or addresses & _addresses(url_host):
            return url
    return None


def _addresses(host: str) -> set[str]:
    try:
        return {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError):  # a name that does not resolve (here) matches by name only
        return set()


class ConnectionPool:
    """Idle connections of one directory, either bound as the service account or left for user binds."""

    def __init__(self, connector: Connector, bind_as_service: bool, size: int = 16):
        self._connector = connector
        self._bind_as_service = bind_as_service
        self._idle: queue.LifoQueue[Connection] = queue.LifoQueue(maxsize=size)

    def run(self, operation: Callable[[Connection], T], retry: bool, server: str | None = None) -> T:
        """Do `operation` on a connection of our own and give the connection back afterwards.

        With `retry` (searches), an operation whose connection dies under it (dropped while idle, reset,
        the server stopped mid-search) is tried once more, on a new connection to the NEXT server of the
        directory. A bind is never retried: a retry could count a wrong password twice toward a lockout.
        With `server` (a URL, see connection_url), only a connection to that server is used, and never
        another: a login's bind goes to the DC its search read the lockout counters from (AD does not
        replicate them). Network failures become DirectoryUnavailable; a connection that failed is
        closed, never given back.
        """
        connection = self._take_idle(server)
        failed = None
        while True:
            connection = connection or self._connector.open(self._bind_as_service, after=failed, server=server)
            try:
                outcome = operation(connection)
            except (LDAPException, OSError, ssl.SSLError) as e:
                _close_quietly(connection)
                if retry and failed is None and server is None:
                    self._connector.failovers += 1
                    log.info("event=directory_retry directory=%s server=%s:%s reason=%r",
                             self._connector.settings.name, connection.server.host, connection.server.port,
                             describe_error(e))
                    connection, failed = None, connection
                    continue
                raise DirectoryUnavailable(describe_error(e)) from None
            except BaseException:
                _close_quietly(connection)
                raise
            self._give_back(connection)
            return outcome

    def _give_back(self, connection: Connection) -> None:
        if connection.closed:
            return
        try:
            self._idle.put_nowait(connection)
        except queue.Full:
            _close_quietly(connection)

    def _take_idle(self, server: str | None = None) -> Connection | None:
        others = []  # idle connections to other servers than the one asked for, given back afterwards
        try:
            while True:
                try:
                    connection = self._idle.get_nowait()
                except queue.Empty:
                    return None
                if not _still_open(connection) or self._dropped(connection):
                    _close_quietly(connection)
                elif server is None or connection_url(connection) == server:
                    return connection
                else:
                    others.append(connection)
        finally:
            for connection in others:
                self._give_back(connection)

    def _dropped(self, connection: Connection) -> bool:
        """To a server DNS no longer lists (a directory with a domain)."""
        return self._connector.watch is not None and not self._connector.servers.knows(connection_url(connection))

    def close(self, except_to: str | None = None) -> None:
        """Close the idle connections; `except_to`: keep those to that server URL."""
        kept = []
        while (connection := self._take_idle()) is not None:
            if except_to is not None and connection_url(connection) == except_to:
                kept.append(connection)
            else:
                _close_quietly(connection)
        for connection in kept:
            self._give_back(connection)


def connection_url(connection: Connection) -> str:
    """The URL of the server a connection is to, as UserEntry.server records it."""
    server = connection.server
    return server_url(server.ssl, server.host, server.port)


def _still_open(connection: Connection) -> bool:
    """An idle LDAP connection has nothing to read; if it has, the server closed it or said goodbye."""
    if connection.closed or connection.socket is None:
        return False
    try:
        readable, _, _ = select.select([connection.socket], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _close_quietly(connection: Connection) -> None:
    try:
        connection.unbind()
    except Exception:  # closing a broken connection may fail in many ways; it is gone either way
        pass


def describe_result(result: dict | None) -> str:
    if not result:
        return "no answer"
    text = f"{result.get('description')} ({result.get('result')})"
    if result.get("message"):
        text += f": {result['message'].strip()}"
    return text


_VERIFY_REASON = re.compile(r"certificate verify failed: ([^(']+)")


def describe_open_error(error: BaseException, host: str) -> str:
    """describe_error for opening a connection to `host`, with a name that does not resolve said so: ldap3
    says "invalid server address" when its (new, see Connector.open) Server found no address for the host."""
    if str(error) == "invalid server address":
        return f"cannot resolve {host}: check the host name in urls and this machine's DNS"
    return describe_error(error)


def describe_error(error: BaseException) -> str:
    """A plain sentence for an exception, with certificate problems spelled out."""
    text = str(error)
    if (at := text.find(NAME_MISMATCH_TEXT)) >= 0:  # tls.CertificateNameMismatch, perhaps inside ldap3's words
        return text[at:].strip()
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        reason = _VERIFY_REASON.search(text)
        return f"TLS certificate not trusted (check ca_file): {reason.group(1).strip() if reason else text}"
    if "timed out" in text.lower() or "timeout" in type(error).__name__.lower():
        return f"timed out: {text}"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
