"""Parsing [server], [lockout], [events] and [user_info] into their settings."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .reader import Table
from .settings import (
    SYSLOG_FACILITIES,
    USER_INFO_FIELDS,
    EventSettings,
    LockoutSettings,
    LogFormat,
    ServerSettings,
    SinkSettings,
    SinkType,
    UserInfoSettings,
    defaults,
    is_loopback,
)

_SERVER = defaults(ServerSettings)
DEFAULT_LISTEN = f"{_SERVER['host']}:{_SERVER['port']}"


def server_table(t: Table, folder: Path) -> ServerSettings:
    listen = t.text_or_default("listen", DEFAULT_LISTEN)
    host, port = parse_listen(listen, t)
    tls_cert, tls_key = t.text("tls_cert"), t.text("tls_key")
    for key, path in (("tls_cert", tls_cert), ("tls_key", tls_key)):
        if path and not Path(path).is_file():
            t.problem(key, f"file not found: {path}")
    if bool(tls_cert) != bool(tls_key):
        t.problem("tls_cert" if not tls_cert else "tls_key", "tls_cert and tls_key must be set together")
    scheme = "https" if tls_cert else "http"
    public_url = t.text("public_url") or f"{scheme}://{_url_host(host)}:{port}/ExternalProvider.asmx"
    if urlsplit(public_url).scheme not in ("http", "https") or not urlsplit(public_url).netloc:
        t.problem("public_url", f"must be an http:// or https:// URL, not {public_url!r}")
    allow_plaintext_http = t.get("allow_plaintext_http", bool)
    if not tls_cert and not is_loopback(host) and not allow_plaintext_http:
        t.problem("listen", f"{listen} is reachable from other machines, and without tls_cert/tls_key the "
                            "passwords SmarterTrack sends would cross the network in clear text: set tls_cert "
                            "and tls_key, or (behind a TLS proxy) allow_plaintext_http = true")
    log_format = t.member("log_format", LogFormat, t.text_or_default("log_format"))
    settings = ServerSettings(
        host=host, port=port, public_url=public_url,
        max_body_bytes=t.positive("max_body_bytes", int),
        max_variables=t.positive("max_variables", int),
        workers=t.positive("workers", int),
        threads=t.positive("threads", int),
        request_timeout=t.positive("request_timeout", float),
        tls_cert=tls_cert, tls_key=tls_key, allow_plaintext_http=allow_plaintext_http,
        # SSOBRIDGE_DATA_DIR: the Docker image's /var/lib/ssobridge, where the config folder is read-only.
        data_dir=str(folder / (t.text("data_dir") or os.environ.get("SSOBRIDGE_DATA_DIR") or "")),
        metrics=t.get("metrics", bool), metrics_token=t.text("metrics_token"),
        log_format=log_format,
    )
    t.reject_unknown()
    return settings


def lockout_table(t: Table) -> LockoutSettings:
    settings = LockoutSettings(enabled=t.get("enabled", bool), threshold=_auto_or_positive(t, "threshold"),
                               window_seconds=_auto_or_positive(t, "window_seconds"),
                               known_password=t.get("known_password", bool), message=t.text_or_default("message"))
    t.reject_unknown()
    return settings


def _auto_or_positive(t: Table, key: str) -> int | None:
    """"auto" (or absent) -> None; otherwise a whole number of at least 1."""
    value = t.data.get(key, "auto")
    t.used.add(key)
    if value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        t.problem(key, f'must be "auto" or a whole number of at least 1, not {value!r}')
        return None
    return value


def parse_listen(listen: str, t: Table | None = None) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        if t is not None:
            t.problem("listen", f"must be host:port, for example {DEFAULT_LISTEN}, not {listen!r}")
        return _SERVER["host"], _SERVER["port"]
    return host, int(port)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


_DEFAULT_FACILITY = next(name for name, number in SYSLOG_FACILITIES.items()
                         if number == defaults(SinkSettings)["facility"])


def events_table(t: Table, folder: Path, data_dir: str) -> EventSettings:
    """`database` relative to the config file's folder; left out, in data_dir (by default the same folder)."""
    database = t.text("database", None)
    database = str(folder / database) if database else str(Path(data_dir) / t.default("database"))
    sinks = []
    for index, raw in enumerate(t.get("sink", list, [])):
        sink = Table(raw, f"events.sink[{index}]", t.problems, SinkSettings)
        written = sink.text("type", required=True)
        kind = sink.member("type", SinkType, written)
        name = sink.text("name", f"{written}{index + 1}") or f"sink{index + 1}"
        path, url = sink.text("path"), sink.text("url")
        if kind is SinkType.JSONL and not path:
            sink.problem("path", "is required for a jsonl sink")
        if kind is SinkType.WEBHOOK and (not url or urlsplit(url).scheme not in ("http", "https")):
            sink.problem("url", "is required for a webhook sink: an http:// or https:// URL")
        address = sink.text("address")
        if kind is SinkType.SYSLOG and sys.platform == "win32" and (not address or address.startswith("/")):
            sink.problem("address", "Windows has no unix socket such as /dev/log: give the syslog server as "
                                    "host:port (UDP)")
        facility = sink.text_or_default("facility", _DEFAULT_FACILITY)
        if facility not in SYSLOG_FACILITIES:
            sink.problem("facility", f"must be one of {', '.join(SYSLOG_FACILITIES)}")
        sinks.append(SinkSettings(
            name=name, type=kind or SinkType.JSONL, event_types=sink.texts("event_types"),
            path=str(folder / path) if path else None, url=url, secret=sink.text("secret"),
            timeout=sink.positive("timeout", float), address=address,
            facility=SYSLOG_FACILITIES.get(facility, sink.default("facility"))))
        sink.reject_unknown()
    names = [s.name for s in sinks]
    for duplicate in {n for n in names if names.count(n) > 1}:
        t.problem("sink", f"the sink name {duplicate!r} is used twice")
    settings = EventSettings(database=database, sinks=tuple(sinks),
                             max_attempts=t.positive("max_attempts", int),
                             retry_initial_seconds=t.positive("retry_initial_seconds", float),
                             retry_max_seconds=t.positive("retry_max_seconds", float),
                             keep_days=t.positive("keep_days", int))
    t.reject_unknown()
    return settings


def user_info_table(t: Table, folder: Path) -> UserInfoSettings:
    fields = t.texts("fields")
    for name in fields:
        if name not in USER_INFO_FIELDS:
            t.problem("fields", f"{name!r} is not one of {', '.join(USER_INFO_FIELDS)}")
    default_pattern = t.default("groups_pattern")
    pattern = t.text_or_default("groups_pattern", default_pattern.pattern)
    try:
        groups_pattern = re.compile(pattern, default_pattern.flags)
    except re.error as e:
        t.problem("groups_pattern", f"is not a valid regular expression: {e}")
        groups_pattern = default_pattern
    template = t.text("template")
    if template and not (folder / template).is_file():
        t.problem("template", f"file not found: {folder / template}")
    time_zone = t.text_or_default("time_zone")
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        t.problem("time_zone", f"unknown time zone {time_zone!r} (use a name such as Europe/Berlin)")
        time_zone = t.default("time_zone")
    settings = UserInfoSettings(
        fields=fields, groups_pattern=groups_pattern, template=str(folder / template) if template else None,
        date_format=t.text_or_default("date_format"), time_zone=time_zone,
        cache_seconds=t.positive("cache_seconds", float), stale_seconds=t.positive("stale_seconds", float),
        cache_size=t.positive("cache_size", int),
        latency_budget_ms=t.positive("latency_budget_ms", float),
        photo_max_bytes=t.positive("photo_max_bytes", int),
        unavailable_notice=t.text_or_default("unavailable_notice"))
    t.reject_unknown()
    return settings
