"""The durable outbox: every event, and its delivery to each sink, in SQLite (WAL, synchronous=FULL).

An event is committed, together with one pending delivery per sink that wants it, before
NotifyEventFired answers Success=true; the delivery workers then work from this table, so a restart
of ssobridge (even kill -9) or a receiver that is down loses nothing. A delivery that keeps failing
goes to the dead state after the configured number of tries; `ssobridge events retry` revives it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    received_at TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_name TEXT NOT NULL,
    args TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    event_id INTEGER NOT NULL REFERENCES events(id),
    sink TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    delivered_at TEXT,
    PRIMARY KEY (event_id, sink)
);
CREATE INDEX IF NOT EXISTS deliveries_by_state ON deliveries (sink, state, event_id);
"""


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
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an acknowledged event survives a power cut too
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

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

    def _update(self, query: str, parameters: tuple) -> int:
        with self._lock:
            return self._db.execute(query, parameters).rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()


def backoff(attempts: int, initial: float, maximum: float) -> float:
    """Seconds to wait after the `attempts`-th failed try: doubling from `initial`, capped at `maximum`."""
    return min(maximum, initial * (2 ** max(0, attempts - 1)))


def now() -> float:
    return time.time()
