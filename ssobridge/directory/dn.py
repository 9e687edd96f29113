"""DNs as data (RFC 4514), split by ldap3's parse_dn: compared, cut, and made into one key per entry.

parse_dn gives each attribute=value as written, escapes kept ("CN=Doe\\, John" stays one value); unescape_value
turns a value into its text (ldap3 has no unescaping function for DN values, so this one is ours). What
operators type is read as parse_dn reads it leniently (spaces around "," and "=", an unescaped quote, a comma
followed by no attribute=); a text it refuses even so names no entry: None here.
"""

from __future__ import annotations

import functools
import re

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import escape_rdn, parse_dn

# RFC 4514 escapes in a value: a backslash and two hex digits (one byte of UTF-8), or a backslash and a character.
_ESCAPE = re.compile(r"\\([0-9a-fA-F]{2}|.)")

Ava = tuple[str, str, str]  # (attribute, value as written, the separator after it: "," or "+", "" at the end)


@functools.lru_cache(maxsize=4096)  # the same DNs again and again: the people signing in, their groups
def avas(dn: str) -> tuple[Ava, ...] | None:
    """Each attribute=value of the DN in order; None when it is not a DN. Strict first (RFC 4514, as directories
    write DNs: a value ending in an escaped space keeps it), then leniently, with the values escaped by parse_dn."""
    for lenient in (False, True):
        try:
            return tuple(parse_dn(dn, escape=lenient, strip=lenient))
        except LDAPInvalidDnError:
            continue
    return None


def unescape_value(value: str) -> str:
    """A value as parse_dn gives it, as text: "Doe\\, John" and "Doe\\2c John" are both "Doe, John"."""
    raw = bytearray()
    position = 0
    for match in _ESCAPE.finditer(value):
        raw += value[position:match.start()].encode("utf-8")
        escape = match.group(1)
        raw += bytes([int(escape, 16)]) if len(escape) == 2 else escape.encode("utf-8")
        position = match.end()
    raw += value[position:].encode("utf-8")
    return raw.decode("utf-8", errors="replace")


@functools.lru_cache(maxsize=4096)  # the rules' group DNs and the groups' own, compared on every request
def normalize_dn(dn: str) -> tuple[tuple[str, str, str], ...] | None:
    """A DN compared as data, not as text: 'CN=Doe\\, J,OU=x' equals 'cn=doe\\2c j, ou=X'; None for no DN."""
    parts = avas(dn)
    if parts is None:
        return None
    return tuple((attribute.lower(), unescape_value(value).lower(), separator) for attribute, value, separator in parts)


@functools.lru_cache(maxsize=4096)  # the lockout key of every login
def dn_key(dn: str) -> str | None:
    """One text for one entry however its DN is written (case, spaces after commas, "\\," or "\\2c"): the
    values unescaped and escaped again one way; None for no DN."""
    parts = avas(dn)
    if parts is None:
        return None
    return "".join(f"{attribute}={escape_rdn(unescape_value(value))}{separator}"
                   for attribute, value, separator in parts).casefold()


def parent_dn(dn: str) -> str | None:
    """The DN without its first RDN, as written ("" for a DN of one RDN); None for no DN."""
    parts = avas(dn)
    if parts is None:
        return None
    first_end = next(index for index, (_, _, separator) in enumerate(parts) if separator != "+")
    return "".join(f"{attribute}={value}{separator}" for attribute, value, separator in parts[first_end + 1:])


def first_value(dn: str) -> str | None:
    """The text of the first RDN's value ("Doe, John" of "CN=Doe\\, John,OU=People"); None for no DN."""
    parts = avas(dn)
    return unescape_value(parts[0][1]) if parts else None


def naming_context(dn: str) -> str:
    """The trailing DC= part of a DN, as written ("DC=example,DC=test"); "" when it has none (or is no DN)."""
    tail: list[str] = []
    for attribute, value, _ in reversed(avas(dn) or ()):
        if attribute.upper() != "DC":
            break
        tail.insert(0, f"{attribute}={value}")
    return ",".join(tail)
