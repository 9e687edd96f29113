"""The shield's state: one SQLite database and one secret key in the [server] data_dir.

Shared by every worker process of the host and by the commands (`ssobridge lockouts`, `unlock`). WAL mode
and a busy timeout let many processes write; each thread has its own connection. Attempts for one account
are serialized by a lease row (taken before the decision, given back after the bind is recorded), so a
burst of concurrent wrong passwords cannot all pass the check before any of them is counted.
Passwords are never stored: only keyed hashes (HMAC-SHA256 with the secret key) and scrypt verifiers.

Every SQL statement of the shield is here, named for what it does (Statements); shield.py decides which
ones to run, and which of them go together in one transaction.
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
from typing import Iterator, NamedTuple

DATABASE = "ssobridge-state.db"
SECRET_KEY = "ssobridge-secret.key"
LEASE_POLL_SECONDS = 0.005
TAKE_LEASE = ("INSERT INTO lockout_leases VALUES (?1, ?2, ?3) ON CONFLICT (account) DO UPDATE "
              "SET owner = excluded.owner, expires = excluded.expires WHERE expires < ?4")
# What a decision reads: the account's row and verifier age; since (the window's start, or the last reset if
# later); the failures counted since, whether this wrong password was seen since, whether it is being sprayed.
_RECORDED = ("WITH a AS (SELECT reset_at, locked_until FROM lockout_accounts WHERE account = ?1), "
             "s AS (SELECT MAX(?2, COALESCE((SELECT reset_at FROM a), 0.0)) AS since) "
             "SELECT (SELECT reset_at FROM a), (SELECT locked_until FROM a), "
             "(SELECT at FROM lockout_verifiers WHERE account = ?1), s.since, "
             "(SELECT COUNT(*) FROM lockout_failures WHERE account = ?1 AND at >= s.since), "
             "EXISTS (SELECT 1 FROM lockout_wrong WHERE account = ?1 AND digest = ?3 AND at >= s.since), "
             "EXISTS (SELECT 1 FROM lockout_sprayed WHERE digest = ?4 AND until > ?5) FROM s")

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


class Recorded(NamedTuple):
    """What the state holds about one account before its bind (Statements.recorded)."""

    reset_at: float | None  # None: no row for the account yet
    locked_until: float | None
    verifier_at: float | None  # when its known_password verifier was written
    since: float  # the window's start, or the last reset if later
    failures: int  # counted here since then
    repeated: int  # 1: this wrong password was seen since then
    sprayed: int  # 1: the password is blocked as sprayed


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
        self._connection().executescript(SCHEMA)  # IF NOT EXISTS: every process may run it

    def digest(self, purpose: str, *parts: str) -> bytes:
        """HMAC-SHA256 (the first 16 bytes) of the parts under the host's secret key."""
        message = b"\x00".join(part.encode("utf-8", "surrogatepass") for part in (purpose, *parts))
        return hmac.new(self.key, message, hashlib.sha256).digest()[:16]

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection to the state database (SQLite connections are per thread)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def reads(self) -> Statements:
        """The statements on this thread's connection, each its own transaction (reads, and lone writes)."""
        return Statements(self._connection())

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Statements]:
        """The statements in one write transaction: all of them happen, or none."""
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield Statements(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def take_lease(self, account: str, seconds: float) -> str:
        """Wait for the account's lease and take it; its owner, for Statements.release_lease (in the caller's
        last write). One statement, one commit: a free lease is inserted, an expired one (its holder crashed)
        taken over, a live one left alone (no row changed)."""
        owner, deadline = uuid.uuid4().hex, time.time() + seconds
        db = self._connection()
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


class Statements:
    """Every statement of the shield, by what it does, on one connection: the shield decides, this writes."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def release_lease(self, account: str, owner: str) -> None:
        self.db.execute("DELETE FROM lockout_leases WHERE account = ? AND owner = ?", (account, owner))

    def recorded(self, account: str, window_start: float, wrong: bytes, spray: bytes, now: float) -> Recorded:
        """What a decision reads, in one statement (one read transaction)."""
        return Recorded(*self.db.execute(_RECORDED, (account, window_start, wrong, spray, now)).fetchone())

    def failures(self, account: str, since: float) -> int:
        return self.db.execute("SELECT COUNT(*) FROM lockout_failures WHERE account = ? AND at >= ?",
                               (account, since)).fetchone()[0]

    def lock(self, account: str, label: str, name: str, until: float) -> None:
        """Soft-lock the account until `until` (or later, if it already is)."""
        self.db.execute("INSERT INTO lockout_accounts (account, label, name, locked_until) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (account) DO UPDATE SET label = excluded.label, name = excluded.name, "
                        "locked_until = MAX(locked_until, excluded.locked_until)", (account, label, name, until))

    def add_failure(self, account: str, now: float, forget_before: float) -> None:
        self.db.execute("INSERT INTO lockout_failures VALUES (?, ?)", (account, now))
        self.db.execute("DELETE FROM lockout_failures WHERE at < ?", (forget_before,))

    def add_wrong_password(self, account: str, digest: bytes, now: float, kept: int) -> None:
        """Remember this wrong password of the account, and only its `kept` latest ones."""
        self.db.execute("INSERT INTO lockout_wrong VALUES (?, ?, ?)", (account, digest, now))
        self.db.execute("DELETE FROM lockout_wrong WHERE account = ? AND rowid NOT IN (SELECT rowid FROM "
                        "lockout_wrong WHERE account = ? ORDER BY at DESC LIMIT ?)", (account, account, kept))

    def add_spray(self, digest: bytes, account: str, now: float, forget_before: float) -> int:
        """Record a wrong password for the account; the number of accounts it was tried for since forget_before."""
        self.db.execute("DELETE FROM lockout_spray WHERE at < ?", (forget_before,))
        self.db.execute("INSERT INTO lockout_spray VALUES (?, ?, ?)", (digest, account, now))
        return self.db.execute("SELECT COUNT(DISTINCT account) FROM lockout_spray WHERE digest = ?",
                               (digest,)).fetchone()[0]

    def block_spray(self, digest: bytes, until: float) -> bool:
        """Refuse the password for every account until `until`; whether it was not blocked already."""
        return self.db.execute("INSERT OR IGNORE INTO lockout_sprayed VALUES (?, ?)", (digest, until)).rowcount == 1

    def forget_sprays_until(self, now: float) -> None:
        self.db.execute("DELETE FROM lockout_sprayed WHERE until < ?", (now,))

    def reset(self, account: str, label: str, name: str, now: float) -> None:
        """A good password: the failures are forgotten and the count starts again at `now`; no soft lock."""
        self.db.execute("DELETE FROM lockout_failures WHERE account = ?", (account,))
        self.db.execute("INSERT INTO lockout_accounts (account, label, name, reset_at) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (account) DO UPDATE SET reset_at = excluded.reset_at, locked_until = 0",
                        (account, label, name, now))

    def verifier(self, account: str) -> tuple[int, bytes, bytes] | None:
        """(prefilter, salt, verifier) of the account's known_password, if any."""
        return self.db.execute("SELECT prefilter, salt, verifier FROM lockout_verifiers WHERE account = ?",
                               (account,)).fetchone()

    def write_verifier(self, account: str, prefilter: int, salt: bytes, verifier: bytes, now: float) -> None:
        self.db.execute("INSERT OR REPLACE INTO lockout_verifiers VALUES (?, ?, ?, ?, ?)",
                        (account, prefilter, salt, verifier, now))

    def forget_verifier(self, account: str) -> None:
        self.db.execute("DELETE FROM lockout_verifiers WHERE account = ?", (account,))

    def locked(self, now: float) -> list[tuple[str, float, int]]:
        """(label, locked until, failures since its last reset) of each account soft-locked at `now`, by label."""
        return self.db.execute(
            "SELECT a.label, a.locked_until, (SELECT COUNT(*) FROM lockout_failures f WHERE f.account = a.account "
            "AND f.at >= a.reset_at) FROM lockout_accounts a WHERE a.locked_until > ? ORDER BY a.label",
            (now,)).fetchall()

    def accounts(self) -> list[tuple[str, str, str]]:
        """(key, label, typed name) of every account the shield has a row for."""
        return self.db.execute("SELECT account, label, name FROM lockout_accounts").fetchall()

    def unlock(self, account: str, now: float) -> None:
        """Lift the soft lock; the failures and wrong passwords counted are forgotten."""
        self.db.execute("UPDATE lockout_accounts SET reset_at = ?, locked_until = 0 WHERE account = ?",
                        (now, account))
        self.db.execute("DELETE FROM lockout_failures WHERE account = ?", (account,))
        self.db.execute("DELETE FROM lockout_wrong WHERE account = ?", (account,))
