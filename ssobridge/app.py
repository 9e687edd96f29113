"""Wiring: from a validated Config to the WSGI application and what it uses (directories, event outbox)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .cards import DATABASE as CARDS_DATABASE
from .cards import CardStore
from .certificates import certificate_expiries
from .config import Config, ConfigError
from .directory import DirectorySet
from .events.delivery import Forwarder
from .events.leader import LeaderLock
from .events.store import EventStore
from .health import Readiness, healthz
from .lockout import Shield, Store
from .metrics import MetricsPage, StateCollector, metrics_off
from .providers import Bridge
from .providers.events import EventProvider
from .providers.login import LoginProvider
from .providers.userinfo import CARD_ATTRIBUTES
from .sso import kerberos
from .sso.web import SIGN_IN_ATTRIBUTES, SignIn
from .wire import Endpoint


@dataclass
class Runtime:
    endpoint: Callable  # the WSGI application: the SOAP Endpoint, with /sso/ routed to the sign-in site
    directories: DirectorySet
    forwarder: Forwarder | None = None
    store: EventStore | None = None

    def start(self) -> None:
        if self.forwarder is not None:
            self.forwarder.start()
        if self.store is not None:
            self.store.start_pruning()

    def retire(self) -> None:
        """Replaced by a reload: stop delivering events (the leader lock goes to the new runtime, or to
        another worker) while requests already on this runtime finish; close() follows."""
        if self.forwarder is not None:
            self.forwarder.stop()

    def close(self) -> None:
        self.retire()
        if self.store is not None:
            self.store.close()
        self.directories.close()


def build(config: Config, directories: DirectorySet | None = None) -> Runtime:
    """Everything `serve` runs; `directories` replaces the configured ones (the demo's sample directory)."""
    extra = config.policy.attributes() + (CARD_ATTRIBUTES if config.user_info else ()) \
        + (SIGN_IN_ATTRIBUTES if config.sso.enabled else ())
    directories = directories or DirectorySet.from_settings(config.directories, extra,
                                                                data_dir=config.server.data_dir)
    store = forwarder = events = None
    if config.events is not None:
        store = EventStore(config.events.database, config.events.keep_days)
        forwarder = Forwarder(store, config.events.sinks, config.events.max_attempts,
                              config.events.retry_initial_seconds, config.events.retry_max_seconds,
                              LeaderLock(config.events.database))
        events = EventProvider(store, config.events.sinks, forwarder.notify)
    lockouts = shield(config)
    bridge = Bridge(config, directories, events, lockouts, card_store(config))
    endpoint = Endpoint(bridge, config.server.public_url, config.server.max_body_bytes, config.server.max_variables,
                        operations_routes(config, directories, lockouts, store))
    if config.sso.enabled:
        sign_in = SignIn(config.sso, LoginProvider(directories, config.messages, config.login, lockouts), directories,
                         config.server.data_dir)
        endpoint = with_sign_in(endpoint, sign_in)
    return Runtime(endpoint, directories, forwarder, store)


def require_installed(config: Config) -> None:
    """Refuse a config that needs what this installation lacks, as a config problem (ConfigError): serve, check
    and reload call it after load(). Here, not in config/: whether a module imports is a fact of the machine,
    not of the file, and the config reader imports no layer."""
    problems = []
    if config.sso.enabled and config.sso.kerberos_keytab:
        missing = kerberos.missing_modules()
        if missing:
            problems.append(f"sso.kerberos_keytab: Kerberos sign-in needs ssobridge's kerberos extra, and "
                            f"{', '.join(missing)} cannot be imported here: install it with "
                            f"{kerberos.INSTALL_EXTRA}, or leave kerberos_keytab out (the sign-in form only)")
    if problems:
        raise ConfigError(problems)


def with_sign_in(endpoint: Callable, sign_in: Callable) -> Callable:
    """The one place /sso/ is routed: paths under it go to the sign-in site, everything else to the SOAP Endpoint."""
    def application(environ: dict, start_response: Callable):
        path = environ.get("PATH_INFO", "").lower()
        return (sign_in if path == "/sso" or path.startswith("/sso/") else endpoint)(environ, start_response)
    return application


def operations_routes(config: Config, directories: DirectorySet, lockouts: Shield | None,
                      store: EventStore | None) -> dict:
    """GET /healthz, /readyz and /metrics (see health.py and metrics.py)."""
    routes = {"/healthz": healthz, "/readyz": Readiness(directories), "/metrics": metrics_off}
    if config.server.metrics:
        sinks = [sink.name for sink in config.events.sinks] if config.events else []

        def outbox() -> dict[str, tuple[int, int]]:
            counts = store.stats().sinks
            return {sink: (counts.get(sink, (0, 0, 0))[0], counts.get(sink, (0, 0, 0))[2]) for sink in sinks}

        state = StateCollector(soft_locked=(lambda: len(lockouts.lockouts())) if lockouts else None,
                               outbox=outbox if store else None,
                               certificates=lambda: certificate_expiries(directories, config.server.tls_cert))
        routes["/metrics"] = MetricsPage(state, config.server.metrics_token)
    return routes


def shield(config: Config) -> Shield | None:
    """The lockout shield of the config, its state in the [server] data_dir; None when [lockout] is off."""
    if not config.lockout.enabled or not config.directories:
        return None
    return Shield(config.lockout, Store(config.server.data_dir))


def card_store(config: Config) -> CardStore | None:
    """The user cards of [user_info], shared by the host's workers in the [server] data_dir; the demo (no
    data_dir) keeps them in memory. None when the provider is off (no [user_info], or no directory)."""
    if config.user_info is None or not config.directories:
        return None
    path = Path(config.server.data_dir) / CARDS_DATABASE if config.server.data_dir else None
    return CardStore(path, config.user_info.cache_size, config.user_info.stale_seconds)
