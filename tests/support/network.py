"""Loopback addresses where no directory answers: for outage and timeout tests.

- A dead port: a socket bound but not listening holds the port, so nothing else can take it, and every
  connection attempt is refused at once (RST): "connection refused".
- A black hole: a listener that accepts TCP connections and then never sends a byte, so the TLS handshake
  or the LDAP bind waits until the client's own timeout. The connections are accepted (not left in the
  backlog) so that the behaviour does not change after the backlog fills up. `connections` counts them.
- A resetting proxy: forwards TCP (TLS included, untouched) to a real server; once armed, the next bytes a
  client sends (its next LDAP request) are not forwarded: that connection is reset (RST) instead, so the
  operation in flight dies mid-way. `connections` counts the connections the proxy accepted.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading

# The first three parts of the loopback addresses the AD DCs use (127.0.0.x by default). Samba has no
# port setting, so two test runs at once on one machine need different ones: SSOBRIDGE_TEST_NET=127.1.0.
TEST_NET = os.environ.get("SSOBRIDGE_TEST_NET", "127.0.0")


class DeadPort:
    def __init__(self, host: str = "127.0.0.1"):
        self._socket = socket.socket()
        self._socket.bind((host, 0))
        self.host, self.port = self._socket.getsockname()

    def close(self) -> None:
        self._socket.close()


class BlackHole:
    def __init__(self, host: str = "127.0.0.1"):
        self._listener = socket.create_server((host, 0))
        self.host, self.port = self._listener.getsockname()
        self._swallowed: list[socket.socket] = []  # kept open: closing would tell the client something
        self.connections = 0
        self._thread = threading.Thread(target=self._accept_forever, name="ldap-black-hole", daemon=True)
        self._thread.start()

    def _accept_forever(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # the listener was closed
                return
            self._swallowed.append(connection)
            self.connections += 1

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        self._listener.close()
        for connection in self._swallowed:
            connection.close()


class ResettingProxy:
    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1"):
        self._target = (target_host, target_port)
        self._listener = socket.create_server((host, 0))
        self.host, self.port = self._listener.getsockname()
        self.connections = 0
        self.resets = 0
        self._armed = threading.Event()
        threading.Thread(target=self._accept_forever, name="ldap-resetting-proxy", daemon=True).start()

    def arm(self) -> None:
        """Reset the connection that carries the next client request, instead of forwarding it."""
        self._armed.set()

    def _accept_forever(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(self._target, timeout=5)
            upstream.settimeout(None)
            for source, sink, from_client in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(source, sink, from_client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_client and self._armed.is_set():
                    self._armed.clear()
                    self.resets += 1
                    source.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    sink.shutdown(socket.SHUT_RDWR)  # wakes the other direction's pump
                    source.close()  # SO_LINGER 0: the client gets a reset
                    sink.close()
                    return
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:  # the other direction closed both
            pass

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
