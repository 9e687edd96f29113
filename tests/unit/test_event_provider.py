"""NotifyEventFired's decisions: pure logic, with the outbox replaced where it must fail."""

import sqlite3

from ssobridge.config import SinkSettings
from ssobridge.events.store import EventStore, backoff
from ssobridge.providers.base import Variables
from ssobridge.providers.events import EventProvider


class BrokenStore:
    def add(self, *args):
        raise sqlite3.OperationalError("disk I/O error")


def test_an_event_that_cannot_be_stored_is_not_acknowledged():
    provider = EventProvider(BrokenStore(), (), lambda: None)
    result = provider.notify_event_fired(Variables.from_pairs([("eventType", "502000")]))
    assert result.success is False
    assert result.message == "The event could not be stored: disk I/O error"


def test_sinks_filter_by_id_or_name_and_the_event_is_stored_once(tmp_path):
    store = EventStore(tmp_path / "events.db")
    sinks = (SinkSettings("all", "jsonl"), SinkSettings("tickets", "jsonl", event_types=("ticket created",)),
             SinkSettings("chats", "jsonl", event_types=("511000",)))
    woken = []
    provider = EventProvider(store, sinks, lambda: woken.append(1))
    result = provider.notify_event_fired(Variables.from_pairs([("EventType", "502000"), ("Args_Ticket", "A-1")]))
    assert result.success and result.message == "Event Notification Successful" and woken == [1]
    [(event, states)] = store.recent()
    assert (event.event_type, event.event_name, event.args) == ("502000", "Ticket Created", {"Ticket": "A-1"})
    assert [(sink, state) for sink, state, _, _ in states] == [("all", "pending"), ("tickets", "pending")]


def test_backoff_doubles_up_to_the_cap():
    assert [backoff(n, 2, 30) for n in (1, 2, 3, 4, 5, 6)] == [2, 4, 8, 16, 30, 30]
