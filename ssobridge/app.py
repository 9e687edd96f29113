"""Wiring: from a validated Config to the WSGI application and what it uses (directories, event outbox)."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

from .config import Config
from .directory import DirectorySet
from .events.delivery import Forwarder
from .events.store import EventStore
from .lockout import Shield, Store
from .providers import Bridge
from .providers.events import EventProvider
from .providers.userinfo import CARD_ATTRIBUTES
from .wire import Endpoint


@dataclass
class Runtime:
    endpoint: Endpoint
    directories: DirectorySet
    forwarder: Forwarder | None = None
    store: EventStore | None = None

    def start(self) -> None:
        if self.forwarder is not None:
            self.forwarder.start()

    def close(self) -> None:
        if self.forwarder is not None:
            self.forwarder.stop()
        if self.store is not None:
            self.store.close()
        self.directories.close()


def build(config: Config, directories: DirectorySet | None = None) -> Runtime:
    """Everything `serve` runs; `directories` replaces the configured ones (the demo's sample directory)."""
    extra = config.policy.attributes() + (CARD_ATTRIBUTES if config.user_info else ())
    directories = directories or DirectorySet.from_settings(config.directories, extra,
                                                                data_dir=config.server.data_dir)
    store = forwarder = events = None
    if config.events is not None:
        store = EventStore(config.events.database)
        forwarder = Forwarder(store, config.events.sinks, config.events.max_attempts,
                              config.events.retry_initial_seconds, config.events.retry_max_seconds)
        events = EventProvider(store, config.events.sinks, forwarder.notify)
    bridge = Bridge(config, directories, events, shield(config))
    endpoint = Endpoint(bridge, config.server.public_url, config.server.max_body_bytes, config.server.max_variables)
    return Runtime(endpoint, directories, forwarder, store)


def shield(config: Config) -> Shield | None:
    """The lockout shield of the config, its state in the [server] data_dir; None when [lockout] is off."""
    if not config.lockout.enabled or not config.directories:
        return None
    return Shield(config.lockout, Store(config.server.data_dir))


def configure_logging(level: str) -> None:
    """One line per event on stderr (spyne's own logging is silenced by the wire layer)."""
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
