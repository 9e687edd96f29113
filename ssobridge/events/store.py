"""The durable outbox: every event, and its delivery to each sink, in SQLite (WAL, synchronous=FULL).

An event is committed, together with one pending delivery per sink that wants it, before
NotifyEventFired answers Success=true; the delivery workers then work from this table, so a restart
of ssobridge (even kill -9) or a receiver that is down loses nothing. A delivery that keeps failing
goes to the dead state after the configured number of tries; `ssobridge events retry` revives it.
Delivered and dead events older than [events] keep_days are pruned (at start and hourly); pending ones
never are. The schema carries its version (PRAGMA user_version) and is migrated forward at open.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

log = logging.getLogger("ssobridge.events")

# The schema, as forward migrations: MIGRATIONS[n] takes a database from version n to n + 1, and
# PRAGMA user_version says which version a database is at. A new database runs them all; an older one
# runs what it lacks, once, at open. Never edit a released step: add one at the end.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the outbox as first released (it set no user_version: see _version)
    ("""CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    received_at TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_name TEXT NOT NULL,
    args TEXT NOT NULL
)""",
     """CREATE TABLE IF NOT EXISTS deliveries (
    event_id INTEGER NOT NULL REFERENCES events(id),
    sink TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    delivered_at TEXT,
    PRIMARY KEY (event_id, sink)
)""",
     "CREATE INDEX IF NOT EXISTS deliveries_by_state ON deliveries (sink, state, event_id)"),
    # 2: pruning finds old events by their age ([events] keep_days)
    ("CREATE INDEX IF NOT EXISTS events_by_received_at ON events (received_at)",),
)
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(sqlite3.DatabaseError):
    """The database was written by a newer ssobridge: refused rather than misread."""


def migrate(db: sqlite3.Connection) -> int:
    """Bring the database to SCHEMA_VERSION in one transaction (several processes may open it at once:
    the first migrates, the others then find it done). Returns the version it was at."""
    if _version(db) == SCHEMA_VERSION:
        return SCHEMA_VERSION  # the usual case: no write, no lock
    db.execute("BEGIN IMMEDIATE")
    try:
        found = _version(db)
        if found > SCHEMA_VERSION:
            raise SchemaTooNew(f"schema version {found} is newer than this ssobridge knows ({SCHEMA_VERSION}): "
                               f"run a newer ssobridge, or name a new database")
        for step in MIGRATIONS[found:]:
            for statement in step:
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return found


def _version(db: sqlite3.Connection) -> int:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == 0 and db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'").fetchone():
        return 1  # the first release created the tables without setting user_version
    return version


@dataclass(frozen=True)
class Event:
    id: int
    idempotency_key: str  # the same on every delivery of this event, retries included
    received_at: str
    event_type: str
    event_name: str
    args: dict[str, str]

    def as_json(self) -> dict:
        return {"id": self.idempotency_key, "sequence": self.id, "received_at": self.received_at,
                "event_type": self.event_type, "event_name": self.event_name, "args": self.args}


@dataclass(frozen=True)
class Delivery:
    event: Event
    sink: str
    attempts: int
    next_attempt_at: float


class EventStore:
    def __init__(self, path: str | Path, keep_days: int | None = None):
        """keep_days: how long delivered and dead events are kept, once start_pruning runs (serve)."""
        self.path = Path(path)
        self.keep_days = keep_days
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an acknowledged event survives a power cut too
        self._lock = threading.Lock()
        try:
            self.version_found = migrate(self._db)  # the schema version before this open
        except BaseException:
            self._db.close()
            raise
        self._stop_pruning = threading.Event()
        self._pruner: threading.Thread | None = None

    def add(self, event_type: str, event_name: str, args: dict[str, str], sinks: list[str]) -> Event:
        """Store the event and a pending delivery per sink in one transaction; raises sqlite3.Error."""
        key = str(uuid.uuid4())
        received = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.execute(
                    "INSERT INTO events (idempotency_key, received_at, event_type, event_name, args) "
                    "VALUES (?, ?, ?, ?, ?)", (key, received, event_type, event_name, json.dumps(args)))
                event_id = cursor.lastrowid
                self._db.executemany("INSERT INTO deliveries (event_id, sink, state) VALUES (?, ?, 'pending')",
                                     [(event_id, sink) for sink in sinks])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return Event(event_id, key, received, event_type, event_name, args)

    def pending(self, sink: str, limit: int = 200) -> list[Delivery]:
        """The sink's pending deliveries, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT e.id, e.idempotency_key, e.received_at, e.event_type, e.event_name, e.args, d.attempts, "
                "d.next_attempt_at FROM deliveries d JOIN events e ON e.id = d.event_id "
                "WHERE d.sink = ? AND d.state = 'pending' ORDER BY d.event_id LIMIT ?", (sink, limit)).fetchall()
        return [Delivery(Event(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])), sink, r[6], r[7]) for r in rows]

    def delivered(self, delivery: Delivery) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        self._update("UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, delivered_at = ?, "
                     "last_error = NULL WHERE event_id = ? AND sink = ?", (now, delivery.event.id, delivery.sink))

    def failed(self, delivery: Delivery, error: str, retry_at: float | None) -> None:
        """One more failed try: pending again at `retry_at`, or dead when None."""
        state = "pending" if retry_at is not None else "dead"
        self._update("UPDATE deliveries SET state = ?, attempts = attempts + 1, next_attempt_at = ?, last_error = ? "
                     "WHERE event_id = ? AND sink = ?", (state, retry_at or 0, error[:500], delivery.event.id,
                                                         delivery.sink))

    def retry_dead(self, sink: str | None = None) -> int:
        """Dead deliveries (of one sink, or all) back to pending, tries counted afresh."""
        query = "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = 0 WHERE state = 'dead'"
        return self._update(query + (" AND sink = ?" if sink else ""), (sink,) if sink else ())

    def summary(self) -> list[tuple[str, str, int]]:
        with self._lock:
            return self._db.execute("SELECT sink, state, COUNT(*) FROM deliveries GROUP BY sink, state "
                                    "ORDER BY sink, state").fetchall()

    def recent(self, limit: int = 20, after_id: int = 0) -> list[tuple[Event, list[tuple[str, str, int, str]]]]:
        """Events (newest `limit`, or all after `after_id`) with each sink's state, tries and last error."""
        with self._lock:
            if after_id:
                rows = self._db.execute("SELECT * FROM events WHERE id > ? ORDER BY id", (after_id,)).fetchall()
            else:
                rows = self._db.execute("SELECT * FROM (SELECT * FROM events ORDER BY id DESC LIMIT ?) ORDER BY id",
                                        (limit,)).fetchall()
            result = []
            for row in rows:
                event = Event(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]))
                states = self._db.execute("SELECT sink, state, attempts, COALESCE(last_error, '') FROM deliveries "
                                          "WHERE event_id = ? ORDER BY sink", (event.id,)).fetchall()
                result.append((event, states))
        return result

    def stats(self) -> OutboxStats:
        """Deliveries by sink and state, the oldest pending event per sink, the files' size."""
        with self._lock:
            counts = self._db.execute("SELECT sink, state, COUNT(*) FROM deliveries GROUP BY sink, state").fetchall()
            oldest = dict(self._db.execute(
                "SELECT d.sink, MIN(e.received_at) FROM deliveries d JOIN events e ON e.id = d.event_id "
                "WHERE d.state = 'pending' GROUP BY d.sink").fetchall())
            events = self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
        sinks: dict[str, dict[str, int]] = {}
        for sink, state, count in counts:
            sinks.setdefault(sink, {"pending": 0, "delivered": 0, "dead": 0})[state] = count
        return OutboxStats(
            events=events, version=version, oldest_pending=oldest,
            sinks={sink: (c["pending"], c["delivered"], c["dead"]) for sink, c in sorted(sinks.items())},
            database_bytes=_size(self.path), wal_bytes=_size(self.path.with_name(self.path.name + "-wal")))

    def prune(self, keep_days: int, at: datetime | None = None) -> int:
        """Delete events received more than keep_days before `at` (now) whose every delivery is delivered or
        dead; never one with a pending delivery. In batches, so NotifyEventFired never waits long for the
        write lock. Returns how many events went."""
        cutoff = ((at or datetime.now(timezone.utc)) - timedelta(days=keep_days)).isoformat(timespec="milliseconds")
        old_and_done = ("SELECT id FROM events WHERE received_at < ? AND NOT EXISTS (SELECT 1 FROM deliveries "
                        "WHERE event_id = events.id AND state = 'pending') ORDER BY id LIMIT 500")
        total = 0
        while True:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    ids = [row[0] for row in self._db.execute(old_and_done, (cutoff,)).fetchall()]
                    marks = ",".join("?" * len(ids))
                    self._db.execute(f"DELETE FROM deliveries WHERE event_id IN ({marks})", ids)
                    self._db.execute(f"DELETE FROM events WHERE id IN ({marks})", ids)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            total += len(ids)
            if len(ids) < 500:
                return total

    def start_pruning(self, interval: float = 3600.0) -> None:
        """Prune now and then every `interval` seconds, in a thread, until close (no-op without keep_days)."""
        if self.keep_days is None or self._pruner is not None:
            return
        self._pruner = threading.Thread(target=self._prune_periodically, args=(interval,), name="events-prune",
                                        daemon=True)
        self._pruner.start()

    def _prune_periodically(self, interval: float) -> None:
        while True:
            try:
                pruned = self.prune(self.keep_days)
                log.log(logging.INFO if pruned else logging.DEBUG, "event=events_pruned keep_days=%d events=%d",
                        self.keep_days, pruned)
            except sqlite3.Error as e:  # tried again at the next interval
                log.error("event=events_prune_failed database=%s error=%r", self.path, str(e))
            if self._stop_pruning.wait(interval):
                return

    def _update(self, query: str, parameters: tuple) -> int:
        with self._lock:
            return self._db.execute(query, parameters).rowcount

    def close(self) -> None:
        self._stop_pruning.set()
        if self._pruner is not None:
            self._pruner.join(timeout=5)
        with self._lock:
            self._db.close()


@dataclass(frozen=True)
class OutboxStats:
    events: int
    version: int  # the schema version
    sinks: dict[str, tuple[int, int, int]]  # sink -> (pending, delivered, dead), by sink name
    oldest_pending: dict[str, str]  # sink -> received_at of its oldest pending event
    database_bytes: int
    wal_bytes: int  # the write-ahead log beside it, until the next checkpoint


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def backoff(attempts: int, initial: float, maximum: float) -> float:
    """Seconds to wait after the `attempts`-th failed try: doubling from `initial`, capped at `maximum`."""
    return min(maximum, initial * (2 ** max(0, attempts - 1)))


def now() -> float:
    return time.time()
