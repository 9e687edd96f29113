"""The shield's state: one SQLite database and one secret key in the [server] data_dir.

Shared by every worker process of the host and by the commands (`ssobridge lockouts`, `unlock`). WAL mode
and a busy timeout let many processes write; each thread has its own connection. Attempts for one account
are serialized by a lease row (taken before the decision, given back after the bind is recorded), so a
burst of concurrent wrong passwords cannot all pass the check before any of them is counted.
Passwords are never stored: only keyed hashes (HMAC-SHA256 with the secret key) and scrypt verifiers.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

DATABASE = "ssobridge-state.db"
SECRET_KEY = "ssobridge-secret.key"
LEASE_POLL_SECONDS = 0.005
TAKE_LEASE = ("INSERT INTO lockout_leases VALUES (?1, ?2, ?3) ON CONFLICT (account) DO UPDATE "
              "SET owner = excluded.owner, expires = excluded.expires WHERE expires < ?4")
RELEASE_LEASE = "DELETE FROM lockout_leases WHERE account = ? AND owner = ?"

SCHEMA = """
CREATE TABLE IF NOT EXISTS lockout_leases (account TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS lockout_accounts (
    account TEXT PRIMARY KEY, label TEXT NOT NULL, name TEXT NOT NULL DEFAULT '', reset_at REAL NOT NULL DEFAULT 0,
    locked_until REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS lockout_failures (account TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS lockout_failures_by_account ON lockout_failures (account, at);
CREATE TABLE IF NOT EXISTS lockout_wrong (account TEXT NOT NULL, digest BLOB NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS lockout_wrong_by_account ON lockout_wrong (account, at);
CREATE TABLE IF NOT EXISTS lockout_spray (digest BLOB NOT NULL, account TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS lockout_spray_by_digest ON lockout_spray (digest, at);
CREATE TABLE IF NOT EXISTS lockout_sprayed (digest BLOB PRIMARY KEY, until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS lockout_verifiers (
    account TEXT PRIMARY KEY, prefilter INTEGER NOT NULL, salt BLOB NOT NULL, verifier BLOB NOT NULL,
    at REAL NOT NULL);
"""


class LeaseTimeout(Exception):
    """Another attempt for the account held it too long (a hung bind in another process)."""


def secret_key(folder: Path) -> bytes:
    """32 random bytes, created on first use with mode 0600, the same for every process of the host."""
    path = folder / SECRET_KEY
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{SECRET_KEY}.{uuid.uuid4().hex}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(secrets.token_bytes(32))
        try:
            os.link(temporary, path)  # atomic: of two processes creating it, one wins, both read the winner's
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_bytes()


class Store:
    def __init__(self, data_dir: str):
        self.folder = Path(data_dir or ".")
        self.key = secret_key(self.folder)
        self.path = self.folder / DATABASE
        self._local = threading.local()
        self.connection().executescript(SCHEMA)  # IF NOT EXISTS: every process may run it

    def digest(self, purpose: str, *parts: str) -> bytes:
        """HMAC-SHA256 (the first 16 bytes) of the parts under the host's secret key."""
        message = b"\x00".join(part.encode("utf-8", "surrogatepass") for part in (purpose, *parts))
        return hmac.new(self.key, message, hashlib.sha256).digest()[:16]

    def connection(self) -> sqlite3.Connection:
        """This thread's connection to the state database (SQLite connections are per thread)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        db = self.connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextlib.contextmanager
    def lease(self, account: str, seconds: float) -> Iterator[None]:
        """Hold the account's lease: one attempt at a time for it, across threads and processes."""
        owner = self.take_lease(account, seconds)
        try:
            yield
        finally:
            self.connection().execute(RELEASE_LEASE, (account, owner))

    def take_lease(self, account: str, seconds: float) -> str:
        """Wait for the account's lease and take it; its owner, for RELEASE_LEASE (in the caller's last
        write). One statement, one commit: a free lease is inserted, an expired one (its holder crashed)
        taken over, a live one left alone (no row changed)."""
        owner, deadline = uuid.uuid4().hex, time.time() + seconds
        db = self.connection()
        while True:
            now = time.time()
            if db.execute(TAKE_LEASE, (account, owner, now + seconds, now)).rowcount:
                return owner
            if now > deadline:
                raise LeaseTimeout(account)
            time.sleep(LEASE_POLL_SECONDS)

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
