"""What a directory fixture hands to a test: plain frozen objects, plus a few raw-ldap3 helpers.

Every directory fixture (`samba_ad`, `samba_ad_second_dc`, `samba_ad_other`, `openldap`) returns a
`DirectoryFixture`; its `users` map a key (the same keys for samba_ad and openldap where the state exists in
both) to a `DirectoryUser`. Process control and account
actions (lock, unlock, stop, start) are delegated to the object that owns the server, so the fixture
itself stays a value.

The helpers talk raw ldap3 on purpose: they prove what the directories do, independently of the
product's directory layer.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Protocol

import ldap3
from ldap3.operation.bind import AuthenticationChoice, BindRequest, Simple, Version

from ssobridge.directory.tls import VerifiedTls, verifying_context

PPOLICY_OID = "1.3.6.1.4.1.42.2.27.8.5.1"
PPOLICY_REQUEST = (PPOLICY_OID, False, None)  # an ldap3 control tuple: (oid, criticality, value)

# draft-behera-ldap-password-policy, PasswordPolicyResponseValue
PPOLICY_ERRORS = ("passwordExpired", "accountLocked", "changeAfterReset", "passwordModNotAllowed",
                  "mustSupplyOldPassword", "insufficientPasswordQuality", "passwordTooShort",
                  "passwordTooYoung", "passwordInHistory")
PPOLICY_WARNINGS = ("timeBeforeExpiration", "graceAuthNsRemaining")


class AccountState:
    """The state a user is in when the session starts (DirectoryUser.state)."""

    OK = "ok"
    DISABLED = "disabled"  # AD: userAccountControl 514 (sub-code 533); OpenLDAP: pwdAccountLockedTime 000001010000Z
    MUST_CHANGE = "must_change"  # AD: pwdLastSet=0 (773); OpenLDAP: pwdReset TRUE (changeAfterReset)
    ACCOUNT_EXPIRED = "account_expired"  # AD only: accountExpires in the past (701)
    PASSWORD_EXPIRED = "password_expired"  # AD: pwdLastSet 100 days ago (532); OpenLDAP: pwdMaxAge exceeded
    #                                          (bind 49 + passwordExpired)
    LOCKABLE = "lockable"  # OK until a test calls lock_out(); the only user meant to be locked


@dataclass(frozen=True)
class DirectoryUser:
    key: str  # the key in DirectoryFixture.users
    login: str  # what a person types: sAMAccountName (AD) or uid (OpenLDAP)
    password: str  # the right password; may contain characters SASLprep changes (see password_bytes)
    dn: str  # as the server spells it (RFC 4514 escaping included)
    cn: str
    upn: str | None  # userPrincipalName (AD only)
    mail: str | None
    display_name: str | None
    state: str  # an AccountState value
    # givenName, sn, department, title, telephoneNumber, named as in AD for both directories (OpenLDAP
    # stores department as departmentNumber); absent when the person has none.
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def password_bytes(self) -> bytes:
        """The password as the directory stores it: ldap3 sends bytes unchanged (no SASLprep)."""
        return self.password.encode("utf-8")


class DirectoryControl(Protocol):
    """What owns a running directory server: account actions and process control."""

    def lock_out(self, user: DirectoryUser) -> None: ...

    def unlock(self, user: DirectoryUser) -> None: ...

    def stop(self) -> None: ...

    def start(self) -> None: ...


@dataclass(frozen=True)
class DirectoryFixture:
    kind: str  # "ad" or "openldap"
    host: str  # an IP address: the server certificate names it, and no DNS is needed
    ldap_port: int
    ldaps_port: int
    ca_file: Path  # OUR test CA, which signed the server certificate
    wrong_ca_file: Path  # an unrelated CA: verification with it must fail
    base_dn: str
    users_dn: str  # the container of all `users`
    admin_dn: str  # may write anything (AD: Administrator; OpenLDAP: the rootdn)
    admin_password: str
    service_dn: str  # the bridge's own bind account: read-only on users
    service_password: str
    users: Mapping[str, DirectoryUser]
    groups: Mapping[str, str]  # key -> DN; nested: groups["staff"] contains groups["sales"]
    lockout_threshold: int  # wrong passwords that lock the LOCKABLE user
    control: DirectoryControl = field(repr=False, compare=False)
    netbios_domain: str | None = None  # AD: "EXAMPLE" (for EXAMPLE\login)
    upn_suffix: str | None = None  # AD: "example.test"
    realm: str | None = None  # AD: "EXAMPLE.TEST"
    host_not_in_certificate: str | None = None  # OpenLDAP: the same LDAPS port, on an address the
    #                                            certificate does not name: the hostname check must fail

    @property
    def ldap_url(self) -> str:
        return f"ldap://{self.host}:{self.ldap_port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.host}:{self.ldaps_port}"

    def lock_out(self, user: DirectoryUser) -> None:
        """Lock the account with real failed binds; asserts that the directory reports it locked."""
        self.control.lock_out(user)

    def unlock(self, user: DirectoryUser) -> None:
        self.control.unlock(user)

    def stop(self) -> None:
        """Stop the server (an outage); `start()` brings it back with the same data."""
        self.control.stop()

    def start(self) -> None:
        self.control.start()

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """The server is down inside the block and up again after it, even if the block fails."""
        self.stop()
        try:
            yield
        finally:
            self.start()


# --- raw ldap3 helpers ------------------------------------------------------------------------------

def tls_settings(ca_file: Path, host: str) -> ldap3.Tls:
    """ssobridge's own TLS: OpenSSL checks the chain and `host` (a name or an address) in the handshake."""
    return VerifiedTls(verifying_context(str(ca_file)), host)


def connect(directory: DirectoryFixture, user: str | None = None, password: str | bytes | None = None,
            use_ssl: bool = True, **connection_options) -> ldap3.Connection:
    """An opened (not yet bound) ldap3 connection; bind it yourself to see the bind result."""
    port = directory.ldaps_port if use_ssl else directory.ldap_port
    tls = tls_settings(directory.ca_file, directory.host)
    server = ldap3.Server(directory.host, port=port, use_ssl=use_ssl, tls=tls,
                          get_info=ldap3.NONE, connect_timeout=5)
    connection = ldap3.Connection(server, user=user, password=password, receive_timeout=10,
                                  **connection_options)
    connection.open()
    # ldap3 otherwise waits ~40 ms (Nagle) after each TLS handshake.
    connection.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def bind_result(directory: DirectoryFixture, name: str, password: str | bytes, controls=None) -> dict:
    """ldap3's result dict of one simple bind over LDAPS (bind response controls under 'controls')."""
    connection = connect(directory, name, password)
    try:
        connection.bind(controls=controls)
        return connection.result
    finally:
        connection.unbind()


@contextlib.contextmanager
def bound(directory: DirectoryFixture, name: str, password: str | bytes) -> Iterator[ldap3.Connection]:
    connection = connect(directory, name, password)
    try:
        if not connection.bind():
            raise AssertionError(f"bind as {name} failed: {connection.result}")
        yield connection
    finally:
        connection.unbind()


def empty_password_bind_result(directory: DirectoryFixture, dn: str) -> dict:
    """A simple bind with a DN and an EMPTY password (RFC 4513 "unauthenticated bind"), which ldap3
    refuses to send itself; servers that allow it treat it as anonymous and answer success."""
    connection = connect(directory)
    try:
        request = BindRequest()
        request["version"] = Version(3)
        request["name"] = dn
        request["authentication"] = AuthenticationChoice().setComponentByName("simple", Simple(""))
        connection.post_send_single_response(connection.send("bindRequest", request))
        return dict(connection.result, who_am_i=connection.extend.standard.who_am_i()
                    if connection.result["result"] == 0 else None)
    finally:
        connection.unbind()


def ppolicy_response(result: dict) -> dict | None:
    """The decoded password policy response control of a bind result, or None if the server sent none.

    ldap3 2.9.1 leaves this control's value undecoded (raw BER bytes), so it is decoded here:
    {"warning": None | (name, number), "error": None | name}.
    """
    control = (result.get("controls") or {}).get(PPOLICY_OID)
    if control is None:
        return None
    return decode_ppolicy_value(control["value"] or b"")


def decode_ppolicy_value(value: bytes) -> dict:
    """PasswordPolicyResponseValue ::= SEQUENCE {
        warning [0] CHOICE { timeBeforeExpiration [0] INTEGER, graceAuthNsRemaining [1] INTEGER } OPTIONAL,
        error   [1] ENUMERATED { passwordExpired (0), accountLocked (1), changeAfterReset (2), ... } OPTIONAL }
    """
    decoded = {"warning": None, "error": None}
    for tag, content in _ber_elements(_ber_elements(value)[0][1] if value else b""):
        if tag == 0xA0:  # warning: [0] constructed, holding [0] or [1] INTEGER
            warning_tag, number = _ber_elements(content)[0]
            decoded["warning"] = (PPOLICY_WARNINGS[warning_tag & 0x1F], int.from_bytes(number, "big"))
        elif tag == 0x81:  # error: [1] primitive ENUMERATED
            decoded["error"] = PPOLICY_ERRORS[int.from_bytes(content, "big")]
    return decoded


def _ber_elements(data: bytes) -> list[tuple[int, bytes]]:
    """Split BER into (tag, content) pairs; enough for the short definite lengths of this control."""
    elements, position = [], 0
    while position < len(data):
        tag, length = data[position], data[position + 1]
        position += 2
        if length & 0x80:
            size = length & 0x7F
            length = int.from_bytes(data[position:position + size], "big")
            position += size
        elements.append((tag, data[position:position + length]))
        position += length
    return elements
