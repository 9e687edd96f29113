"""Prometheus metrics: every metric of ssobridge, defined here, and GET /metrics.

Counters and histograms are counted in the worker process that saw the event; prometheus_client's
multiprocess mode keeps each process's values in files under data_dir/metrics/ (emptied by `serve`
before its workers start), and a scrape, answered by any one worker, sums them all. A worker that died
keeps its counts in the sum, as a counter must. Values that live in SQLite or on the directory layer
(soft-locked accounts, the event outbox, certificate dates) are read at scrape time (StateCollector)
rather than kept in sync. Label values come from bounded sets only (operations, message keys, directory
and sink names of the config), never from a request: no username, no DN.

This module imports nothing of ssobridge, so every layer may count here without an import cycle.
"""

from __future__ import annotations

import hmac
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

# The classic text format, which every Prometheus reads (generate_latest writes it, names being plain ASCII).
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own variable: where each process writes
# Seconds: a login is ~5-50 ms on a LAN, a directory in trouble takes connect_timeout (5 s) or timeout (10 s).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter("ssobridge_requests", "SOAP calls answered, by operation and outcome (ok: Success=true; "
                   "refused: Success=false, e.g. a wrong authPW; error: an internal error)",
                   ["operation", "outcome"])
REQUEST_DURATION = Histogram("ssobridge_request_duration_seconds", "Time to answer a SOAP call, by operation",
                             ["operation"], buckets=LATENCY_BUCKETS)
REJECTED = Counter("ssobridge_requests_rejected", "HTTP requests refused before any operation ran (bad body, "
                   "too large, wrong content type, slow body), by HTTP status", ["status"])
LOGINS = Counter("ssobridge_logins", "Login decisions (Authenticate, GetSignInCookieInfo): result ok or fail, "
                 "reason the [messages] key the user was shown", ["operation", "result", "reason"])
DIRECTORY_DURATION = Histogram("ssobridge_directory_request_duration_seconds", "Time of directory operations, "
                               "by directory and kind (connect, service_bind, search, bind)",
                               ["directory", "kind"], buckets=LATENCY_BUCKETS)
SERVER_UP = Gauge("ssobridge_directory_server_up", "1 when the last connection to the server opened, 0 when it "
                  "failed (the most recent observation of any worker); absent until first used",
                  ["directory", "server"], multiprocess_mode="mostrecent")
DISCOVERED = Gauge("ssobridge_directory_discovered", "1 for each server the DNS SRV records of a directory's domain "
                   "list at the last lookup, 0 for one they no longer list", ["directory", "server"],
                   multiprocess_mode="mostrecent")
LOCKOUT_REFUSALS = Counter("ssobridge_lockout_refusals", "Passwords the lockout shield kept from the directory, "
                           "by reason (locked, repeated, sprayed)", ["reason"])
CACHE_REQUESTS = Counter("ssobridge_cache_requests", "Cache lookups by cache (memberships, display_names, "
                         "user_card) and result (hit, miss)", ["cache", "result"])


def login(operation: str, result: str, reason: str) -> None:
    LOGINS.labels(operation, result, reason).inc()


def cache(name: str, hit: bool) -> None:
    CACHE_REQUESTS.labels(name, "hit" if hit else "miss").inc()


def server_up(directory: str, server: str, up: bool) -> None:
    SERVER_UP.labels(directory, server).set(1 if up else 0)


def discovered(directory: str, server: str, listed: bool) -> None:
    DISCOVERED.labels(directory, server).set(1 if listed else 0)


@contextmanager
def directory_timer(directory: str, kind: str) -> Iterator[None]:
    """Times one directory operation, failed ones included (an outage shows as slow or quick failures)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        DIRECTORY_DURATION.labels(directory, kind).observe(time.perf_counter() - started)


def timed_request(operation: str, call: Callable[[], object], succeeded: Callable[[object], bool]):
    """Runs one SOAP operation and counts it: ok or refused by `succeeded(result)`, error when it raised."""
    started = time.perf_counter()
    outcome = "error"
    try:
        result = call()
        outcome = "ok" if succeeded(result) else "refused"
        return result
    finally:
        REQUESTS.labels(operation, outcome).inc()
        REQUEST_DURATION.labels(operation).observe(time.perf_counter() - started)


# --- processes ------------------------------------------------------------------------------------------

def prepare_directory(data_dir: str) -> Path:
    """In the serve parent, before the workers start: an empty data_dir/metrics/ (counts of an earlier run
    would otherwise be summed in), named in the environment the workers inherit."""
    folder = Path(data_dir or ".") / "metrics"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder


def use_directory() -> bool:
    """In a worker process: count into the multiprocess folder the serve parent prepared, if any. Metric
    values made before this (none: every metric here has labels) would stay in this process's memory."""
    if not os.environ.get(MULTIPROC_ENV):
        return False
    values.ValueClass = values.get_value_class()  # chosen when prometheus_client was imported, maybe pre-fork
    return True


# --- scrape time -----------------------------------------------------------------------------------------

class StateCollector:
    """What is read when scraped: each callable is this worker's view (None when that part is off)."""

    def __init__(self, soft_locked: Callable[[], int] | None, outbox: Callable[[], dict[str, tuple[int, int]]] | None,
                 certificates: Callable[[], dict[str, float]]):
        self._soft_locked = soft_locked
        self._outbox = outbox  # sink -> (pending, dead)
        self._certificates = certificates

    def collect(self) -> Iterable[GaugeMetricFamily]:
        if self._soft_locked is not None:
            yield GaugeMetricFamily("ssobridge_lockout_soft_locked_accounts",
                                    "Accounts the lockout shield refuses passwords for now", value=self._soft_locked())
        if self._outbox is not None:
            sinks = self._outbox()
            pending = GaugeMetricFamily("ssobridge_events_pending", "Event deliveries waiting, by sink",
                                        labels=["sink"])
            dead = GaugeMetricFamily("ssobridge_events_dead", "Event deliveries given up after max_attempts "
                                     "(`ssobridge events retry` sends them again), by sink", labels=["sink"])
            for sink, (waiting, given_up) in sorted(sinks.items()):
                pending.add_metric([sink], waiting)
                dead.add_metric([sink], given_up)
            yield pending
            yield dead
        expiry = GaugeMetricFamily("ssobridge_certificate_expiry_timestamp_seconds", "When a certificate expires "
                                   "(Unix time): \"server\" for [server] tls_cert, \"directory:<name>:<url>\" for "
                                   "a directory server's, as this worker last saw it", labels=["source"])
        for source, expires in sorted(self._certificates().items()):
            expiry.add_metric([source], expires)
        yield expiry


def metrics_off(environ: dict, start_response) -> list[bytes]:
    data = b"Metrics are off in this service ([server] metrics = false).\n"
    start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))])
    return [data]


class MetricsPage:
    """GET /metrics: the Prometheus text format, summed over the worker processes; with `token`, only for
    `Authorization: Bearer <token>`."""

    def __init__(self, state: StateCollector, token: str | None = None):
        self._registry = CollectorRegistry(auto_describe=False)
        if os.environ.get(MULTIPROC_ENV):
            MultiProcessCollector(self._registry)
        else:  # one process (tests of the application object): this process's own values
            for metric in (REQUESTS, REQUEST_DURATION, REJECTED, LOGINS, DIRECTORY_DURATION, SERVER_UP,
                           LOCKOUT_REFUSALS, CACHE_REQUESTS):
                self._registry.register(metric)
        self._registry.register(state)
        self._token = token.encode("utf-8") if token else None

    def __call__(self, environ: dict, start_response) -> list[bytes]:
        if self._token is not None:
            given = environ.get("HTTP_AUTHORIZATION", "")
            scheme, _, credentials = given.partition(" ")
            # Constant time, like authPW: the token cannot be guessed byte by byte from response times.
            if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode("utf-8"), self._token):
                data = b"A bearer token is required ([server] metrics_token).\n"
                start_response("401 Unauthorized", [("Content-Type", "text/plain; charset=utf-8"),
                                                    ("Content-Length", str(len(data))),
                                                    ("WWW-Authenticate", 'Bearer realm="ssobridge metrics"')])
                return [data]
        data = generate_latest(self._registry)
        start_response("200 OK", [("Content-Type", TEXT_FORMAT), ("Content-Length", str(len(data)))])
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [data]
