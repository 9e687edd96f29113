"""The principals a keytab file holds keys for, read from the file itself (MIT's keytab format, versions 1 and 2,
which ktpass and samba-tool write): so that `[sso] kerberos_keytab` naming a file that is no keytab, or a keytab
without the configured principal's key, is a config problem at start, without the Kerberos extra or a KDC.
"""

from __future__ import annotations

import struct
from pathlib import Path


def keytab_principals(path: str) -> set[str]:
    """Every "component/component@REALM" with a key in the keytab; ValueError saying why it is not a keytab."""
    data = Path(path).read_bytes()
    if len(data) < 2 or data[0] != 5 or data[1] not in (1, 2):
        raise ValueError("not a keytab (no keytab version header): export it with ktpass or "
                         "samba-tool domain exportkeytab")
    order = ">" if data[1] == 2 else "="  # version 1 is in the writer's byte order
    principals, at = set(), 2
    try:
        while at + 4 <= len(data):
            (size,) = struct.unpack_from(order + "i", data, at)
            at += 4
            if size < 0:  # a hole left by a deleted entry
                at += -size
                continue
            principals.add(_principal(data[at:at + size], order, data[1]))
            at += size
    except (struct.error, UnicodeDecodeError, IndexError):
        raise ValueError("not a keytab (an entry is cut short or malformed)") from None
    return principals


def _principal(entry: bytes, order: str, version: int) -> str:
    (count,) = struct.unpack_from(order + "H", entry, 0)
    if version == 1:
        count -= 1  # version 1 counts the realm as a component
    at, parts = 2, []
    for _ in range(count + 1):  # the realm, then the components
        (length,) = struct.unpack_from(order + "H", entry, at)
        if at + 2 + length > len(entry):
            raise IndexError
        parts.append(entry[at + 2:at + 2 + length].decode("utf-8"))
        at += 2 + length
    realm, components = parts[0], parts[1:]
    return "/".join(components) + "@" + realm
