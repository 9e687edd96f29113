"""NotifyEventFired: SmarterTrack's event notifications, stored durably before they are acknowledged."""

from __future__ import annotations

import logging
import sqlite3
from typing import Callable

from ..config import SinkSettings
from ..events.store import EventStore
from ..events.types import event_name
from .base import ProviderResult, Variables, refused

log = logging.getLogger("ssobridge.events")

ARGUMENT_PREFIX = "args_"


class EventProvider:
    def __init__(self, store: EventStore, sinks: tuple[SinkSettings, ...], stored: Callable[[], None]):
        self.store = store
        self.sinks = sinks
        self.stored = stored  # wakes the delivery workers

    def notify_event_fired(self, variables: Variables) -> ProviderResult:
        event_type = (variables.get("eventType") or "").strip()
        if not event_type:
            return refused("Required Input Missing: eventType")
        args = {variables.names[key][len(ARGUMENT_PREFIX):]: value for key, value in variables.values.items()
                if key.startswith(ARGUMENT_PREFIX)}
        name = event_name(event_type)
        sinks = [sink.name for sink in self.sinks if sink.wants(event_type, name)]
        try:
            event = self.store.add(event_type, name, args, sinks)
        except sqlite3.Error as e:
            # Not acknowledged, so SmarterTrack's side knows this event was not taken.
            log.error("event=event_not_stored type=%s error=%r", event_type, str(e))
            return refused(f"The event could not be stored: {e}")
        log.info("event=event_stored type=%s name=%r id=%s sinks=%s", event_type, name, event.idempotency_key,
                 ",".join(sinks) or "none")
        self.stored()
        return ProviderResult(True, "Event Notification Successful")
