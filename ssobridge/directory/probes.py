"""Raw probes for `ssobridge check`: one server at a time, plain results, the wording left to the caller."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from ldap3 import BASE, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException

from ..config import DirectorySettings
from .connections import Connector, DirectoryUnavailable, describe_result


def service_bind_problem(settings: DirectorySettings) -> str | None:
    """None when the first server's TLS handshake and the service-account bind work; else the error."""
    try:
        connection = Connector(settings).open(bind_as_service=True)
    except DirectoryUnavailable as e:
        return str(e)
    connection.unbind()
    return None


@dataclass(frozen=True)
class SearchProbe:
    base_problem: str | None = None  # why base_dn cannot be read, when it cannot
    filter_problem: str | None = None  # why the filter is not a valid LDAP filter, when it is not
    example_dn: str | None = None  # an entry the filter matches (None: it matches nothing)


def probe_searches(settings: DirectorySettings, user_filter: str) -> SearchProbe:
    """As the service account: can base_dn be read, and does `user_filter` match anything under it?
    DirectoryUnavailable when no server answers."""
    connection = Connector(settings).open(bind_as_service=True)
    try:
        if not connection.search(settings.base_dn, "(objectClass=*)", BASE, attributes=["1.1"]):
            return SearchProbe(base_problem=describe_result(connection.result))
        try:
            connection.search(settings.base_dn, user_filter, SUBTREE, attributes=["1.1"], size_limit=3)
        except LDAPException as e:
            return SearchProbe(filter_problem=str(e))
        found = [r for r in connection.response or () if r.get("type") == "searchResEntry"]
        return SearchProbe(example_dn=found[0]["dn"] if found else None)
    finally:
        connection.unbind()


def peer_certificate(settings: DirectorySettings) -> bytes:
    """The DER certificate the first server presents, fetched without validating it (to show what is wrong).
    DirectoryUnavailable when it cannot be fetched."""
    url = urlsplit(settings.urls[0])
    use_ssl = url.scheme == "ldaps"
    server = Server(url.hostname, port=url.port or (636 if use_ssl else 389), use_ssl=use_ssl,
                    tls=Tls(validate=ssl.CERT_NONE), get_info=NONE, connect_timeout=settings.connect_timeout)
    try:
        connection = Connection(server, receive_timeout=max(1, int(settings.timeout)))
        connection.open(read_server_info=False)
        if not use_ssl:
            connection.start_tls(read_server_info=False)
        der = connection.socket.getpeercert(binary_form=True)
        connection.unbind()
    except (LDAPException, OSError) as e:
        raise DirectoryUnavailable(str(e)) from e
    return der
