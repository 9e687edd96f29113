"""Which server of a directory to open a connection to, and when a server that failed is tried again.

The outage fast path. A server that failed is marked down for retry_down_after seconds and skipped. When
every server is marked down, a request answers DirectoryUnavailable at once, without touching the network.
One probe per server finds a server back:
- a server whose state is unknown (never opened since start) is opened by ONE request; other requests move
  on to the next server, or, when there is none, wait for that probe's outcome (a burst at start would
  otherwise wait on the same dead server 16 times over);
- a server whose retry_down_after is over is probed in the background, once; requests skip it meanwhile
  and use it again as soon as the probe found it back;
- a server whose last failure came at once ("connection refused": nothing listens, the network said so in
  one round trip) may be tried again by one request at a time when every server is down: it costs no
  wait, and a restarted server is used again by the very next request.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from ldap3 import Connection

from .. import metrics

log = logging.getLogger("ssobridge.directory")

FAST_FAILURE_SECONDS = 0.05  # a failure this quick costs no wait to repeat (a refusal, a bad certificate)


@dataclass
class ServerState:
    url: str
    down_until: float = 0.0  # skipped until then; 0: not marked down
    up: bool = False  # its last open succeeded; False: unknown since start, or down
    fast_failure: bool = False  # its last failure came at once
    probing: bool = False  # one request, or the background probe, is finding out whether it answers
    error: str = ""  # why it is down

    def serves(self, connection: Connection) -> bool:
        parts = urlsplit(self.url)
        port = parts.port or (636 if parts.scheme == "ldaps" else 389)
        return (connection.server.host, connection.server.port) == (parts.hostname, port)


class Servers:
    """The servers of one directory in the order they are tried, with what is known of each."""

    def __init__(self, name: str, urls: tuple[str, ...], retry_down_after: float, wait_for_probe: float,
                 probe: Callable[[str], None]):
        self.name = name
        self.order = [ServerState(url) for url in urls]
        self._retry_down_after = retry_down_after
        self._wait_for_probe = wait_for_probe  # how long a request waits for another's probe of a new server
        self._probe = probe  # opens (no bind) and closes a connection to a URL; raises when it cannot
        self._changed = threading.Condition()
        self.failovers = 0  # servers marked down so far: Directory learns the PDC emulator again after one

    @property
    def lock(self) -> threading.Condition:
        return self._changed

    def put_first(self, url: str) -> bool:
        with self._changed:
            found = next((s for s in self.order if s.url == url), None)
            if found is None or self.order[0] is found:
                return False
            self.order = [found] + [s for s in self.order if s is not found]
            return True

    def replace(self, urls: tuple[str, ...]) -> None:
        """The servers are now `urls` (a new DNS lookup): those known keep their place and state, new ones
        come last, those no longer listed are dropped."""
        with self._changed:
            kept = [s for s in self.order if s.url in urls]
            known = {s.url for s in kept}
            dropped = [s.url for s in self.order if s.url not in urls]
            self.order = kept + [ServerState(url) for url in urls if url not in known]
            self._changed.notify_all()
        for url in dropped:
            log.info("event=directory_server_dropped directory=%s server=%s reason='no longer in DNS'", self.name, url)

    def knows(self, url: str) -> bool:
        with self._changed:
            return any(s.url == url for s in self.order)

    def pinned(self, url: str) -> ServerState:
        """The state of `url` for a connection to that server only, whatever its state."""
        with self._changed:
            return next((s for s in self.order if s.url == url), None) or ServerState(url)

    def choose(self, after: Connection | None, tried: set[str]) -> ServerState | None:
        """The next server to open a connection to (not among `tried`), or None: none can be tried now.
        A server returned with `probing` set is this request's to find out about: report the outcome
        with answered() or failed(claimed=True)."""
        deadline = time.monotonic() + self._wait_for_probe
        with self._changed:
            while True:
                now = time.monotonic()
                servers = self.order
                if after is not None:
                    failed = next((i for i, s in enumerate(servers) if s.serves(after)), -1)
                    servers = servers[failed + 1:] + servers[:failed + 1]
                servers = [s for s in servers if s.url not in tried]
                worth_waiting = False
                for state in servers:
                    if state.probing:
                        worth_waiting |= not state.down_until  # a new server: its probe says soon
                    elif state.down_until > now:
                        continue
                    elif state.down_until:  # its retry_down_after is over: probed in the background
                        self._probe_in_background(state)
                    else:
                        state.probing = not state.up
                        return state
                for state in servers:  # none can be used: one that refused at once may be tried again
                    if state.fast_failure and not state.probing:
                        state.probing = True
                        return state
                if not worth_waiting or now >= deadline:
                    return None
                self._changed.wait(deadline - now)

    def answered(self, state: ServerState, claimed: bool) -> bool:
        """The server answered; True when it had been marked down."""
        with self._changed:
            was_down = bool(state.down_until)
            state.down_until, state.up, state.fast_failure, state.error = 0.0, True, False, ""
            if claimed:
                state.probing = False
            self._changed.notify_all()
        metrics.server_up(self.name, state.url, True)
        if was_down:
            log.info("event=directory_server_back directory=%s server=%s", self.name, state.url)
        return was_down

    def failed(self, state: ServerState, error: str, seconds: float, claimed: bool) -> bool:
        """The server could not be opened in `seconds`; True when that marked it down (it was not)."""
        with self._changed:
            newly = not state.down_until
            state.down_until = time.monotonic() + self._retry_down_after
            state.up, state.fast_failure, state.error = False, seconds < FAST_FAILURE_SECONDS, error
            if claimed:
                state.probing = False
            if newly:
                self.failovers += 1
            self._changed.notify_all()
        metrics.server_up(self.name, state.url, False)
        if newly:
            log.warning("event=directory_server_down directory=%s server=%s error=%r retry_in=%ss",
                        self.name, state.url, error, self._retry_down_after)
        else:
            log.debug("event=directory_server_still_down directory=%s server=%s error=%r", self.name, state.url, error)
        return newly

    def released(self, state: ServerState) -> None:
        """A claimed server whose open ended neither way (an exception that is not about the server)."""
        with self._changed:
            state.probing = False
            self._changed.notify_all()

    def all_down(self) -> bool:
        """Every server is marked down now (for readiness: known without the network)."""
        now = time.monotonic()
        with self._changed:
            return all(s.down_until > now for s in self.order)

    def describe_down(self) -> str:
        now = time.monotonic()
        with self._changed:
            return "; ".join(f"{s.url}: marked down, retried in {max(0.0, s.down_until - now):.0f} s"
                             f"{f' ({s.error})' if s.error else ''}" if s.down_until else f"{s.url}: being probed"
                             for s in self.order)

    def _probe_in_background(self, state: ServerState) -> None:
        state.probing = True  # the lock is held: one probe per server
        threading.Thread(target=self._run_probe, args=(state,), name="ssobridge-probe", daemon=True).start()

    def _run_probe(self, state: ServerState) -> None:
        started = time.monotonic()
        try:
            self._probe(state.url)
        except Exception as e:  # the probe's own exceptions say why the server is still down
            self.failed(state, str(e), time.monotonic() - started, claimed=True)
        else:
            self.answered(state, claimed=True)
