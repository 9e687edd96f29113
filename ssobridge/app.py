"""Wiring: from a validated Config to the WSGI application and the directories it uses."""

from __future__ import annotations

import logging
import sys

from .config import Config
from .directory import Directory, DirectorySet
from .providers import Bridge
from .wire import Endpoint


def build(config: Config, directories: DirectorySet | None = None) -> tuple[Endpoint, DirectorySet]:
    """The endpoint for `config`; `directories` replaces the configured ones (the demo's sample directory)."""
    extra = config.policy.attributes()
    directories = directories or DirectorySet([Directory(settings, extra_attributes=extra)
                                               for settings in config.directories])
    bridge = Bridge(config, directories)
    endpoint = Endpoint(bridge, config.server.public_url, config.server.max_body_bytes, config.server.max_variables)
    return endpoint, directories


def configure_logging(level: str) -> None:
    """One line per event on stderr (spyne's own logging is silenced by the wire layer)."""
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
