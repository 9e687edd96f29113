"""GET /healthz and GET /readyz: is the process alive, and can it log people in now.

/healthz answers 200 as long as the worker serves; it touches no directory (a restart would not bring a
directory back). /readyz answers 200 only when every directory has a reachable server and a working
service account, else 503 with a short reason per directory: a load balancer takes the node out. Its
answer is kept READY_CACHE_SECONDS per worker, so probes cost nothing; when it is due, what the directory
layer already knows decides without the network (a refused service account, every server marked down),
and otherwise one BASE search of base_dn with the service account (a pooled connection) proves it.
"""

from __future__ import annotations

import json
import threading
from typing import Iterable

from cachetools import TTLCache, cachedmethod

from .directory import DirectorySet, DirectoryUnavailable

READY_CACHE_SECONDS = 5.0
REASON_LIMIT = 300  # characters of one directory's reason


def _json(start_response, status: str, value: dict, method: str) -> list[bytes]:
    data = (json.dumps(value, sort_keys=True) + "\n").encode("utf-8")
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                            ("Cache-Control", "no-store")])
    return [b""] if method == "HEAD" else [data]


def healthz(environ: dict, start_response) -> list[bytes]:
    return _json(start_response, "200 OK", {"status": "ok"}, environ.get("REQUEST_METHOD", "GET"))


class Readiness:
    """/readyz of one worker: {"ready": bool, "directories": {name: "ok" or why not}}."""

    def __init__(self, directories: DirectorySet, cache_seconds: float = READY_CACHE_SECONDS):
        self._directories = directories
        self._answer: TTLCache = TTLCache(maxsize=1, ttl=cache_seconds)
        self._checking = threading.Condition()  # one check at a time; probes meanwhile wait for its answer

    @cachedmethod(lambda self: self._answer, key=lambda self: "states", lock=lambda self: self._checking,
                  condition=lambda self: self._checking)
    def states(self) -> dict[str, str]:
        return {d.name: self._state(d) for d in self._directories.directories}

    @staticmethod
    def _state(directory) -> str:
        try:
            directory.check_service()
        except DirectoryUnavailable as e:
            reason = str(e)
            return reason if len(reason) <= REASON_LIMIT else reason[:REASON_LIMIT] + "..."
        return "ok"

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        states = self.states()
        ready = all(state == "ok" for state in states.values())
        return _json(start_response, "200 OK" if ready else "503 Service Unavailable",
                     {"ready": ready, "directories": states}, environ.get("REQUEST_METHOD", "GET"))
