"""GetUserDetails (providers/userinfo.py) with its card store (a real SQLite file, a clock the test moves) and a
FAKE directory set (real UserEntry objects), so that the rules are checked in milliseconds: at most cache_size
cards, fresh for cache_seconds, the last card in an outage for stale_seconds, for every provider sharing the
store (the workers of a host); lookups on a few daemon threads with a bounded queue.
tests/test_user_details.py proves the cards themselves on real directories, over several workers.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing

import pytest

from ssobridge.cards import CardStore
from ssobridge.cards.store import VIEW_RESOLUTION_SECONDS
from ssobridge.config import UserInfoSettings
from ssobridge.directory import AccountState, Finding, Outcome, UserEntry
from ssobridge.providers.userinfo import FOUND, NOT_FOUND, LookupPool, UserInfoProvider

NOTICE = "Directory information is not available right now."


class Clock:
    def __init__(self):
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeDirectory:
    def account_state(self, entry: UserEntry) -> AccountState:
        return AccountState.OK


class FakeDirectorySet:
    """Everybody whose login starts with "user" exists, with a displayName; `gate` (when set) holds each
    lookup until it opens."""

    def __init__(self, gate: threading.Event | None = None):
        self.finds: list[str] = []
        self.gate = gate
        self.down = False  # True: every find finds the directory unavailable
        self.running = self.most_running = 0
        self._lock = threading.Lock()

    def find(self, username=None, email=None):
        with self._lock:
            self.finds.append(username)
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            if self.down:
                return Finding(Outcome.UNAVAILABLE, error="every server of example is down")
            if self.gate is not None:
                self.gate.wait(5)
            if not username.startswith("user"):
                return Finding(Outcome.NOT_FOUND)
            entry = UserEntry(f"uid={username},dc=example,dc=org", {"displayname": (username.title().encode(),)},
                              "ldaps://fake")
            return Finding(Outcome.FOUND, FakeDirectory(), entry)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    """A card store as a worker opens it; settings give its bounds to `provider` (cache_size, stale_seconds)."""
    def open_store(cache_size=10_000, stale_seconds=86400.0):
        return CardStore(tmp_path / "cards.db", cache_size, stale_seconds, clock)
    return open_store


def provider(directories, cards: CardStore | None = None, **settings) -> UserInfoProvider:
    return UserInfoProvider(directories, UserInfoSettings(fields=("display_name",), **settings), cards,
                            LookupPool(workers=2, backlog=2))


def details(provider: UserInfoProvider, username: str):
    return provider.user_details({"username": username})


def stored_keys(provider: UserInfoProvider) -> list[str]:
    with closing(sqlite3.connect(provider.cards.path)) as db:
        return sorted(key for key, in db.execute("SELECT key FROM user_cards"))


def test_the_store_keeps_at_most_cache_size_cards_the_least_recently_viewed_go_first(store, clock):
    directories = FakeDirectorySet()
    cards = provider(directories, store(cache_size=3), cache_seconds=3600, cache_size=3)
    for name in ("user1", "user2", "user3", "user1", "user4", "nobody"):
        assert details(cards, name).message == (FOUND if name != "nobody" else NOT_FOUND)
        clock.now += VIEW_RESOLUTION_SECONDS
    assert stored_keys(cards) == ["nobody|", "user1|", "user4|"]
    assert directories.finds == ["user1", "user2", "user3", "user4", "nobody"]  # user1 came from the store
    for name in ("user1", "user4", "nobody"):  # the three viewed last: still stored
        details(cards, name)
    assert directories.finds[5:] == []
    assert "User2" in details(cards, "user2").html
    assert directories.finds[5:] == ["user2"]  # it had gone, so it was looked up again


def test_a_card_is_fresh_for_cache_seconds_then_looked_up_again_and_gone_after_stale_seconds(store, clock):
    directories = FakeDirectorySet()
    cards = provider(directories, store(stale_seconds=200), cache_seconds=50, stale_seconds=200)
    details(cards, "user1")
    clock.now += 49
    details(cards, "user1")
    assert directories.finds == ["user1"]
    clock.now += 1  # no longer fresh: looked up again (and stored again)
    details(cards, "user1")
    assert directories.finds == ["user1", "user1"]
    directories.down = True
    clock.now += 199
    assert "Shown as of" in details(cards, "user1").html
    clock.now += 1
    notice = details(cards, "user1").html
    assert notice.count(NOTICE) == 1 and "User1" not in notice
    assert stored_keys(cards) == []


def test_every_worker_sharing_the_store_answers_the_same_card_fresh_and_in_an_outage(store, clock):
    """Two providers on one store file: the workers of one host."""
    directories = FakeDirectorySet()
    one, other = (provider(directories, store(), cache_seconds=60, time_zone="Europe/Berlin") for _ in range(2))
    first = details(one, "user1").html
    assert details(other, "user1").html == first and directories.finds == ["user1"]  # fresh from the store
    clock.now += 60
    directories.down = True
    stale = details(other, "user1").html
    assert stale == details(one, "user1").html
    assert f"{NOTICE} Shown as of 2023-11-14 23:13." in stale and "User1" in stale  # the card, in Berlin time
    assert details(other, "nobody").html.count(NOTICE) == 1  # never looked up: the notice alone


def test_a_card_made_with_other_settings_is_looked_up_again_and_shown_in_an_outage(store):
    directories = FakeDirectorySet()
    details(provider(directories, store(), cache_seconds=3600), "user1")
    changed = UserInfoProvider(directories, UserInfoSettings(fields=("display_name", "account_state"),
                                                             cache_seconds=3600), store())
    assert "enabled" in details(changed, "user1").html
    assert directories.finds == ["user1", "user1"]  # the stored card lacked the new field
    directories.down = True  # the first settings again (a reload back): the stored card is the changed one's
    stale = details(provider(directories, store(), cache_seconds=3600), "user1").html
    assert f"{NOTICE} Shown as of" in stale and "enabled" in stale


def test_lookups_run_on_a_bounded_pool_and_beyond_its_queue_a_view_gets_the_notice_at_once(store):
    gate = threading.Event()
    directories = FakeDirectorySet(gate)
    cards = provider(directories, store(), latency_budget_ms=20)
    try:
        for name in ("user1", "user2", "user3", "user4"):  # two running, two waiting in the queue
            assert NOTICE in details(cards, name).html
        timings = []
        for name in ("user5", "user6", "user7"):
            started = time.monotonic()
            assert NOTICE in details(cards, name).html
            timings.append(time.monotonic() - started)
        assert max(timings) < 0.015  # no wait for the latency budget: the queue was full
        assert directories.most_running == 2
        workers = [t for t in threading.enumerate() if t.name.startswith("ssobridge-card-")]
        assert len(workers) >= 2 and all(t.daemon for t in workers)  # never holds up shutdown
    finally:
        gate.set()
    deadline = time.monotonic() + 2
    while len(stored_keys(cards)) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stored_keys(cards) == ["user1|", "user2|", "user3|", "user4|"]
    assert sorted(directories.finds) == ["user1", "user2", "user3", "user4"]
