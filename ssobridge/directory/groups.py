"""Group membership: all groups of a user, nested ones included, and names for them.

Active Directory: tokenGroups on the user entry (one BASE search) gives every group SID, transitively,
the primary group included; SIDs are turned into names through a long-lived cache. OpenLDAP:
groupOfNames, groupOfUniqueNames and posixGroup, nesting expanded here one level per search (the
memberOf overlay is not transitive, and the AD in-chain rule silently matches nothing there).
Groups are never found by listing their members: groups have thousands.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

from cachetools import TTLCache
from ldap3 import BASE, SUBTREE
from ldap3.utils.conv import escape_filter_chars

from .dn import normalize_dn
from .entries import UserEntry, render_sid

# (base, scope, filter, attributes) -> entries, as the service account; see flavour.Search.
Search = Callable[..., list[UserEntry]]

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
            dn = normalize_dn(wanted)  # None for a DN that is none (it names no group)
            return dn is not None and bool(self.dn) and dn == normalize_dn(self.dn)
        return any(wanted.lower() == name.lower() for name in self.names)


def sid_filter_value(sid: bytes) -> str:
    """A binary objectSid as an RFC 4515 filter value: every byte escaped."""
    return "".join(f"\\{byte:02x}" for byte in sid)


class TokenGroups:
    """Active Directory: a user's groups from tokenGroups, SIDs named through a long-lived cache. Filled by hand,
    not by cachedmethod: one search names up to 100 unknown SIDs at once."""

    def __init__(self, search: Search, base: str, cache_seconds: float):
        self._search = search
        self._base = base
        self._names: TTLCache = TTLCache(maxsize=100_000, ttl=cache_seconds)
        self._lock = threading.Lock()

    def of(self, entry: UserEntry) -> frozenset[Group]:
        found = self._search(entry.dn, BASE, "(objectClass=*)", ["tokenGroups"])
        sids = found[0].attributes.get("tokengroups", ()) if found else ()
        with self._lock:
            unknown = [sid for sid in sids if sid not in self._names]
        for start in range(0, len(unknown), 100):
            self._name(unknown[start:start + 100])
        with self._lock:
            return frozenset(self._names.get(sid) or Group("", (), render_sid(sid)) for sid in sids)

    def _name(self, sids: list[bytes]) -> None:
        search_filter = "(|" + "".join(f"(objectSid={sid_filter_value(sid)})" for sid in sids) + ")"
        named = {}
        for group in self._search(self._base, SUBTREE, search_filter, ["sAMAccountName", "cn", "objectSid"]):
            names = tuple(dict.fromkeys(n for n in (group.first_text("sAMAccountName"), group.first_text("cn")) if n))
            for sid in group.attributes.get("objectsid", ()):
                named[sid] = Group(group.dn, names, render_sid(sid))
        with self._lock:
            for sid in sids:
                # A SID with no entry under the base (a builtin or foreign group) is known by its SID.
                self._names[sid] = named.get(sid) or Group("", (), render_sid(sid))


def nested_groups(search: Search, base: str, entry: UserEntry) -> frozenset[Group]:
    """OpenLDAP: groups naming the user (member, uniqueMember, posixGroup memberUid), then their groups, ..."""
    found: dict[str, Group] = {}
    frontier = [entry.dn]
    uid = entry.first_text("uid")
    for depth in range(MAX_NESTING):
        clauses = [f"(member={escape_filter_chars(dn)})(uniqueMember={escape_filter_chars(dn)})" for dn in frontier]
        if depth == 0 and uid:
            clauses.append(f"(&(objectClass=posixGroup)(memberUid={escape_filter_chars(uid)}))")
        new = []
        for start in range(0, len(clauses), 50):
            search_filter = "(|" + "".join(clauses[start:start + 50]) + ")"
            for group in search(base, SUBTREE, search_filter, ["cn"]):
                if group.dn.lower() not in found:
                    found[group.dn.lower()] = Group(group.dn, tuple(group.texts("cn")))
                    new.append(group.dn)
        if not new:
            break
        frontier = new
    return frozenset(found.values())
