"""The service account guard: a refused service bind stops service binds to that directory for a while.

Every refused bind counts toward the service account's lockout, and a wrong bind_password would otherwise
be tried again by every login and every `ssobridge check` until the domain locks the account (and with it
every login). So a refusal is remembered for service_retry_seconds, in a small JSON file per directory in
the data directory: every worker process and `check` read it, and none binds again until it expires.
Within the interval, callers get ServiceAccountRefused at once, without touching the network.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping
from urllib.parse import quote

from ..config import DirectorySettings
from .flavour import AccountState, Flavour

log = logging.getLogger("ssobridge.directory")

# What a refused service bind means, in the words an administrator acts on.
REFUSAL_WORDS = {
    AccountState.WRONG_CREDENTIALS: "service account password is wrong",
    AccountState.LOCKED: "service account is LOCKED",
    AccountState.DISABLED: "service account is disabled",
    AccountState.PASSWORD_EXPIRED: "service account password expired",
    AccountState.ACCOUNT_EXPIRED: "service account has expired",
    AccountState.MUST_CHANGE: "service account must change its password",
    AccountState.LOGON_RESTRICTED: "service account may not log on at this time or from here",
}


@dataclass(frozen=True)
class Refusal:
    at: float  # when, in seconds since the epoch (shared by processes, so wall-clock time)
    server: str  # the URL of the server that refused
    bind_dn: str
    code: str  # the directory's own code: AD "data 52e", OpenLDAP "49 accountLocked"
    words: str  # REFUSAL_WORDS, or "service account bind refused" for another result
    detail: str  # the server's answer: "invalidCredentials (49): 80090308: LdapErr: ..."
    until: float  # no service bind before this time

    def describe(self) -> str:
        return (f"{self.words} ({self.code}), refused by {self.server} at {_clock(self.at)}: the service account "
                f"{self.bind_dn!r} could not bind: {self.detail}; no service bind to this directory until "
                f"{_clock(self.until)}")


class ServiceGuard:
    """The refusal record of one directory. `since`: records older than this are ignored (check --force)."""

    def __init__(self, settings: DirectorySettings, data_dir: str | None = None,
                 flavour: type[Flavour] = Flavour, since: float = 0.0):
        self.settings = settings
        self.flavour = flavour
        self.since = since
        self.lock = threading.Lock()  # one service bind at a time: a burst of logins makes one refused bind
        self._path = Path(data_dir) / f"service-guard-{quote(settings.name.lower(), safe='')}.json" \
            if data_dir is not None else None
        self._latest: Refusal | None = None  # this process's own, also when the file cannot be written

    def bind_controls(self) -> list | None:
        """The service bind asks for what the user's bind asks for (OpenLDAP: the ppolicy control)."""
        return self.flavour.bind_controls()

    def refusal(self) -> Refusal | None:
        """The refusal that still stops service binds, if any."""
        now = time.time()
        for refusal in (self._latest, self._read()):
            if refusal is not None and refusal.bind_dn == self.settings.bind_dn and \
                    self.since <= refusal.at <= now < refusal.until:
                return refusal
        return None

    def refused(self, server: str, result: Mapping, detail: str) -> Refusal:
        """Record a refused bind (ldap3's result, `detail` in words) and say so, once, at ERROR."""
        code, state = self.flavour.bind_refusal(result)
        now = time.time()
        refusal = Refusal(at=now, server=server, bind_dn=self.settings.bind_dn, code=code,
                          words=REFUSAL_WORDS.get(state, "service account bind refused"), detail=detail,
                          until=now + self.settings.service_retry_seconds)
        self._latest = refusal
        log.error("event=service_account_refused directory=%s server=%s bind_dn=%r code=%r reason=%r "
                  "no_service_bind_for=%ss", self.settings.name, server, self.settings.bind_dn, code,
                  refusal.words, self.settings.service_retry_seconds)
        self._write(refusal)
        return refusal

    def bound(self) -> None:
        """A service bind worked: whatever was recorded is over."""
        self._latest = None
        if self._path is not None and self._path.exists():
            try:
                self._path.unlink()
            except OSError:  # another process removed it first
                pass

    def _read(self) -> Refusal | None:
        if self._path is None:
            return None
        try:
            return Refusal(**json.loads(self._path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as e:
            log.warning("event=service_guard_unreadable directory=%s path=%s error=%r",
                        self.settings.name, self._path, str(e))
            return None

    def _write(self, refusal: Refusal) -> None:
        """Atomically: a reader sees the old record or the new one, never half of one."""
        if self._path is None:
            return
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self._path.parent, prefix=".service-guard-")
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump(asdict(refusal), file)
            os.replace(temporary, self._path)
        except OSError as e:
            log.warning("event=service_guard_unwritable directory=%s path=%s error=%r: other processes will "
                        "not know of the refusal", self.settings.name, self._path, str(e))


def _clock(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
