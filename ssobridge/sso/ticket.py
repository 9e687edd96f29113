"""The FormsAuthenticationTicket and its binary form, as ASP.NET's FormsAuthenticationTicketSerializer writes it.

The layout (System.Web/Security/FormsAuthenticationTicketSerializer.cs, format version 1):

    0x01                          the serialized format's version
    version                       1 byte: the ticket's own version (2 from FormsAuthentication.SetAuthCookie)
    issue date                    8 bytes: .NET ticks (100 ns since 0001-01-01) of the UTC time, little-endian
    0xFE                          a spacer
    expiration                    8 bytes: ticks, UTC, little-endian
    is persistent                 1 byte: 0 or 1
    name, user data, cookie path  each: a 7-bit encoded count of UTF-16 code units, then those units little-endian
    0xFF                          the footer, which must end the blob

Anything else (another format byte, spacer or footer, a persistence byte other than 0 or 1, bytes after
the footer) is not a ticket: ASP.NET returns null, and `parse` raises ValueError.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

_FORMAT_VERSION = 0x01
_SPACER = 0xFE
_FOOTER = 0xFF
_EPOCH = datetime(1, 1, 1, tzinfo=timezone.utc)  # .NET's DateTime.MinValue: tick 0
_MAX_TICKS = 3_155_378_975_999_999_999  # DateTime.MaxValue: 9999-12-31 23:59:59.9999999


@dataclass(frozen=True, kw_only=True)
class Ticket:
    """What a forms authentication cookie holds; dates are aware datetimes in UTC."""
    name: str  # the user name: what SmarterTrack passes to GetSignInCookieInfo
    issue_date: datetime
    expiration: datetime
    version: int = 2  # as FormsAuthentication.SetAuthCookie writes it
    is_persistent: bool = False  # a persistent cookie survives the browser; ours are session cookies
    user_data: str = ""
    cookie_path: str = "/"
    # The dates' exact .NET ticks when read from a cookie (a datetime keeps microseconds, ticks 100 ns):
    # shown by decode-cookie, and written back unchanged while the dates are the ones read.
    ticks: tuple[int, int] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def new(cls, name: str, minutes: float, *, now: datetime | None = None, **others) -> Ticket:
        """A ticket issued now (or at `now`) that expires `minutes` later."""
        issued = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        return cls(name=name, issue_date=issued, expiration=issued + timedelta(minutes=minutes), **others)

    def expired(self, now: datetime | None = None) -> bool:
        """As FormsAuthenticationTicket.Expired: the expiration is before now."""
        return self.expiration < (now or datetime.now(timezone.utc))


def to_ticks(moment: datetime) -> int:
    """An aware datetime -> .NET ticks of its UTC time (microsecond precision, as Python keeps it)."""
    if moment.tzinfo is None:
        raise ValueError("ticket dates must be timezone-aware")
    return (moment - _EPOCH) // timedelta(microseconds=1) * 10


def from_ticks(ticks: int) -> datetime:
    """.NET ticks (UTC) -> an aware datetime; the last 100 ns digit is dropped."""
    if not 0 <= ticks <= _MAX_TICKS:
        raise ValueError(f"{ticks} is not a .NET date")
    return _EPOCH + timedelta(microseconds=ticks // 10)


def exact_ticks(ticket: Ticket) -> tuple[int, int]:
    """(issue date, expiration) in .NET ticks: as read from the cookie when the dates are unchanged."""
    read = ticket.ticks
    if read and (from_ticks(read[0]), from_ticks(read[1])) == (ticket.issue_date, ticket.expiration):
        return read
    return to_ticks(ticket.issue_date), to_ticks(ticket.expiration)


def serialize(ticket: Ticket) -> bytes:
    if not 0 <= ticket.version <= 255:
        raise ValueError(f"a ticket version is one byte, not {ticket.version}")
    issued, expires = exact_ticks(ticket)
    return b"".join((
        bytes((_FORMAT_VERSION, ticket.version)),
        struct.pack("<q", issued),
        bytes((_SPACER,)),
        struct.pack("<q", expires),
        bytes((1 if ticket.is_persistent else 0,)),
        _string(ticket.name), _string(ticket.user_data), _string(ticket.cookie_path),
        bytes((_FOOTER,)),
    ))


def parse(blob: bytes) -> Ticket:
    """The ticket in `blob`; ValueError saying what is wrong when it is not one."""
    reader = _Reader(blob)
    if reader.byte() != _FORMAT_VERSION:
        raise ValueError("not a version 1 serialized ticket (first byte)")
    version = reader.byte()
    issued = reader.int64()
    if reader.byte() != _SPACER:
        raise ValueError("no spacer after the issue date")
    expires = reader.int64()
    persistent = reader.byte()
    if persistent not in (0, 1):
        raise ValueError(f"the persistence byte is {persistent}, not 0 or 1")
    name, user_data, cookie_path = reader.string(), reader.string(), reader.string()
    if reader.byte() != _FOOTER:
        raise ValueError("no footer after the cookie path")
    if reader.position != len(blob):
        raise ValueError(f"{len(blob) - reader.position} bytes after the footer")
    return Ticket(name=name, issue_date=from_ticks(issued), expiration=from_ticks(expires), version=version,
                  is_persistent=bool(persistent), user_data=user_data, cookie_path=cookie_path,
                  ticks=(issued, expires))


def _string(value: str) -> bytes:
    """BinaryWriter.Write7BitEncodedInt of the UTF-16 length, then the UTF-16LE code units."""
    units = value.encode("utf-16-le", "surrogatepass")
    count, prefix = len(units) // 2, bytearray()
    while count >= 0x80:
        prefix.append(count & 0x7F | 0x80)
        count >>= 7
    prefix.append(count)
    return bytes(prefix) + units


class _Reader:
    def __init__(self, blob: bytes):
        self.blob = blob
        self.position = 0

    def take(self, count: int) -> bytes:
        if self.position + count > len(self.blob):
            raise ValueError("ends too early")
        chunk = self.blob[self.position:self.position + count]
        self.position += count
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def int64(self) -> int:
        return struct.unpack("<q", self.take(8))[0]

    def string(self) -> str:
        count, shift = 0, 0
        while True:
            part = self.byte()
            count |= (part & 0x7F) << shift
            shift += 7
            if not part & 0x80:
                break
            if shift > 28:
                raise ValueError("a string length of more than 5 bytes")
        # surrogatepass: .NET strings may hold lone surrogates; they round-trip as they came.
        return self.take(count * 2).decode("utf-16-le", "surrogatepass")
