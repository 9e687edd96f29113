"""Helpers for event tests: a webhook receiver, the [events] config, NotifyEventFired, polling."""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest

from .services import WEB_SERVICE_PASSWORD, call, free_port

AUTH = f"authPW={WEB_SERVICE_PASSWORD}"


SECRET = "webhook-secret"


class Receiver:
    """A webhook receiver on a fixed port that can be stopped and started again."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.received: list[tuple[dict, bytes]] = []
        self.status = 200
        self._server = None
        self._lock = threading.Lock()

    def start(self, status: int = 200) -> None:
        self.status = status
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.status == 200:
                    with receiver._lock:
                        receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[dict]:
        with self._lock:
            return [json.loads(body) for _, body in self.received]


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.stop()


def events_config(tmp_path, receiver: Receiver, max_attempts: int = 1000, extra_sinks: str = "") -> str:
    return (f'[events]\ndatabase = "events.db"\nmax_attempts = {max_attempts}\nretry_initial_seconds = 0.1\n'
            f'retry_max_seconds = 0.5\n'
            f'[[events.sink]]\nname = "hook"\ntype = "webhook"\nurl = "{receiver.url}"\nsecret = "{SECRET}"\n'
            f'timeout = 2\n'
            f'[[events.sink]]\nname = "archive"\ntype = "jsonl"\npath = "events.jsonl"\n{extra_sinks}')


def notify(service, event_type: str, **args: str) -> dict:
    return call(service.url, "NotifyEventFired", [AUTH, f"eventType={event_type}",
                                                  *(f"args_{k}={v}" for k, v in args.items())])


def wait_for(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def jsonl(tmp_path) -> list[dict]:
    path = tmp_path / "events.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
