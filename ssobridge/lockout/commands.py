"""`ssobridge lockouts` and `ssobridge unlock USER`: the soft locks of this host's shield."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TextIO

from ..config import Config
from .shield import Shield
from .store import Store


def lockouts_command(config: Config, out: TextIO) -> int:
    shield = Shield(config.lockout, Store(config.server.data_dir))
    locks = shield.lockouts()
    if not locks:
        print("No account is soft-locked.", file=out)
    for lock in locks:
        until = datetime.fromtimestamp(lock.until, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        print(f"{lock.label}\tfailures counted here: {lock.failures}\tuntil {until}", file=out)
    return 0


def unlock_command(config: Config, user: str, out: TextIO) -> int:
    shield = Shield(config.lockout, Store(config.server.data_dir))
    labels = shield.unlock(user)
    if not labels:
        print(f"No soft lock or counted failure known for {user!r}.", file=out)
        return 1
    for label in labels:
        print(f"Unlocked {label} (the directory's own lockout, if any, is not changed).", file=out)
    return 0
