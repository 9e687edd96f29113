"""Wiring: from a validated Config to the WSGI application and what it uses (directories, event outbox)."""

from __future__ import annotations

import json
import logging
import logging.config
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .audit import LOGGER as AUDIT_LOGGER
from .audit import AuditFile, iso_time
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


VALUE_LIMIT = 256  # characters of one value from a request (a username, an event name) in a log line
TEXT_LINE = "%(asctime)s %(process)d %(levelname)s %(name)s %(message)s"  # log_format = "text"


def logging_config(level: str, log_format: str = "text", audit_file: str | None = None) -> dict:
    """One line per event on stderr, every value escaped and cut (RequestValues), for our loggers and
    granian's alike (spyne's own logging is silenced by the wire layer); log_format "json" writes each as
    one JSON object (JsonLines). The audit logger writes only to audit_file, when there is one. A
    dictConfig: granian applies it in each worker process too."""
    audit = {"level": "INFO", "handlers": ["audit"], "propagate": False} if audit_file else \
        {"level": "CRITICAL", "handlers": [], "propagate": False}
    return {
        "version": 1, "disable_existing_loggers": False,
        "filters": {"request_values": {"()": RequestValues}},
        "formatters": {"text": {"format": TEXT_LINE}, "json": {"()": JsonLines}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                "formatter": log_format, "filters": ["request_values"]},
                     **({"audit": {"()": AuditFile, "path": audit_file}} if audit_file else {})},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {"_granian": {"level": level, "handlers": [], "propagate": True},
                    "granian.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
                    AUDIT_LOGGER: audit},
    }


def config_logging(config: Config) -> dict:
    """logging_config of a Config: its [logging] level, [server] log_format and [audit] file."""
    return logging_config(config.log_level, config.server.log_format, config.audit_file)


def configure_logging(level: str, log_format: str = "text", audit_file: str | None = None) -> None:
    logging.config.dictConfig(logging_config(level, log_format, audit_file))
    install_last_resort_hooks()


def reconfigure_logging(config: Config) -> None:
    """A reloaded config's [logging] level, log_format and [audit] file, in a worker process that goes on
    serving. dictConfig (configure_logging) removes every handler before it adds the new ones, and a line
    that a request thread logs in between is lost, an audit line among them: here each change is one
    assignment, and an audit file that changes is closed only after the line it may be writing."""
    for name in ("", "_granian"):
        logging.getLogger(name).setLevel(config.log_level)
    formatter = JsonLines() if config.server.log_format == "json" else logging.Formatter(TEXT_LINE)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
    audit = logging.getLogger(AUDIT_LOGGER)
    old = audit.handlers
    if [getattr(handler, "path", None) for handler in old] == ([config.audit_file] if config.audit_file else []):
        return
    if config.audit_file:
        audit.handlers = [AuditFile(config.audit_file)]
        audit.setLevel(logging.INFO)
    else:
        audit.setLevel(logging.CRITICAL)
        audit.handlers = []
    for handler in old:
        with handler.lock:  # Handler.handle holds it while it writes a line
            handler.close()


class JsonLines(logging.Formatter):
    """log_format = "json": {"time", "level", "logger", "process", "event", then the line's key=value fields}.
    Our lines are "event=name key=%r ..." templates: each key is paired with its argument, kept as a number
    or a string cut like RequestValues cuts it (JSON escapes the rest); any other line (granian's) is
    {"message": ...}."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": iso_time(record.created), "level": record.levelname, "logger": record.name,
                "process": record.process}
        fields = _fields(record.msg, record.args) if isinstance(record.msg, str) else None
        if fields is None:
            line["message"] = record.getMessage()
        else:
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


_SPECIFIER = re.compile(r"%[-#0 +]*\d*(?:\.\d+)?[a-z%]")
_FIELD = re.compile(r"(\w+)=(%[-#0 +]*\d*(?:\.\d+)?[a-z]|[^\s%]+)")


def _fields(template: str, args) -> dict | None:
    """The key=value fields of an "event=..." template with its arguments; None when it is not one."""
    if not template.startswith("event=") or isinstance(args, dict):
        return None
    args = args or ()
    positions = [m.start() for m in _SPECIFIER.finditer(template) if m.group() != "%%"]
    if len(positions) != len(args):
        return None
    fields: dict = {}
    for match in _FIELD.finditer(template):
        key, token = match.groups()
        if match.start(2) in positions:
            value = args[positions.index(match.start(2))]
            value = value.value if isinstance(value, _Escaped) else value
            fields[key] = int(value) if token.endswith("d") and isinstance(value, float) else _json_value(value)
        else:
            fields[key] = token
    rest = _FIELD.sub("", template).strip(" :")
    if rest:  # words around the fields ("...: treated as not in the directory"): the line as text too
        fields["message"] = template % tuple(args) if args else template
    return fields


def _json_value(value):
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else str(value)
    return text[:VALUE_LIMIT] + (f"...({len(text)} characters)" if len(text) > VALUE_LIMIT else "")


class RequestValues(logging.Filter):
    """Every value in every log line escaped (no newline can forge a line) and cut to VALUE_LIMIT
    characters, so no call site can forget; a message without arguments (granian's own) likewise."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict):
            record.args = {k: _escaped(v) for k, v in record.args.items()}
        elif record.args:
            record.args = tuple(_escaped(a) for a in record.args)
        elif not isinstance(record.msg, str) or "\n" in record.msg or len(record.msg) > 4 * VALUE_LIMIT:
            record.msg = str(_Escaped(record.msg))
        return True


def _escaped(value):
    return value if value is None or isinstance(value, (int, float)) else _Escaped(value)


class _Escaped:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __str__(self) -> str:
        return _cut(self.value if isinstance(self.value, str) else str(self.value), quoted=False)

    def __repr__(self) -> str:
        return _cut(self.value, quoted=True) if isinstance(self.value, str) else _cut(repr(self.value), quoted=False)


def _cut(text: str, quoted: bool) -> str:
    more = f"...({len(text)} characters)" if len(text) > VALUE_LIMIT else ""
    shown = repr(text[:VALUE_LIMIT])
    return (shown if quoted else shown[1:-1]) + more


def install_last_resort_hooks() -> None:
    """Python's own handlers print a traceback with the exception's message, which may quote a request:
    log the type and where it happened instead."""
    log = logging.getLogger("ssobridge")

    def where(tb) -> str:
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        return f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None else "?"

    def excepthook(kind, value, tb):
        log.critical("event=uncaught_exception error=%s at=%s", kind.__name__, where(tb))

    def thread_excepthook(args):
        if args.exc_type is not SystemExit:
            log.error("event=thread_exception thread=%s error=%s at=%s", args.thread.name if args.thread else "?",
                      args.exc_type.__name__, where(args.exc_traceback))

    def unraisablehook(unraisable):
        log.error("event=unraisable_exception error=%s at=%s", unraisable.exc_type.__name__,
                  where(unraisable.exc_traceback))

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
    sys.unraisablehook = unraisablehook
