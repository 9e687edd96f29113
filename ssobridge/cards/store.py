"""The user card store: the cards GetUserDetails shows, shared by every worker process of the host.

One SQLite database in [server] data_dir (ssobridge-cards.db, WAL: a view reads while another process
writes), so a card one worker looked up is fresh for every worker, and the last card known is there in an
outage for every worker and after a restart. Bounded: at most `size` cards, the least recently written or
viewed going first, and none older than `keep_seconds` (gone from the file at the next write, at the next
view of it, or at the next start). It holds directory data (names, phone numbers, photos): the file is
created with mode 0600, and SQLite gives its -wal and -shm files the mode of the database. The demo (no
data_dir) keeps its store in memory.

Times are the wall clock (epoch seconds): they are compared across processes and restarts.
A cache, not a record: a database error is logged (at most once a minute) and the view goes on as if
the card were not stored.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

log = logging.getLogger("ssobridge.userinfo")

DATABASE = "ssobridge-cards.db"  # in [server] data_dir
# A view moves a card up the eviction order at most this often: a popular card is not one write per view.
VIEW_RESOLUTION_SECONDS = 10.0
ERROR_LOG_SECONDS = 60.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS user_cards (
    key TEXT PRIMARY KEY,   -- "username|email" as asked, lower case
    form TEXT NOT NULL,     -- the rendering settings that made html (UserInfoProvider.form)
    written REAL NOT NULL,  -- when the directory answered it
    used REAL NOT NULL,     -- when it was last written or viewed (to VIEW_RESOLUTION_SECONDS)
    html TEXT NOT NULL,     -- the card as shown; "" for a customer not in the directory
    card TEXT               -- its data (JSON), to show it marked as old in an outage; NULL: not in the directory
);
CREATE INDEX IF NOT EXISTS user_cards_by_used ON user_cards (used);
CREATE INDEX IF NOT EXISTS user_cards_by_written ON user_cards (written);
"""
READ = "SELECT form, written, used, html, card FROM user_cards WHERE key = ?"
WRITE = ("INSERT INTO user_cards (key, form, written, used, html, card) VALUES (?1, ?2, ?3, ?3, ?4, ?5) "
         "ON CONFLICT (key) DO UPDATE SET form = excluded.form, written = excluded.written, used = excluded.used, "
         "html = excluded.html, card = excluded.card")
VIEWED = "UPDATE user_cards SET used = ?2 WHERE key = ?1 AND used < ?2"
FORGET = "DELETE FROM user_cards WHERE key = ? AND written <= ?"
PRUNE_OLD = "DELETE FROM user_cards WHERE written <= ?"
COUNT = "SELECT COUNT(*) FROM user_cards"  # SQLite counts a table's b-tree without reading its rows
# The n least recently used: read from user_cards_by_used, so only n rows are touched.
PRUNE_LEAST_USED = "DELETE FROM user_cards WHERE key IN (SELECT key FROM user_cards ORDER BY used LIMIT ?)"


@dataclass(frozen=True)
class StoredCard:
    form: str
    written: float  # epoch seconds
    age: float  # seconds since written, when it was read
    html: str
    card: str | None


class CardStore:
    def __init__(self, path: str | Path | None, size: int, keep_seconds: float,
                 clock: Callable[[], float] = time.time):
        """path None: in memory, for this process only (the demo)."""
        self.path = Path(path) if path is not None else None
        self.size, self.keep_seconds, self.clock = size, keep_seconds, clock
        self._local = threading.local()
        self._memory: sqlite3.Connection | None = None
        self._memory_lock = threading.Lock()
        self._last_error_logged = -ERROR_LOG_SECONDS
        self._errors_not_logged = 0
        if self.path is None:
            self._memory = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))  # private before SQLite writes a byte
        with self._connection() as db:
            db.executescript(SCHEMA)  # IF NOT EXISTS: every worker may run it
            db.execute(PRUNE_OLD, (self.clock() - keep_seconds,))

    def get(self, key: str) -> StoredCard | None:
        """The card stored for `key`, if younger than keep_seconds; the view is noted for the eviction order."""
        try:
            with self._connection() as db:
                now = self.clock()
                row = db.execute(READ, (key,)).fetchone()
                if row is None:
                    return None
                form, written, used, html, card = row
                if now - written >= self.keep_seconds:
                    db.execute(FORGET, (key, written))
                    return None
                if now - used >= VIEW_RESOLUTION_SECONDS:
                    db.execute(VIEWED, (key, now))
                return StoredCard(form, written, now - written, html, card)
        except sqlite3.Error as e:
            self._failed("read", e)
            return None

    def put(self, key: str, form: str, html: str, card: str | None) -> None:
        """Store the card the directory just gave; then drop cards too old, and the least recently used
        beyond `size`."""
        try:
            with self._connection() as db:
                now = self.clock()
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.execute(WRITE, (key, form, now, html, card))
                    db.execute(PRUNE_OLD, (now - self.keep_seconds,))
                    beyond = db.execute(COUNT).fetchone()[0] - self.size
                    if beyond > 0:
                        db.execute(PRUNE_LEAST_USED, (beyond,))
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
        except sqlite3.Error as e:
            self._failed("write", e)

    def close(self) -> None:
        """This thread's connection (the one, in memory)."""
        db = self._memory if self._memory is not None else getattr(self._local, "db", None)
        if db is not None:
            db.close()
        self._memory = self._local.db = None

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A file: this thread's connection (SQLite connections are per thread). In memory: the one
        connection, one thread at a time."""
        if self._memory is not None:
            with self._memory_lock:
                yield self._memory
            return
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=5, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # a cache: the last writes may go with a power cut
            self._local.db = db
        yield db

    def _failed(self, action: str, error: sqlite3.Error) -> None:
        now = time.monotonic()
        if now - self._last_error_logged < ERROR_LOG_SECONDS:
            self._errors_not_logged += 1
            return
        log.warning("event=card_store_error action=%s file=%s error=%r errors_not_logged=%d note=%r", action,
                    self.path or ":memory:", str(error), self._errors_not_logged,
                    "cards are looked up in the directory as if not stored")
        self._last_error_logged, self._errors_not_logged = now, 0
