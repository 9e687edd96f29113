"""The outbox over time: an old database migrates forward keeping every event, old finished events are
pruned after keep_days (pending ones never), and `ssobridge events stats` counts what is there.

The v1 database is made exactly as the first release made it: its DDL and statements are copied below,
frozen, so a later change to the code cannot change what "version 1" means here.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

from ssobridge.config import ConfigError, load
from ssobridge.events.store import SCHEMA_VERSION, EventStore
from tests.support.services import start_service
from tests.support.events import events_config, notify, wait_for

# The first release's store.py: SCHEMA, executescript'd at every open after these two PRAGMAs.
V1_SCHEMA = """
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

# (idempotency key, received_at, type, name, args, {sink: (state, attempts, last_error)})
V1_EVENTS = [
    ("11111111-1111-4111-8111-111111111111", "2026-01-05T09:00:00.000+00:00", "502000", "Ticket Created",
     {"TicketNumber": "ABC-1"}, {"archive": ("delivered", 1, None), "hook": ("delivered", 1, None)}),
    ("22222222-2222-4222-8222-222222222222", "2026-01-05T09:01:00.000+00:00", "507000", "Task Created",
     {"task": "backup"}, {"archive": ("delivered", 1, None), "hook": ("dead", 10, "HTTP 503 from hook")}),
    ("33333333-3333-4333-8333-333333333333", "2026-01-05T09:02:00.000+00:00", "502002", "Ticket Updated",
     {"TicketNumber": "ABC-1", "note": "é & <b>"}, {"archive": ("delivered", 1, None), "hook": ("pending", 3,
                                                                                                "URLError")}),
]


def make_v1_database(path, events=V1_EVENTS) -> None:
    """As the first release's EventStore.__init__, add, delivered and failed wrote it."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(V1_SCHEMA)
    for key, received, event_type, name, args, sinks in events:
        event_id = db.execute("INSERT INTO events (idempotency_key, received_at, event_type, event_name, args) "
                              "VALUES (?, ?, ?, ?, ?)", (key, received, event_type, name, json.dumps(args))).lastrowid
        db.executemany("INSERT INTO deliveries (event_id, sink, state) VALUES (?, ?, 'pending')",
                       [(event_id, sink) for sink in sinks])
        for sink, (state, attempts, error) in sinks.items():
            db.execute("UPDATE deliveries SET state = ?, attempts = ?, last_error = ?, delivered_at = ? "
                       "WHERE event_id = ? AND sink = ?",
                       (state, attempts, error, received if state == "delivered" else None, event_id, sink))
    db.close()


def schema(path) -> list[tuple[str, str, str]]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    finally:
        db.close()


def test_a_v1_database_migrates_to_the_current_version_keeping_events_and_deliveries(tmp_path):
    make_v1_database(tmp_path / "old.db")
    store = EventStore(tmp_path / "old.db")
    try:
        assert (store.version_found, SCHEMA_VERSION) == (1, 2)
        recent = store.recent()
        pending = store.pending("hook")
        stats = store.stats()
    finally:
        store.close()
    assert [(e.id, e.idempotency_key, e.received_at, e.event_type, e.event_name, e.args, states)
            for e, states in recent] == [
        (1, V1_EVENTS[0][0], V1_EVENTS[0][1], "502000", "Ticket Created", {"TicketNumber": "ABC-1"},
         [("archive", "delivered", 1, ""), ("hook", "delivered", 1, "")]),
        (2, V1_EVENTS[1][0], V1_EVENTS[1][1], "507000", "Task Created", {"task": "backup"},
         [("archive", "delivered", 1, ""), ("hook", "dead", 10, "HTTP 503 from hook")]),
        (3, V1_EVENTS[2][0], V1_EVENTS[2][1], "502002", "Ticket Updated", {"TicketNumber": "ABC-1", "note": "é & <b>"},
         [("archive", "delivered", 1, ""), ("hook", "pending", 3, "URLError")]),
    ]
    assert [(d.event.id, d.sink, d.attempts) for d in pending] == [(3, "hook", 3)]
    assert stats.version == 2 and stats.sinks == {"archive": (0, 3, 0), "hook": (1, 1, 1)}
    # Migrated, the database is exactly what a new one is; opened again, nothing more to do.
    EventStore(tmp_path / "new.db").close()
    assert schema(tmp_path / "old.db") == schema(tmp_path / "new.db")
    again = EventStore(tmp_path / "old.db")
    assert again.version_found == 2
    again.close()


def test_a_new_database_gets_every_migration_and_the_current_version(tmp_path):
    store = EventStore(tmp_path / "events.db")
    store.close()
    assert store.version_found == 0
    assert [(kind, name) for kind, name, _ in schema(tmp_path / "events.db")] == [
        ("index", "deliveries_by_state"), ("index", "events_by_received_at"),
        ("index", "sqlite_autoindex_deliveries_1"), ("index", "sqlite_autoindex_events_1"),
        ("table", "deliveries"), ("table", "events"), ("table", "sqlite_sequence")]
    db = sqlite3.connect(tmp_path / "events.db")
    assert db.execute("PRAGMA user_version").fetchone() == (2,)
    db.close()


def test_a_v1_outbox_opens_after_upgrade_and_its_pending_delivery_goes_out(tmp_path, receiver):
    make_v1_database(tmp_path / "events.db")
    receiver.start()
    service = start_service(tmp_path, events_config(tmp_path, receiver))
    try:
        wait_for(lambda: len(receiver.received) == 1)
        assert notify(service, "502000", TicketNumber="ABC-2")["Success"] is True
        wait_for(lambda: len(receiver.received) == 2)
    finally:
        service.stop()
    first, second = receiver.events()
    assert (first["id"], first["sequence"], first["args"]) == (V1_EVENTS[2][0], 3, V1_EVENTS[2][4])
    assert (second["sequence"], second["args"]) == (4, {"TicketNumber": "ABC-2"})  # numbering goes on


def test_a_database_from_a_newer_ssobridge_stops_serve_with_the_key_named(tmp_path, receiver):
    db = sqlite3.connect(tmp_path / "events.db")
    db.execute("PRAGMA user_version = 99")
    db.close()
    config = tmp_path / "ssobridge.toml"
    config.write_text('[server]\nlisten = "127.0.0.1:1"\n[smartertrack]\nweb_service_password = "x"\n'
                      + events_config(tmp_path, receiver), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "ssobridge", "serve", "--config", str(config)],
                          capture_output=True, encoding="utf-8", timeout=60)
    assert done.returncode == 2
    assert done.stderr == (f"ssobridge: events.database: cannot open {tmp_path / 'events.db'}: schema version 99 "
                           f"is newer than this ssobridge knows (2): run a newer ssobridge, or name a new database\n")


def _age_events(path, days: float, *event_ids: int) -> None:
    """Make events look received `days` ago."""
    received = (datetime.now(timezone.utc) - timedelta(days=days)).isoformat(timespec="milliseconds")
    db = sqlite3.connect(path)
    db.executemany("UPDATE events SET received_at = ? WHERE id = ?", [(received, i) for i in event_ids])
    db.commit()
    db.close()


def test_pruning_removes_delivered_and_dead_events_older_than_keep_days_never_pending_ones(tmp_path):
    store = EventStore(tmp_path / "events.db")
    try:
        for n in range(6):
            store.add("502000", "Ticket Created", {"n": str(n)}, ["hook", "archive"])
        for delivery in store.pending("archive"):
            store.delivered(delivery)
        hook = store.pending("hook")
        for delivery in hook[:2]:
            store.delivered(delivery)
        store.failed(hook[2], "HTTP 500", None)  # dead
        store.failed(hook[3], "HTTP 500", time.time() + 60)  # pending, waiting for its retry
        # For hook: events 1, 2 delivered, 3 dead, 4 and 5 pending; 6 delivered but young (not aged)
        _age_events(tmp_path / "events.db", 31, 1, 2, 3, 4, 5)
        store.delivered(hook[5])
        assert store.prune(30) == 3
        assert store.prune(30) == 0
        left = [(event.args["n"], states) for event, states in store.recent()]
    finally:
        store.close()
    assert left == [("3", [("archive", "delivered", 1, ""), ("hook", "pending", 1, "HTTP 500")]),
                    ("4", [("archive", "delivered", 1, ""), ("hook", "pending", 0, "")]),
                    ("5", [("archive", "delivered", 1, ""), ("hook", "delivered", 1, "")])]


def test_pruning_runs_again_every_interval_while_serving(tmp_path):
    store = EventStore(tmp_path / "events.db", keep_days=30)
    try:
        store.start_pruning(interval=0.2)
        event = store.add("502000", "Ticket Created", {}, ["archive"])
        store.delivered(store.pending("archive")[0])
        _age_events(tmp_path / "events.db", 30.01, event.id)
        wait_for(lambda: store.recent() == [], timeout=5)
    finally:
        store.close()


def test_serve_prunes_old_finished_events_at_start(tmp_path, receiver):
    make_v1_database(tmp_path / "events.db")  # received in January 2026: older than 7 days
    config = events_config(tmp_path, receiver).replace("[[events.sink]]", "keep_days = 7\n[[events.sink]]", 1)
    service = start_service(tmp_path, config)  # the receiver is down: event 3 stays pending for hook
    try:
        wait_for(lambda: "event=events_pruned keep_days=7 events=2" in service.log(), timeout=10)
    finally:
        service.stop()
    store = EventStore(tmp_path / "events.db")
    try:
        assert [event.id for event, _ in store.recent()] == [3]  # the one still pending for hook
    finally:
        store.close()


def test_events_stats_counts_by_sink_and_state_with_the_oldest_pending_age(tmp_path, receiver):
    make_v1_database(tmp_path / "events.db")
    _age_events(tmp_path / "events.db", (2 * 3600 + 5 * 60 + 20) / 86400, 3)  # pending for hook: 2h 5m old
    config = tmp_path / "ssobridge.toml"
    config.write_text('[server]\nlisten = "127.0.0.1:1"\n[smartertrack]\nweb_service_password = "x"\n'
                      + events_config(tmp_path, receiver, extra_sinks='[[events.sink]]\nname = "quiet"\n'
                                                                       'type = "jsonl"\npath = "q.jsonl"\n'),
                      encoding="utf-8")
    for _ in range(2):  # the first run migrates the database; the second finds its size settled
        done = subprocess.run([sys.executable, "-m", "ssobridge", "events", "stats", "--config", str(config)],
                              capture_output=True, encoding="utf-8", timeout=60)
    database = tmp_path / "events.db"
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        f"outbox {database}: schema version 2, 3 events, {database.stat().st_size / 1000:.0f} kB + 0 kB "
        "write-ahead log\n"
        "delivered and dead events older than 30 days are pruned\n"
        "  sink     pending  delivered  dead  oldest pending\n"
        "  hook           1          1     1           2h 5m\n"
        "  archive        0          3     0               -\n"
        "  quiet          0          0     0               -\n"
        "  all            1          4     1           2h 5m\n")


def test_keep_days_defaults_to_30_and_must_be_a_positive_number_of_days(tmp_path):
    base = '[server]\nlisten = "127.0.0.1:8290"\n[smartertrack]\nweb_service_password = "x"\n[events]\n'
    path = tmp_path / "ssobridge.toml"
    read = {}
    for keep in ("", "keep_days = 7\n", "keep_days = 0\n", "keep_days = 1.5\n"):
        path.write_text(base + keep, encoding="utf-8")
        try:
            read[keep] = load(path).events.keep_days
        except ConfigError as e:
            read[keep] = e.problems
    assert read == {"": 30, "keep_days = 7\n": 7, "keep_days = 0\n": ["events.keep_days: must be greater than 0"],
                    "keep_days = 1.5\n": ["events.keep_days: must be a whole number, not 1.5"]}
