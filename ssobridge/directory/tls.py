"""TLS to a directory server: OpenSSL checks the chain AND the server's name during the handshake.

ldap3 2.9.1 switches its SSLContext's check_hostname off and compares the name itself after the handshake,
with ssl.match_hostname where Python still has it and otherwise (3.12+) with its own copy, which ignores
IP-address subjectAltNames: `ldaps://10.0.0.5` was refused on 3.12+ although the certificate names
10.0.0.5. Here the handshake is given the URL's host (a name, or an address, which Python checks against
the IP SANs and sends no SNI for) with check_hostname on: one check, the same on every Python.

The context is built once per directory (Connector), not per connection: loading ca_file is the costly part.
"""

from __future__ import annotations

import socket
import ssl

from cryptography import x509
from cryptography.x509.oid import ExtensionOID
from ldap3 import NONE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException

from .discovery import ResolvedServer

# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH
_NAME_MISMATCH = {62, 64}
NAME_MISMATCH_TEXT = "TLS certificate does not match the server name in the URL"


class CertificateNameMismatch(ssl.SSLError):
    """The chain is trusted, but the certificate is not for the host in the URL. One argument, the text:
    ldap3 re-raises an open error as type(e)(str(e))."""

    @classmethod
    def of(cls, host: str, names: list[str] | None) -> CertificateNameMismatch:
        listed = ", ".join(names) if names else ("none" if names is not None else "(could not be read)")
        return cls(f"{NAME_MISMATCH_TEXT} ({host}); the certificate names: {listed}")


def verifying_context(ca_file: str | None) -> ssl.SSLContext:
    """Chain verified against ca_file (the system's CAs when None), the name checked. Partial chains, as
    Python 3.13 allows by default: a ca_file holding the server's own certificate (pinned, when the DC
    presents no CA) is a trust anchor on 3.11 and 3.12 too."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


class VerifiedTls(Tls):
    """ldap3's Tls with the handshake done by `context` for `host`, and no check of ldap3's own after it."""

    def __init__(self, context: ssl.SSLContext, host: str):
        super().__init__(validate=ssl.CERT_REQUIRED)
        self.context = context
        self.host = host

    def wrap_socket(self, connection: Connection, do_handshake: bool = False) -> None:
        try:
            connection.socket = self.context.wrap_socket(connection.socket, server_side=False,
                                                         do_handshake_on_connect=do_handshake,
                                                         server_hostname=self.host)
        except ssl.SSLCertVerificationError as e:
            if e.verify_code not in _NAME_MISMATCH:
                raise
            server = connection.server
            raise CertificateNameMismatch.of(self.host, certificate_names(
                server.host, server.port, starttls=not server.ssl, timeout=connection.receive_timeout or 5)) from None


def certificate_names(host: str, port: int, starttls: bool, timeout: float) -> list[str] | None:
    """The subjectAltNames of the certificate `host` presents (fetched without verifying it, to say what
    it names); [] when it has none, None when it cannot be fetched."""
    try:
        der = presented_certificate(host, port, starttls, timeout)
    except (LDAPException, OSError):
        return None
    try:
        names = x509.load_der_x509_certificate(der).extensions.get_extension_for_oid(
            ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [str(name.value) for name in names]


def presented_certificate(host: str, port: int, starttls: bool, timeout: float) -> bytes:
    """The DER certificate the server presents, over LDAPS or after StartTLS, NOT verified: only to show it."""
    return presented_chain(host, port, starttls, timeout)[0]


def presented_chain(host: str, port: int, starttls: bool, timeout: float, addresses: tuple[str, ...] = ()
                    ) -> list[bytes]:
    """The DER certificates the server presents (its own first), NOT verified: to show them before any is
    trusted. `addresses`: where `host` is (else the system resolves it); the host is the TLS name (SNI)."""
    if not starttls:
        with socket.create_connection((addresses[0] if addresses else host, port), timeout=timeout) as raw, \
                _unverified().wrap_socket(raw, server_hostname=host if addresses else None) as wrapped:
            return unverified_chain(wrapped)
    options = dict(port=port, use_ssl=False, tls=Tls(validate=ssl.CERT_NONE), get_info=NONE, connect_timeout=timeout)
    server = ResolvedServer(host, addresses, **options) if addresses else Server(host, **options)
    connection = Connection(server, receive_timeout=max(1, int(timeout)))
    try:
        connection.open(read_server_info=False)
        if not connection.start_tls(read_server_info=False):
            raise OSError(f"the server refused StartTLS ({connection.result.get('description')})")
        return unverified_chain(connection.socket)
    finally:
        connection.unbind()


def unverified_chain(wrapped: ssl.SSLSocket) -> list[bytes]:
    """The chain as the server sent it: Python 3.13's get_unverified_chain(); on 3.11 and 3.12 the same OpenSSL
    call (SSL_get_peer_cert_chain) through the ssl module's _sslobj.get_unverified_chain(), which 3.10 added
    and 3.13 made public; where neither exists, the server's own certificate alone."""
    if hasattr(wrapped, "get_unverified_chain"):  # 3.13: DER bytes
        return list(wrapped.get_unverified_chain())
    chain = getattr(wrapped._sslobj, "get_unverified_chain", lambda: None)()  # 3.10-3.12: _ssl.Certificate
    if chain:
        return [c.public_bytes(ssl._ssl.ENCODING_DER) for c in chain]
    return [wrapped.getpeercert(binary_form=True)]


def _unverified() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
