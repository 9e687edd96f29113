"""`ssobridge events list|tail|retry`: what arrived, what is pending or dead, and a second chance."""

from __future__ import annotations

import time
from typing import TextIO

from ..config import Config
from .store import Event, EventStore


def events_command(config: Config, action: str, limit: int, sink: str | None, out: TextIO) -> int:
    if config.events is None:
        print("no [events] table in the config: the event provider is not enabled", file=out)
        return 2
    store = EventStore(config.events.database)
    try:
        if action == "retry":
            count = store.retry_dead(sink)
            print(f"{count} dead deliver{'y' if count == 1 else 'ies'} back to pending"
                  f"{' for sink ' + sink if sink else ''}; the running service delivers them", file=out)
            return 0
        if action == "list":
            print(f"outbox {config.events.database}", file=out)
            for sink_name, state, count in store.summary():
                print(f"  {sink_name}: {count} {state}", file=out)
            for event, states in store.recent(limit):
                _print_event(event, states, out)
            return 0
        last = 0
        for event, states in store.recent(limit):
            _print_event(event, states, out)
            last = event.id
        while True:  # tail: until Ctrl+C
            for event, states in store.recent(after_id=last):
                _print_event(event, states, out)
                last = event.id
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    finally:
        store.close()


def _print_event(event: Event, states: list[tuple[str, str, int, str]], out: TextIO) -> None:
    args = " ".join(f"{k}={v!r}" for k, v in event.args.items())
    print(f"#{event.id} {event.received_at} {event.event_type} {event.event_name} {event.idempotency_key} {args}",
          file=out, flush=True)
    for sink, state, attempts, error in states:
        print(f"    {sink}: {state} after {attempts} tr{'y' if attempts == 1 else 'ies'}"
              + (f" ({error})" if error and state != "delivered" else ""), file=out, flush=True)
