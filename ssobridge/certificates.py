"""When certificates expire: ssobridge's own ([server] tls_cert) and each directory server's.

A directory server's date is read by the directory layer from the handshake of a TLS connection it opens
anyway (Connector.certificate_expiry), so knowing it costs nothing. `ssobridge check` prints each date and
warns WARN_DAYS ahead; certificate_expiries() gives the dates by source, for a metric.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

from cryptography import x509

from .directory import DirectorySet

WARN_DAYS = 30  # `check` warns when fewer days than this are left
SERVER_SOURCE = "server"  # certificate_expiries' key for [server] tls_cert


def server_certificate_expiry(tls_cert: str) -> float:
    """notAfter (Unix time) of the first certificate in the PEM file: the server's own, before its chain.
    OSError or ValueError when the file cannot be read as PEM."""
    certificate = x509.load_pem_x509_certificates(Path(tls_cert).read_bytes())[0]
    return certificate.not_valid_after_utc.timestamp()


def pinned_certificate(ca_file: str) -> x509.Certificate | None:
    """The server's own certificate when ca_file holds no CA certificate (the DC's certificate pinned, as
    `ssobridge init` does when a DC presents no CA): trusted as itself, so its renewal needs a new ca_file."""
    try:
        certificates = x509.load_pem_x509_certificates(Path(ca_file).read_bytes())
    except (OSError, ValueError):
        return None
    for certificate in certificates:
        try:
            if certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                return None
        except x509.ExtensionNotFound:
            pass
    return certificates[0]


def certificate_expiries(directories: DirectorySet, tls_cert: str | None = None) -> dict[str, float]:
    """{source: notAfter (Unix time)}: "directory:<name>:<url>" for each server a TLS connection was opened to,
    "server" for tls_cert (left out when it cannot be read: serve would not have started)."""
    expiries = directories.certificate_expiries()
    if tls_cert:
        try:
            expiries[SERVER_SOURCE] = server_certificate_expiry(tls_cert)
        except (OSError, ValueError):
            pass
    return expiries


def expiry_line(what: str, expires: float, now: float) -> str:
    """One line for `check`: the date and the days left; WARNING within WARN_DAYS, PROBLEM once expired."""
    date = f"{datetime.fromtimestamp(expires, timezone.utc):%Y-%m-%d}"
    if expires <= now:
        return f"PROBLEM: {what} expired on {date}: renew it"
    days = math.floor((expires - now) / 86400)
    left = f"{days} day{'' if days == 1 else 's'} left"
    if days < WARN_DAYS:
        return f"WARNING: {what} expires on {date} ({left}): renew it"
    return f"{what} valid until {date} ({left})"


def server_certificate_line(tls_cert: str, now: float) -> str:
    what = f"HTTPS certificate (tls_cert) {tls_cert}"
    try:
        return expiry_line(what, server_certificate_expiry(tls_cert), now)
    except (OSError, ValueError) as e:
        return f"PROBLEM: {what} cannot be read as PEM: {e}"
