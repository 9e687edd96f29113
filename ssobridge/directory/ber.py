"""A login's search and bind on the wire, encoded here: RFC 4511 SearchRequest (with RFC 4515 filters)
and simple BindRequest (with controls) in BER.

ldap3 builds each request as pyasn1 objects and encodes them: about 0.3 ms of CPU per login search
(measured: 0.19 ms to build, 0.09 ms to encode), a sixth of an Authenticate, and less for a bind.
Writing the bytes directly costs a few microseconds. Only the sending changes: ldap3 still reads and
decodes the answer (post_send_search, post_send_single_response), so connection.result, response and
bound are what they were.

A filter this parser does not take (spaces between parts, an escape that is not two hex digits, an empty
substring part) is searched through ldap3 as before: search() returns False. The bytes are the ones
ldap3 sends (tests/unit/test_ber.py compares them for a table of filters).

The one module that writes another library's private attributes: ldap3's connection._entries, _deferred_bind,
_bind_controls and strategy._outstanding, as ldap3's own send() and search() set them (tests/unit/test_layout.py
allows it here only). ldap3's public path costs ~0.5 ms more CPU per login (bench/ber_or_ldap3.py), so
ldap3 is pinned to 2.9.1, the release this was written against, and tests/test_ber_ldap3_state.py fails loudly
if that private state changes shape.
"""

from __future__ import annotations

import re
import socket

from ldap3 import BASE, LEVEL, SIMPLE, SUBTREE, SYNC
from ldap3.core.exceptions import LDAPSocketSendError, communication_exception_factory

SCOPES = {BASE: 0, LEVEL: 1, SUBTREE: 2}
DEREF_ALWAYS = 3  # ldap3's default for Connection.search
_ATTRIBUTE = re.compile(r"[A-Za-z0-9][A-Za-z0-9;.\-]*\Z")
_ESCAPE = re.compile(r"\\([0-9A-Fa-f]{2})")


class Unsupported(ValueError):
    """A filter this encoder leaves to ldap3."""


def search(connection, base: str, scope: str, search_filter: str, attributes: list[str], size_limit: int,
           time_limit: int) -> bool:
    """Send the search on `connection` and read its answer as Connection.search does; False (nothing
    sent) when the filter is not one this module encodes or the connection is not open."""
    if not _plain_sync(connection):
        return False
    try:
        filter_ber = encode_filter(search_filter)
    except Unsupported:
        return False
    with connection.connection_lock:
        if not connection.listening or connection.sasl_in_progress:
            return False  # ldap3's own path says what is wrong
        message_id = connection.server.next_message_id()
        request = {"type": "searchRequest", "base": base, "scope": SCOPES[scope], "dereferenceAlias": DEREF_ALWAYS,
                   "sizeLimit": size_limit, "timeLimit": time_limit, "typesOnly": False, "filter": search_filter,
                   "attributes": list(attributes)}
        _send(connection, message_id, request, search_request(request, filter_ber))
        connection.post_send_search(message_id)
        connection._entries = []
    return True


def simple_bind(connection, controls: list | None) -> bool | None:
    """Connection.bind for a SIMPLE bind as connection.user with connection.password: whether it is
    bound now; None (nothing sent) when this is not such a bind on an open synchronous connection."""
    strategy = connection.strategy
    if connection.authentication != SIMPLE or not _plain_sync(connection):
        return None
    with connection.connection_lock:
        if connection.closed or not connection.listening or connection.sasl_in_progress:
            return None  # ldap3's own path opens it or says what is wrong
        password = connection.password
        password = password.encode("utf-8") if isinstance(password, str) else bytes(password or b"")
        connection.last_error = None
        connection._deferred_bind, connection._bind_controls = False, None
        message_id = connection.server.next_message_id()
        # What ldap3 keeps of a bind request (bind_request_to_dict), the password left out.
        request = {"type": "bindRequest", "version": 3, "name": connection.user or "",
                   "authentication": {"simple": "<stripped>", "sasl": None}}
        _send(connection, message_id, request, bind_request(connection.user or "", password, controls))
        strategy.post_send_single_response(message_id)
        result = connection.result
        connection.bound = bool(result) and result["result"] == 0
        if not connection.bound and result and result["description"] and not connection.last_error:
            connection.last_error = result["description"]
        connection._entries = []
        return connection.bound


def _plain_sync(connection) -> bool:
    """A SYNC connection to a real server (not the demo's MOCK_SYNC), neither lazy nor pooled: the only
    kind whose sending this module replaces."""
    strategy = connection.strategy
    return (connection.strategy_type == SYNC and not getattr(strategy, "no_real_dsa", False)
            and not connection.lazy and strategy.sync and not strategy.pooled)


def bind_request(name: str, password: bytes, controls: list | None) -> bytes:
    """[APPLICATION 0] BindRequest, LDAP v3, simple, then the message's controls."""
    return _tlv(0x60, _integer(0x02, 3) + _octets(name.encode("utf-8")) + _tlv(0x80, password)) \
        + encode_controls(controls)


def encode_controls(controls: list | None) -> bytes:
    """[0] Controls of ldap3's (oid, criticality, value) tuples; nothing for none."""
    if not controls:
        return b""
    encoded = []
    for oid, critical, value in controls:
        content = _octets(oid.encode("ascii")) + (b"\x01\x01\x01" if critical else b"")  # FALSE is the DEFAULT
        if value is not None:
            content += _octets(value if isinstance(value, bytes) else str(value).encode("utf-8"))
        encoded.append(_tlv(0x30, content))
    return _tlv(0xA0, b"".join(encoded))


def _send(connection, message_id: int, request: dict, operation: bytes) -> None:
    """As ldap3's send() and sending() do, with the operation already encoded."""
    message = _tlv(0x30, _integer(0x02, message_id) + operation)
    connection.request = request
    connection.strategy._outstanding[message_id] = request
    try:
        connection.socket.sendall(message)
    except socket.error as e:
        connection.last_error = "socket sending error" + str(e)
        raise communication_exception_factory(LDAPSocketSendError, type(e)(str(e)))(connection.last_error)
    if connection.usage:
        connection._usage.update_transmitted_message(request, len(message))


def search_request(request: dict, filter_ber: bytes) -> bytes:
    """[APPLICATION 3] SearchRequest of a request dict (ldap3's own form of it)."""
    return _tlv(0x63, b"".join((
        _octets(request["base"].encode("utf-8")),
        _integer(0x0A, request["scope"]),
        _integer(0x0A, request["dereferenceAlias"]),
        _integer(0x02, request["sizeLimit"]),
        _integer(0x02, request["timeLimit"]),
        b"\x01\x01\x01" if request["typesOnly"] else b"\x01\x01\x00",
        filter_ber,
        _tlv(0x30, b"".join(_octets(name.encode("utf-8")) for name in request["attributes"])),
    )))


def encode_filter(text: str) -> bytes:
    encoded, end = _filter(text, 0)
    if end != len(text):
        raise Unsupported(text)
    return encoded


def _filter(text: str, i: int) -> tuple[bytes, int]:
    if not text.startswith("(", i) or i + 1 >= len(text):
        raise Unsupported(text)
    kind = text[i + 1]
    if kind in "&|":
        parts, i = [], i + 2
        while text.startswith("(", i):
            part, i = _filter(text, i)
            parts.append(part)
        if not parts or not text.startswith(")", i):
            raise Unsupported(text)
        return _tlv(0xA0 if kind == "&" else 0xA1, b"".join(parts)), i + 1
    if kind == "!":
        inner, i = _filter(text, i + 2)
        if not text.startswith(")", i):
            raise Unsupported(text)
        return _tlv(0xA2, inner), i + 1
    end = text.find(")", i)  # a ")" in a value is escaped (\29): the first one ends the item
    if end < 0:
        raise Unsupported(text)
    return _item(text[i + 1:end]), end + 1


def _item(item: str) -> bytes:
    attribute, equals, value = item.partition("=")
    if not equals or "(" in value:
        raise Unsupported(item)
    if attribute.endswith(":"):
        return _extensible(attribute[:-1], value)
    tag = {"~": 0xA8, ">": 0xA5, "<": 0xA6}.get(attribute[-1:])
    if tag is not None:
        attribute = attribute[:-1]
    name = _attribute(attribute)
    if tag is None and value == "*":
        return _tlv(0x87, name)
    if tag is None and "*" in value:
        pieces = value.split("*")
        if any(piece == "" for piece in pieces[1:-1]):
            raise Unsupported(item)
        parts = [_tlv(0x80, _value(pieces[0]))] if pieces[0] else []
        parts += [_tlv(0x81, _value(piece)) for piece in pieces[1:-1]]
        parts += [_tlv(0x82, _value(pieces[-1]))] if pieces[-1] else []
        return _tlv(0xA4, _octets(name) + _tlv(0x30, b"".join(parts)))
    return _tlv(tag or 0xA3, _octets(name) + _octets(_value(value)))


def _extensible(left: str, value: str) -> bytes:
    """attr[:dn][:rule]:=value, or [:dn]:rule:=value: matchingRule [1], type [2], matchValue [3], dnAttributes [4]."""
    attribute, *options = left.split(":")
    dn = bool(options) and options[0].lower() == "dn"
    rules = options[1:] if dn else options
    if len(rules) > 1 or (not attribute and not rules) or "*" in value:
        raise Unsupported(left)
    content = _tlv(0x81, rules[0].encode("ascii")) if rules and rules[0] else b""
    if rules and not rules[0]:
        raise Unsupported(left)
    if attribute:
        content += _tlv(0x82, _attribute(attribute))
    content += _tlv(0x83, _value(value))
    if dn:
        content += b"\x84\x01\x01"
    return _tlv(0xA9, content)


def _attribute(name: str) -> bytes:
    if not _ATTRIBUTE.match(name):
        raise Unsupported(name)
    return name.encode("ascii")


def _value(text: str) -> bytes:
    """An RFC 4515 value: \\XX escapes are bytes, the rest UTF-8; a lone backslash is left to ldap3."""
    if "\\" not in text:
        return text.encode("utf-8")
    pieces, last = [], 0
    for match in _ESCAPE.finditer(text):
        pieces.append(text[last:match.start()].encode("utf-8"))
        pieces.append(bytes.fromhex(match.group(1)))
        last = match.end()
    pieces.append(text[last:].encode("utf-8"))
    if b"\\" in b"".join(pieces[::2]):
        raise Unsupported(text)
    return b"".join(pieces)


def _integer(tag: int, number: int) -> bytes:
    return _tlv(tag, number.to_bytes(max(1, (number.bit_length() + 8) // 8), "big", signed=True))


def _octets(data: bytes) -> bytes:
    return _tlv(0x04, data)


def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content
