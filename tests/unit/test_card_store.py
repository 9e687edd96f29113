"""The user card store (cards/store.py) on real SQLite files, with a clock the test moves: what two workers
share, what survives a restart, the bounds (size, keep_seconds, the view resolution), the file's mode and
a database that fails. tests/test_user_details.py proves the same through `ssobridge serve` and a real
directory.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from contextlib import closing

import pytest

from ssobridge.cards import CardStore, StoredCard
from ssobridge.cards import store
from ssobridge.cards.store import VIEW_RESOLUTION_SECONDS


class Clock:
    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def rows(path) -> dict[str, tuple[float, float]]:
    """key -> (written, used), read from the file as another process would."""
    with closing(sqlite3.connect(path)) as db:
        return {key: (written, used) for key, written, used in db.execute("SELECT key, written, used FROM user_cards")}


def test_a_card_one_worker_stored_is_read_by_another_and_after_a_restart(tmp_path, clock):
    path = tmp_path / "cards.db"
    first, second = CardStore(path, 10, 3600, clock), CardStore(path, 10, 3600, clock)
    first.put("zoe|", "form-1", "<p>Zoe</p>", '{"fields": []}')
    clock.now += 5
    assert second.get("zoe|") == StoredCard("form-1", clock.now - 5, 5.0, "<p>Zoe</p>", '{"fields": []}')
    first.close()
    second.close()
    assert CardStore(path, 10, 3600, clock).get("zoe|").html == "<p>Zoe</p>"


def test_a_customer_not_in_the_directory_is_stored_as_such(tmp_path, clock):
    store = CardStore(tmp_path / "cards.db", 10, 3600, clock)
    store.put("nobody|", "form-1", "", None)
    assert store.get("nobody|") == StoredCard("form-1", clock.now, 0.0, "", None)
    assert store.get("somebody-else|") is None


def test_a_newer_card_replaces_the_stored_one(tmp_path, clock):
    store = CardStore(tmp_path / "cards.db", 10, 3600, clock)
    store.put("zoe|", "form-1", "<p>old</p>", "{}")
    clock.now += 100
    store.put("zoe|", "form-2", "<p>new</p>", "{}")
    assert store.get("zoe|") == StoredCard("form-2", clock.now, 0.0, "<p>new</p>", "{}")
    assert list(rows(store.path)) == ["zoe|"]


def test_at_most_size_cards_are_kept_the_least_recently_written_or_viewed_go_first(tmp_path, clock):
    store = CardStore(tmp_path / "cards.db", 3, 3600, clock)
    for key in ("a|", "b|", "c|"):
        store.put(key, "f", key, None)
        clock.now += 1
    clock.now += VIEW_RESOLUTION_SECONDS
    assert store.get("a|") is not None  # viewed: now more recent than b and c
    store.put("d|", "f", "d", None)
    assert sorted(rows(store.path)) == ["a|", "c|", "d|"]
    clock.now += 1
    store.put("e|", "f", "e", None)
    assert sorted(rows(store.path)) == ["a|", "d|", "e|"]


def test_a_view_moves_a_card_up_at_most_once_per_view_resolution(tmp_path, clock):
    store = CardStore(tmp_path / "cards.db", 10, 3600, clock)
    store.put("zoe|", "f", "zoe", None)
    written = clock.now
    clock.now += VIEW_RESOLUTION_SECONDS - 1
    store.get("zoe|")
    assert rows(store.path) == {"zoe|": (written, written)}  # not one write per view
    clock.now += 1
    store.get("zoe|")
    assert rows(store.path) == {"zoe|": (written, written + VIEW_RESOLUTION_SECONDS)}


def test_cards_older_than_keep_seconds_are_gone_at_a_view_a_write_and_a_start(tmp_path, clock):
    path = tmp_path / "cards.db"
    store = CardStore(path, 10, 100, clock)
    for key in ("a|", "b|", "c|"):
        store.put(key, "f", key, None)
        clock.now += 30
    clock.now = clock.now - 90 + 100  # a is 100 s old, b 70, c 40
    assert store.get("a|") is None
    assert sorted(rows(path)) == ["b|", "c|"]
    clock.now += 30  # b is 100 s old
    store.put("d|", "f", "d", None)
    assert sorted(rows(path)) == ["c|", "d|"]
    clock.now += 30  # c is 100 s old
    CardStore(path, 10, 100, clock)
    assert sorted(rows(path)) == ["d|"]


def test_the_file_and_its_journal_are_private_whatever_the_umask(tmp_path, clock):
    previous = os.umask(0)
    try:
        store = CardStore(tmp_path / "data" / "cards.db", 10, 3600, clock)
        store.put("zoe|", "f", "<p>Zoe</p>", "{}")
        files = sorted(p.name for p in (tmp_path / "data").iterdir())
        modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "data").iterdir()}
    finally:
        os.umask(previous)
    assert files == ["cards.db", "cards.db-shm", "cards.db-wal"]
    assert modes == {name: 0o600 for name in files}


def test_the_demo_store_in_memory_keeps_the_same_rules(clock):
    store = CardStore(None, 2, 100, clock)
    for key in ("a|", "b|", "c|"):
        store.put(key, "f", key, None)
        clock.now += 1
    assert [store.get(key) is not None for key in ("a|", "b|", "c|")] == [False, True, True]
    clock.now += 100
    assert store.get("c|") is None


def test_a_failing_database_reads_as_not_stored_and_is_logged_once_a_minute(tmp_path, clock, caplog):
    store = CardStore(tmp_path / "cards.db", 10, 3600, clock)
    store.put("zoe|", "f", "zoe", None)
    with closing(sqlite3.connect(tmp_path / "cards.db")) as db:
        db.execute("DROP TABLE user_cards")
    with caplog.at_level(logging.WARNING, logger="ssobridge.userinfo"):
        assert store.get("zoe|") is None
        store.put("ann|", "f", "ann", None)
        assert store.get("ann|") is None
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("event=card_store_error action=read file=") and "no such table: user_cards" in line


@pytest.mark.parametrize("statement, arguments, plan", [
    (store.READ, ("zoe|",), ["SEARCH user_cards USING INDEX sqlite_autoindex_user_cards_1 (key=?)"]),
    (store.PRUNE_OLD, (0.0,), ["SEARCH user_cards USING INDEX user_cards_by_written (written<?)"]),
    (store.PRUNE_LEAST_USED, (1,), ["SEARCH user_cards USING INDEX sqlite_autoindex_user_cards_1 (key=?)",
                                    "LIST SUBQUERY 1", "SCAN user_cards USING INDEX user_cards_by_used"]),
])
def test_reads_and_pruning_go_through_an_index_never_a_sort_of_the_whole_store(tmp_path, clock, statement, arguments,
                                                                                 plan):
    """Each lookup's write prunes: with 10,000 cards a sort of every row would cost each lookup tens of ms."""
    CardStore(tmp_path / "cards.db", 10, 3600, clock)
    with closing(sqlite3.connect(tmp_path / "cards.db")) as db:
        assert [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {statement}", arguments)] == plan
