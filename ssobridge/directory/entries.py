"""Entries as read from the directory: raw values, decoded on demand, and the directory's time formats."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping

# Attributes whose values are binary even when the bytes happen to be valid UTF-8.
BINARY_ATTRIBUTES = frozenset(name.lower() for name in (
    "thumbnailPhoto", "jpegPhoto", "photo", "userCertificate", "userSMIMECertificate", "cACertificate",
    "nTSecurityDescriptor", "logonHours", "msExchMailboxGuid", "msExchMailboxSecurityDescriptor",
    "msDS-GenerationId", "sIDHistory", "tokenGroups", "userPassword", "unicodePwd", "mS-DS-ConsistencyGuid",
))


def render_guid(raw: bytes) -> str:
    """objectGUID as Windows writes it: the first three fields are little-endian."""
    return str(uuid.UUID(bytes_le=raw)) if len(raw) == 16 else raw.hex()


def render_sid(raw: bytes) -> str:
    """objectSid as S-1-<authority>-<sub>-<sub>..."""
    if len(raw) < 8 or len(raw) != 8 + 4 * raw[1]:
        return raw.hex()
    authority = int.from_bytes(raw[2:8], "big")
    subs = [int.from_bytes(raw[8 + 4 * i:12 + 4 * i], "little") for i in range(raw[1])]
    return "-".join(["S", str(raw[0]), str(authority), *map(str, subs)])


RENDERED_ATTRIBUTES = {"objectguid": render_guid, "objectsid": render_sid}


@dataclass(frozen=True)
class UserEntry:
    dn: str
    attributes: Mapping[str, tuple[bytes, ...]]  # lower-case attribute name -> raw values
    server: str = ""  # the URL of the server the entry was read from

    def texts(self, name: str) -> list[str]:
        """The attribute's values as text: objectGUID and objectSid rendered, other binary values never."""
        key = name.lower()
        raw_values = self.attributes.get(key, ())
        if key in RENDERED_ATTRIBUTES:
            return [RENDERED_ATTRIBUTES[key](raw) for raw in raw_values]
        if key in BINARY_ATTRIBUTES:
            return []
        values = []
        for raw in raw_values:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if "\x00" not in text:
                values.append(text)
        return values

    def first_text(self, name: str) -> str | None:
        values = [v for v in self.texts(name) if v.strip()]
        return values[0] if values else None

    def first_int(self, name: str) -> int | None:
        value = self.first_text(name)
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None


# AD's "never" in accountExpires, pwdLastSet-derived and logon times.
AD_NEVER = (0, 0x7FFFFFFFFFFFFFFF)


def filetime_to_datetime(filetime: int) -> datetime:
    """AD time: 100-ns intervals since 1601-01-01 UTC."""
    seconds = filetime / 10_000_000 - 11_644_473_600
    return datetime.fromtimestamp(max(seconds, -62_135_596_800 + 86_400), tz=timezone.utc)


def filetime_or_never(value: int | None) -> datetime | None:
    """An AD time attribute; None for never or unset."""
    return filetime_to_datetime(value) if value and value not in AD_NEVER else None


def generalized_time(value: str | None) -> datetime | None:
    """LDAP GeneralizedTime (20261127115900Z); None when absent or unreadable."""
    if not value:
        return None
    try:
        return datetime.strptime(value[:14], "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
