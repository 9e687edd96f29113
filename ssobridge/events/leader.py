"""Which worker process delivers events: the one holding an OS lock on a file beside the outbox.

Every worker stores events; exactly one forwards them, so a receiver never gets an event twice from two
processes racing over the same pending row. The lock is the operating system's (flock on POSIX, msvcrt's
byte lock on Windows), held for the life of the process: when the holder dies, even by kill -9, the
system releases it and another worker takes it at its next try. It sits beside the database rather than
in data_dir because it guards that outbox: two services sharing one outbox share its leader too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if sys.platform == "win32":
    import msvcrt
else:
    import fcntl


class LeaderLock:
    """try_acquire() until it answers True; the lock then stays held until release() or the process ends."""

    def __init__(self, database: str | Path):
        self.path = Path(f"{database}.leader")
        self._descriptor: int | None = None

    @property
    def held(self) -> bool:
        return self._descriptor is not None

    def try_acquire(self) -> bool:
        if self._descriptor is not None:
            return True
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            _lock(descriptor)
        except OSError:  # another process holds it
            os.close(descriptor)
            return False
        self._descriptor = descriptor
        return True

    def release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)  # closing releases the lock on every platform
            self._descriptor = None


def _lock(descriptor: int) -> None:
    """Lock without waiting; OSError when another process holds the lock."""
    if sys.platform == "win32":
        os.lseek(descriptor, 0, os.SEEK_SET)
        msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)  # byte 0; the file may be empty, Windows allows it
    else:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
