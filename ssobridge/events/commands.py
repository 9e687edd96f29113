"""`ssobridge events list|tail|stats|retry`: what arrived, what is pending or dead, and a second chance."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TextIO

from ..config import Config
from .store import Event, EventStore, OutboxStats


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
        if action == "stats":
            _print_stats(store.stats(), config.events.database, config.events.keep_days,
                         [s.name for s in config.events.sinks], out)
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


def _print_stats(stats: OutboxStats, database: str, keep_days: int, configured: list[str], out: TextIO) -> None:
    """A table by sink (configured ones first, then any left in the database by a removed sink)."""
    print(f"outbox {database}: schema version {stats.version}, {stats.events} event{'' if stats.events == 1 else 's'}, "
          f"{_megabytes(stats.database_bytes)} + {_megabytes(stats.wal_bytes)} write-ahead log", file=out)
    print(f"delivered and dead events older than {keep_days} days are pruned", file=out)
    now = datetime.now(timezone.utc)
    rows = [("sink", "pending", "delivered", "dead", "oldest pending")]
    totals = [0, 0, 0]
    for sink in configured + [s for s in stats.sinks if s not in configured]:
        counts = stats.sinks.get(sink, (0, 0, 0))
        totals = [t + c for t, c in zip(totals, counts)]
        oldest = stats.oldest_pending.get(sink)
        rows.append((sink, *map(str, counts), _age(now - datetime.fromisoformat(oldest)) if oldest else "-"))
    oldest_all = min(stats.oldest_pending.values(), default=None)
    rows.append(("all", *map(str, totals), _age(now - datetime.fromisoformat(oldest_all)) if oldest_all else "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print(f"  {row[0]:<{widths[0]}}" + "".join(f"  {cell:>{width}}" for cell, width in zip(row[1:], widths[1:])),
              file=out)


def _age(delta) -> str:
    """The two largest units: 3d 4h, 2h 5m, 5m 12s, 42s."""
    seconds = max(0, int(delta.total_seconds()))
    parts = [(seconds // 86400, "d"), (seconds // 3600 % 24, "h"), (seconds // 60 % 60, "m"), (seconds % 60, "s")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    return " ".join(f"{n}{unit}" for n, unit in parts[:2])


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 1_000_000 else f"{size / 1000:.0f} kB"
