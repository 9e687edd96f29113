"""Logging: one line per event on stderr (text or JSON), every request value escaped and cut, the audit
logger's file, and last-resort hooks that log an uncaught exception's type and place, never its message.

configure() is the one entry point (serve, its workers, the commands); reconfigure() is reload's: the
same settings applied in place in a worker that goes on serving.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import sys
import threading

from .audit import LOGGER as AUDIT_LOGGER
from .audit import AuditFile, iso_time
from .config import Config, LogFormat

VALUE_LIMIT = 256  # characters of one value from a request (a username, an event name) in a log line
TEXT_LINE = "%(asctime)s %(process)d %(levelname)s %(name)s %(message)s"  # log_format = "text"


def configure(config: Config | None) -> dict:
    """The one entry point: the process logs as `config` says ([logging] level, [server] log_format, [audit]
    file), or, for None, as the commands do (CRITICAL lines only, text, no audit file: the command prints
    what matters and the log would repeat it). Returns the dictConfig applied, which serve hands to granian
    so that it applies the same in each worker process too."""
    settings = _dict_config(config.log_level, config.server.log_format, config.audit_file) if config else \
        _dict_config("CRITICAL", LogFormat.TEXT, None)
    logging.config.dictConfig(settings)
    _install_last_resort_hooks()
    return settings


def _dict_config(level: str, log_format: LogFormat, audit_file: str | None) -> dict:
    """One line per event on stderr, every value escaped and cut (RequestValues), for our loggers and
    granian's alike (spyne's own logging is silenced by the wire layer); log_format "json" writes each as
    one JSON object (JsonLines). The audit logger writes only to audit_file, when there is one."""
    audit = {"level": "INFO", "handlers": ["audit"], "propagate": False} if audit_file else \
        {"level": "CRITICAL", "handlers": [], "propagate": False}
    return {
        "version": 1, "disable_existing_loggers": False,
        "filters": {"request_values": {"()": RequestValues}},
        "formatters": {LogFormat.TEXT: {"format": TEXT_LINE}, LogFormat.JSON: {"()": JsonLines}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                "formatter": log_format, "filters": ["request_values"]},
                     **({"audit": {"()": AuditFile, "path": audit_file}} if audit_file else {})},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {"_granian": {"level": level, "handlers": [], "propagate": True},
                    "granian.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
                    AUDIT_LOGGER: audit},
    }


def reconfigure(config: Config) -> None:
    """A reloaded config's [logging] level, log_format and [audit] file, in a worker process that goes on
    serving. dictConfig (configure) removes every handler before it adds the new ones, and a line that a
    request thread logs in between is lost, an audit line among them: here each change is one assignment,
    and an audit file that changes is closed only after the line it may be writing."""
    for name in ("", "_granian"):
        logging.getLogger(name).setLevel(config.log_level)
    formatter = JsonLines() if config.server.log_format is LogFormat.JSON else logging.Formatter(TEXT_LINE)
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


def where(tb) -> str:
    """file:line of a traceback's innermost frame: enough to find a bug, nothing of the request."""
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None else "?"


def _install_last_resort_hooks() -> None:
    """Python's own handlers print a traceback with the exception's message, which may quote a request:
    log the type and where it happened instead."""
    log = logging.getLogger("ssobridge")

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
