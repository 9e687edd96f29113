"""Step 2 of `ssobridge init`: the certificates a DC presents, shown before anything is trusted, and the one
trust anchor kept for ca_file.

The whole chain the DC sends is read from the handshake, unverified (nothing is trusted yet and no password
is sent on this connection): directory/tls.py's presented_chain says how on each Python.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
from dataclasses import dataclass
from datetime import timezone

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from ..directory.connections import DirectoryUnavailable
from ..directory.tls import presented_chain as _chain

LDAPS_PORT = 636


class InitRefused(Exception):
    """A step of init cannot go on: the message says why and what to do; nothing is written."""


@dataclass(frozen=True)
class Presented:
    """One certificate of the chain the DC presented."""

    der: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.der)

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256(self.der).hexdigest().upper()
        return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(Encoding.PEM)

    def lines(self) -> list[str]:
        c = self.certificate
        valid = (f"{c.not_valid_before_utc.astimezone(timezone.utc):%Y-%m-%d} to "
                 f"{c.not_valid_after_utc.astimezone(timezone.utc):%Y-%m-%d}")
        return [f"subject  {c.subject.rfc4514_string()}", f"issuer   {c.issuer.rfc4514_string()}",
                f"valid    {valid}", f"SHA-256  {self.sha256}"]


@dataclass(frozen=True)
class Handshake:
    """Where the DC speaks TLS, and the chain it presented there (its own certificate first)."""

    host: str
    port: int
    start_tls: bool
    chain: tuple[Presented, ...]

    @property
    def anchor(self) -> Presented:
        """The highest certificate presented: the CA when the DC sends one, else its own (then pinned)."""
        return self.chain[-1]

    @property
    def pinned(self) -> bool:
        return len(self.chain) == 1

    def matching(self, fingerprint: str) -> Presented | None:
        wanted = normal_fingerprint(fingerprint)
        return next((p for p in self.chain if normal_fingerprint(p.sha256) == wanted), None)


def normal_fingerprint(text: str) -> str:
    """SHA-256 in hex, with or without colons (or spaces), any case."""
    return "".join(c for c in text.lower() if c in "0123456789abcdef")


def presented_chain(host: str, addresses: tuple[str, ...], ldap_port: int, timeout: float) -> Handshake:
    """LDAPS on 636; StartTLS on `ldap_port` (the SRV record's) when 636 is closed. InitRefused when neither."""
    try:
        return Handshake(host, LDAPS_PORT, False, _presented(host, LDAPS_PORT, False, timeout, addresses))
    except (OSError, ssl.SSLError) as e:
        ldaps_error = _say(e)
    try:
        return Handshake(host, ldap_port, True, _presented(host, ldap_port, True, timeout, addresses))
    except (DirectoryUnavailable, OSError, ssl.SSLError) as e:
        raise InitRefused(f"{host}: LDAPS (port {LDAPS_PORT}) {ldaps_error}, and StartTLS on port {ldap_port} "
                          f"{_say(e)}. ssobridge sends no password without TLS: enable LDAPS on the DC "
                          "(a certificate for its name, from AD CS or your CA)") from None


def _presented(host: str, port: int, starttls: bool, timeout: float, addresses: tuple[str, ...]
               ) -> tuple[Presented, ...]:
    try:
        return tuple(Presented(der) for der in _chain(host, port, starttls, timeout, addresses))
    except Exception as e:  # ldap3's own exceptions (the directory layer's business) said as an outage
        if isinstance(e, (OSError, ssl.SSLError)):
            raise
        raise DirectoryUnavailable(str(e)) from None


def _say(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "is closed (connection refused)"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "did not answer (timed out)"
    return f"failed: {error}"
