"""Forwarding stored events to the configured sinks: a JSON-lines file, a webhook, syslog.

One worker thread per sink works through that sink's pending deliveries, oldest first. Within an event
type the order is kept: while the oldest pending event of a type waits for its retry, later events of
the same type wait behind it (other types go on). A failed try is retried with doubling backoff; after
`max_attempts` tries the delivery is dead (and the next event of its type goes on).

Every worker process runs a Forwarder, and only the one holding the leader lock (leader.py) delivers:
the others try for the lock every poll interval and take over when its holder dies. The leader is woken
at once for the events its own process stores, and reads the outbox every poll interval for those the
other workers store.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..config import SinkSettings, SinkType
from .leader import LeaderLock
from .store import Delivery, Event, EventStore, backoff

log = logging.getLogger("ssobridge.events")

SIGNATURE_HEADER = "X-Ssobridge-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class DeliveryFailed(Exception):
    pass


def deliver(sink: SinkSettings, event: Event) -> None:
    """One try; raises DeliveryFailed with the reason."""
    body = json.dumps(event.as_json(), ensure_ascii=False, sort_keys=True)
    try:
        if sink.type is SinkType.JSONL:
            _append_line(Path(sink.path), body)
        elif sink.type is SinkType.WEBHOOK:
            _post(sink, body.encode("utf-8"), event.idempotency_key)
        else:
            _syslog(sink, event, body)
    except DeliveryFailed:
        raise
    except OSError as e:
        raise DeliveryFailed(f"{type(e).__name__}: {e}") from None


def _append_line(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write(line + "\n")
        file.flush()
        os.fsync(file.fileno())


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _post(sink: SinkSettings, body: bytes, key: str) -> None:
    headers = {"Content-Type": "application/json; charset=utf-8", IDEMPOTENCY_HEADER: key,
               "User-Agent": "ssobridge"}
    if sink.secret:
        headers[SIGNATURE_HEADER] = signature(sink.secret, body)
    request = urllib.request.Request(sink.url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=sink.timeout) as response:
            response.read()
    except urllib.error.HTTPError as e:
        raise DeliveryFailed(f"HTTP {e.code} from {sink.url}") from None


def _syslog(sink: SinkSettings, event: Event, body: str) -> None:
    """RFC 5424 message, informational severity."""
    priority = sink.facility * 8 + 6
    host = socket.gethostname()
    message = f"<{priority}>1 {event.received_at} {host} ssobridge - {event.event_type} - {body}".encode("utf-8")
    address = sink.address or "/dev/log"
    if address.startswith("/"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as udp:
            udp.sendto(message, address)
    else:
        host_part, _, port = address.rpartition(":")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(message, (host_part.strip("[]"), int(port)))


class Forwarder:
    """The delivery workers, one thread per sink, in the process holding `leader` (or always without one)."""

    def __init__(self, store: EventStore, sinks: tuple[SinkSettings, ...], max_attempts: int,
                 retry_initial: float, retry_max: float, leader: LeaderLock | None = None,
                 poll_interval: float = 0.5):
        self.store = store
        self.sinks = sinks
        self.max_attempts = max_attempts
        self.retry_initial, self.retry_max = retry_initial, retry_max
        self.leader = leader
        self.poll_interval = poll_interval  # also the longest an event stored by another worker waits
        self._wake = {sink.name: threading.Event() for sink in sinks}
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self.leader is None:
            self._start_delivering()
            return
        thread = threading.Thread(target=self._lead, name="events-leader", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _lead(self) -> None:
        """Try for the leader lock until it is ours (or we stop), then deliver."""
        said = False
        while not self._stopping.is_set():
            try:
                if self.leader.try_acquire():
                    log.info("event=delivery_leader pid=%d lock=%s", os.getpid(), self.leader.path)
                    self._start_delivering()
                    return
            except OSError as e:  # the lock file cannot be opened: said once, and tried again
                if not said:
                    log.error("event=delivery_leader_lock_error lock=%s error=%r", self.leader.path, str(e))
                said = True
            self._stopping.wait(self.poll_interval)

    def _start_delivering(self) -> None:
        for sink in self.sinks:
            thread = threading.Thread(target=self._run, args=(sink,), name=f"events-{sink.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def notify(self) -> None:
        """A new event was stored: wake the workers now rather than at the next poll."""
        for wake in self._wake.values():
            wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self.notify()
        for thread in self._threads:  # a list the leader thread may still extend while it is joined
            thread.join(timeout=15)
        if self.leader is not None:
            self.leader.release()

    def _run(self, sink: SinkSettings) -> None:
        wake = self._wake[sink.name]
        while not self._stopping.is_set():
            try:
                worked = self.deliver_due(sink)
            except Exception:  # the database or a bug: logged, and tried again at the next poll
                log.exception("event=delivery_worker_error sink=%s", sink.name)
                worked = False
            if not worked:
                wake.wait(self.poll_interval)
                wake.clear()

    def deliver_due(self, sink: SinkSettings) -> bool:
        """One pass over the sink's pending deliveries; True if any was tried."""
        tried = False
        waiting_types: set[str] = set()  # types whose oldest pending event is not due or just failed
        for delivery in self.store.pending(sink.name):
            if self._stopping.is_set():
                break
            event_type = delivery.event.event_type
            if event_type in waiting_types:
                continue
            if delivery.next_attempt_at > time.time():
                waiting_types.add(event_type)
                continue
            tried = True
            try:
                deliver(sink, delivery.event)
            except DeliveryFailed as e:
                self._failed(sink, delivery, str(e))
                waiting_types.add(event_type)
                continue
            self.store.delivered(delivery)
        return tried

    def _failed(self, sink: SinkSettings, delivery: Delivery, error: str) -> None:
        attempts = delivery.attempts + 1
        if attempts >= self.max_attempts:
            self.store.failed(delivery, error, None)
            log.error("event=delivery_dead sink=%s event=%s type=%s attempts=%d error=%r", sink.name,
                      delivery.event.idempotency_key, delivery.event.event_type, attempts, error)
            return
        wait = backoff(attempts, self.retry_initial, self.retry_max)
        self.store.failed(delivery, error, time.time() + wait)
        log.warning("event=delivery_failed sink=%s event=%s type=%s attempts=%d retry_in=%.1fs error=%r", sink.name,
                    delivery.event.idempotency_key, delivery.event.event_type, attempts, wait, error)
