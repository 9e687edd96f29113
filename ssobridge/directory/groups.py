"""Group membership: all groups of a user, nested ones included, and names for them.

Active Directory: tokenGroups on the user entry (one BASE search) gives every group SID, transitively,
the primary group included; SIDs are turned into names through a long-lived cache. OpenLDAP:
groupOfNames, groupOfUniqueNames and posixGroup, nesting expanded here one level per search (the
memberOf overlay is not transitive, and the AD in-chain rule silently matches nothing there).
Groups are never found by listing their members: groups have thousands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# DN attribute values: RFC 4514 escapes are a backslash and a character, or a backslash and two hex digits.
_DN_ESCAPE = re.compile(r"\\([0-9a-fA-F]{2}|.)")

# Nesting deeper than this is a loop or a mistake; the expansion stops there.
MAX_NESTING = 16


@dataclass(frozen=True)
class Group:
    dn: str  # "" for a group known only by its SID (builtin or from another domain)
    names: tuple[str, ...]  # AD: sAMAccountName and cn; OpenLDAP: cn
    sid: str = ""  # AD: S-1-5-...

    @property
    def name(self) -> str:
        return self.names[0] if self.names else self.sid

    @property
    def display_name(self) -> str:
        """For people: the cn (on AD, sAMAccountName comes first in `names`)."""
        return self.names[-1] if self.names else self.sid

    def is_named(self, wanted: str) -> bool:
        """Whether a group named in the config (by DN, by name or on AD by SID) is this one, case-insensitively."""
        wanted = wanted.strip()
        if wanted.upper().startswith("S-1-"):
            return wanted.upper() == self.sid.upper()
        if "=" in wanted:
            return bool(self.dn) and normalize_dn(wanted) == normalize_dn(self.dn)
        return any(wanted.lower() == name.lower() for name in self.names)


def normalize_dn(dn: str) -> tuple[tuple[str, str], ...]:
    """A DN compared as data, not as text: 'CN=Doe\\, J,OU=x' equals 'cn=doe\\2c j, ou=X'."""
    rdns = []
    for part in split_unescaped(dn, ","):
        attribute, _, value = part.partition("=")
        rdns.append((attribute.strip().lower(), unescape_dn_value(value.strip()).lower()))
    return tuple(rdns)


def split_unescaped(text: str, separator: str) -> list[str]:
    parts, current, escaped = [], [], False
    for character in text:
        if escaped:
            current.append(character)
            escaped = False
        elif character == "\\":
            current.append(character)
            escaped = True
        elif character == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(character)
    parts.append("".join(current))
    return parts


def unescape_dn_value(value: str) -> str:
    raw = bytearray()
    position = 0
    for match in _DN_ESCAPE.finditer(value):
        raw += value[position:match.start()].encode("utf-8")
        escape = match.group(1)
        raw += bytes([int(escape, 16)]) if len(escape) == 2 else escape.encode("utf-8")
        position = match.end()
    raw += value[position:].encode("utf-8")
    return raw.decode("utf-8", errors="replace")


def sid_filter_value(sid: bytes) -> str:
    """A binary objectSid as an RFC 4515 filter value: every byte escaped."""
    return "".join(f"\\{byte:02x}" for byte in sid)
