"""GetUserDetails' memory and threads stay bounded (providers/userinfo.py): at most cache_size cards are kept,
and lookups run on a few daemon threads with a bounded queue, with a FAKE directory set (real UserEntry
objects) so that the bounds are checked in milliseconds. tests/test_user_details.py proves the cards
themselves on real directories.
"""

from __future__ import annotations

import threading
import time

from ssobridge.config import UserInfoSettings
from ssobridge.directory import AccountState, UserEntry
from ssobridge.providers.userinfo import FOUND, NOT_FOUND, LookupPool, UserInfoProvider

NOTICE = "Directory information is not available right now."


class FakeDirectory:
    def account_state(self, entry: UserEntry) -> AccountState:
        return AccountState.OK


class FakeDirectorySet:
    """Everybody whose login starts with "user" exists, with a displayName; `gate` (when set) holds each
    lookup until it opens."""

    def __init__(self, gate: threading.Event | None = None):
        self.finds: list[str] = []
        self.gate = gate
        self.running = self.most_running = 0
        self._lock = threading.Lock()

    def find(self, username=None, email=None):
        with self._lock:
            self.finds.append(username)
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            if self.gate is not None:
                self.gate.wait(5)
            if not username.startswith("user"):
                return None
            entry = UserEntry(f"uid={username},dc=example,dc=org", {"displayname": (username.title().encode(),)},
                              "ldaps://fake")
            return FakeDirectory(), entry
        finally:
            with self._lock:
                self.running -= 1


def provider(directories, **settings) -> UserInfoProvider:
    return UserInfoProvider(directories, UserInfoSettings(fields=("display_name",), **settings),
                            LookupPool(workers=2, backlog=2))


def details(provider: UserInfoProvider, username: str):
    return provider.user_details({"username": username})


def test_the_card_cache_keeps_at_most_cache_size_cards_the_least_recently_viewed_go_first():
    directories = FakeDirectorySet()
    cards = provider(directories, cache_size=3)
    for name in ("user1", "user2", "user3", "user1", "user4", "nobody"):
        assert details(cards, name).message == (FOUND if name != "nobody" else NOT_FOUND)
    assert len(cards._cache) == 3
    assert directories.finds == ["user1", "user2", "user3", "user4", "nobody"]  # user1 came from the cache
    for name in ("user1", "user4", "nobody"):  # the three viewed last: still cached
        details(cards, name)
    assert directories.finds[5:] == []
    assert "User2" in details(cards, "user2").html
    assert directories.finds[5:] == ["user2"]  # it had gone, so it was looked up again


def test_a_card_is_dropped_after_stale_seconds_and_judged_fresh_by_cache_seconds():
    directories = FakeDirectorySet()
    cards = provider(directories, cache_seconds=0.05, stale_seconds=0.2)
    details(cards, "user1")
    details(cards, "user1")
    assert directories.finds == ["user1"]
    time.sleep(0.1)  # no longer fresh: looked up again (and cached again)
    details(cards, "user1")
    assert directories.finds == ["user1", "user1"]
    time.sleep(0.25)
    assert len(cards._cache) == 0


def test_lookups_run_on_a_bounded_pool_and_beyond_its_queue_a_view_gets_the_notice_at_once():
    gate = threading.Event()
    directories = FakeDirectorySet(gate)
    cards = provider(directories, latency_budget_ms=20)
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
    while len(cards._cache) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(cards._cache) == ["user1|", "user2|", "user3|", "user4|"]
    assert sorted(directories.finds) == ["user1", "user2", "user3", "user4"]
