"""The audit file ([audit] file): one JSON line per login decision and per policy decision.

    {"time": "2026-01-05T09:14:03.120Z", "operation": "Authenticate", "username": "CORP\\\\jdoe",
     "dn": "CN=John Doe,OU=Staff,DC=corp,DC=example", "directory": "corp-ad", "server": "ldaps://dc1:636",
     "outcome": "FAIL", "reason": "wrong_credentials", "ms": 41}

The providers call decision() (providers/login.py, providers/requests.py); it goes through the logger
"ssobridge.audit", which only the AuditFile handler listens to (logs.configure), so without [audit]
nothing is written and a decision costs one level check. Never a password: none is given to decision().

Every worker process appends to the same file: it is opened with O_APPEND and each line is written whole
with one os.write, which the kernel appends atomically, without fsync (an audit trail, not a ledger).
Rotation needs no signal: before each line the handler compares the file at `path` with the one it has open
(device and inode), and opens the path again when logrotate moved it away (create) or removed it;
copytruncate works as it is, since O_APPEND writes go to the end of the truncated file.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import datetime, timezone

LOGGER = "ssobridge.audit"
USERNAME_LIMIT = 256  # characters of the typed username kept

_log = logging.getLogger(LOGGER)


def decision(operation: str, username: str | None, outcome: str, reason: str | None, directory=None, entry=None,
             started: float | None = None, **more) -> None:
    """One audit line: `directory` is the Directory that answered (its name), `entry` the UserEntry found
    (its dn and server), `started` the time.monotonic() the request began; `more` adds fields."""
    if not _log.isEnabledFor(logging.INFO):
        return
    fields = {
        "operation": operation, "username": (username or "")[:USERNAME_LIMIT],
        "dn": entry.dn if entry is not None else None,
        "directory": directory.name if directory is not None else None,
        "server": entry.server if entry is not None else None,
        "outcome": outcome, "reason": reason,
        "ms": round((time.monotonic() - started) * 1000) if started is not None else None,
        **more,
    }
    _log.info("event=audit", extra={"audit": fields})


def iso_time(created: float) -> str:
    """A log record's time in ISO 8601, UTC, to the millisecond."""
    moment = datetime.fromtimestamp(created, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class AuditFile(logging.Handler):
    """Writes the `audit` fields of each record as one JSON line to `path` (see the module's docstring)."""

    def __init__(self, path: str):
        super().__init__(logging.INFO)
        self.path = path
        self._descriptor: int | None = None
        self._opened: tuple[int, int] | None = None
        self._open_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "audit", None)
        if fields is None:
            return
        line = json.dumps({"time": iso_time(record.created), **fields}, ensure_ascii=False, default=str) + "\n"
        try:
            os.write(self._current(), line.encode("utf-8"))
        except OSError:
            self.handleError(record)

    def _current(self) -> int:
        with self._open_lock:
            try:
                now = os.stat(self.path)
                moved = (now.st_dev, now.st_ino) != self._opened
            except FileNotFoundError:
                moved = True
            if self._descriptor is None or moved:
                self._close_descriptor()
                self._descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                opened = os.fstat(self._descriptor)
                self._opened = (opened.st_dev, opened.st_ino)
            return self._descriptor

    def _close_descriptor(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None

    def close(self) -> None:
        with self._open_lock:
            self._close_descriptor()
        super().close()
