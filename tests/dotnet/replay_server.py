"""A stand-in ASMX service that answers with the responses recorded in reference/*-transcript.txt.

It lets the .NET client be tested without ssobridge: the client must read the real ASMX responses, and
what it sends is recorded for comparison with the real .NET requests in the same transcripts.

    with ReplayServer() as server:
        dotnet.call(server.url, "Authenticate", ["authPW=secret"])
        server.requests[0].headers["SOAPAction"]

A request is answered with the response recorded for the identical request body if there is one,
else with the first response recorded for its operation and SOAP version. The operation comes from the
SOAPAction header (SOAP 1.1) or the action= parameter of the Content-Type (SOAP 1.2), as in ASMX.
"""

from __future__ import annotations

import email.message
import http.server
import re
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Self

REFERENCE = Path(__file__).parent / "reference"
TEMPURI = "http://tempuri.org/"
SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
OPERATIONS = (
    "Authenticate",
    "GetSignInCookieInfo",
    "GetCustomFieldOptions",
    "StartTicket",
    "StartChat",
    "GetUserDetails",
    "NotifyEventFired",
)
CONTENT_TYPES = {"11": "text/xml; charset=utf-8", "12": "application/soap+xml; charset=utf-8"}


@dataclass(frozen=True)
class HttpMessage:
    """One request or response of a transcript, or one request the replay server received."""

    start_line: str
    headers: tuple[tuple[str, str], ...]  # in order, as sent
    body: bytes

    def header(self, name: str) -> str | None:
        """The value of the first header called `name` (case-insensitive), or None."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def header_names(self) -> list[str]:
        return [key for key, _ in self.headers]


@dataclass(frozen=True)
class Exchange:
    """One call of a transcript: which operation, over which SOAP version, request and response."""

    soap: str  # "11" or "12"
    op: str
    connection: int
    request: HttpMessage
    response: HttpMessage


def _parse_message(raw: bytes) -> tuple[HttpMessage, bytes]:
    head, _, rest = raw.partition(b"\r\n\r\n")
    start_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = tuple(tuple(line.split(": ", 1)) for line in header_lines)
    message = HttpMessage(start_line, headers, b"")
    length = int(message.header("Content-Length"))
    return HttpMessage(start_line, headers, rest[:length]), rest[length:]


def operation_of(soap: str, headers) -> str | None:
    """The operation a request asks for, read from the headers as ASMX reads it (`headers` has .get)."""
    if soap == "11":
        action = (headers.get("SOAPAction") or "").strip('"')
    else:
        msg = email.message.Message()
        msg["Content-Type"] = headers.get("Content-Type") or ""
        action = msg.get_param("action") or ""
    if action.startswith(TEMPURI):
        return action[len(TEMPURI):]
    return None


def load_transcript(soap: str) -> list[Exchange]:
    """The calls recorded in reference/soap<11|12>-transcript.txt, in order."""
    data = (REFERENCE / f"soap{soap}-transcript.txt").read_bytes()
    parts = re.split(rb"^#### call \d+ \(connection (\d+)\)\n", data, flags=re.MULTILINE)
    exchanges = []
    for connection, chunk in zip(parts[1::2], parts[2::2]):
        request_raw, response_raw = chunk.removeprefix(b"---- request\n").split(b"\n---- response\n")
        request, _ = _parse_message(request_raw)
        response, _ = _parse_message(response_raw)
        headers = {k: v for k, v in request.headers}
        exchanges.append(Exchange(soap, operation_of(soap, headers), int(connection), request, response))
    return exchanges


@dataclass
class Canned:
    """A response the server sends instead of the transcript's: for faults and HTTP errors."""

    status: int
    body: bytes
    content_type: str = "text/xml; charset=utf-8"


@dataclass(frozen=True)
class Received(HttpMessage):
    """A request as the replay server received it."""

    soap: str = ""  # "11", "12", or "" when the Content-Type is neither
    op: str | None = None
    client_port: int = 0  # the same port for two requests means one keep-alive connection
    continue_sent: bool = False  # whether the server answered Expect: 100-continue


def soap_fault(soap: str, code: str, reason: str) -> bytes:
    """A fault envelope as ASMX writes it; `code` is Client/Server (1.1) or Sender/Receiver (1.2)."""
    reason = reason.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    head = (
        '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{env}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
        "<soap:Body><soap:Fault>"
    )
    if soap == "11":
        fault = f"<faultcode>soap:{code}</faultcode><faultstring>{reason}</faultstring><detail />"
        env = SOAP11_ENV
    else:
        fault = (
            f"<soap:Code><soap:Value>soap:{code}</soap:Value></soap:Code>"
            f'<soap:Reason><soap:Text xml:lang="en">{reason}</soap:Text></soap:Reason><soap:Detail />'
        )
        env = SOAP12_ENV
    return (head.format(env=env) + fault + "</soap:Fault></soap:Body></soap:Envelope>").encode("utf-8")


class ReplayServer:
    """Serves the transcripts on 127.0.0.1 at a free port, in a thread; records every request."""

    path = "/ExternalProvider.asmx"

    def __init__(self, answer_100_continue: bool = True, tls: ssl.SSLContext | None = None):
        self.answer_100_continue = answer_100_continue
        self.tls = tls
        self.exchanges = {soap: load_transcript(soap) for soap in ("11", "12")}
        self.requests: list[Received] = []
        self.overrides: dict[tuple[str, str], Canned] = {}  # (soap, op) -> response
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="replay-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{port}{self.path}"

    def override(self, soap: str, op: str, status: int, body: bytes | str, content_type: str | None = None):
        """Answer every `op` over `soap` with this response from now on."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.overrides[(soap, op)] = Canned(status, body, content_type or CONTENT_TYPES[soap])

    def response_for(self, soap: str, op: str, body: bytes) -> Canned | None:
        if (soap, op) in self.overrides:
            return self.overrides[(soap, op)]
        candidates = [e for e in self.exchanges[soap] if e.op == op]
        for exchange in candidates:
            if exchange.request.body == body:
                return self._canned(exchange)
        return self._canned(candidates[0]) if candidates else None

    @staticmethod
    def _canned(exchange: Exchange) -> Canned:
        return Canned(200, exchange.response.body, exchange.response.header("Content-Type"))

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
        # Close the clients' keep-alive connections too, which ends their handler threads.
        with self._lock:
            for connection in self._connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._connections.clear()

    def _handler_class(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, and Expect: 100-continue is honoured

            def setup(self):
                super().setup()
                # Headers and body go out in two writes; with Nagle's algorithm the second waits for the
                # client's delayed ACK, which adds 40 ms to every call.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with server._lock:
                    server._connections.add(self.connection)

            def finish(self):
                super().finish()
                with server._lock:
                    server._connections.discard(self.connection)

            def log_message(self, format, *args):  # quiet: pytest shows failures, not access logs
                pass

            def handle_expect_100(self):
                self.continue_sent = server.answer_100_continue
                if server.answer_100_continue:
                    return super().handle_expect_100()
                return True  # read the body anyway, as a server that ignores Expect does

            def do_GET(self):
                if self.path.lower().endswith("?wsdl"):
                    wsdl = (REFERENCE / "ExternalProvider.asmx.wsdl").read_text("utf-8")
                    wsdl = wsdl.replace("http://127.0.0.1:8200/ExternalProvider.asmx", server.url)
                    self._send(Canned(200, wsdl.encode("utf-8"), "text/xml; charset=utf-8"))
                else:
                    self._send(Canned(404, b"not found", "text/plain"))

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                content_type = self.headers.get("Content-Type") or ""
                soap = "12" if content_type.startswith("application/soap+xml") else (
                    "11" if content_type.startswith("text/xml") else "")
                op = operation_of(soap, self.headers) if soap else None
                received = Received(
                    start_line=self.requestline,
                    headers=tuple(self.headers.items()),
                    body=body,
                    soap=soap,
                    op=op,
                    client_port=self.client_address[1],
                    continue_sent=getattr(self, "continue_sent", False),
                )
                self.continue_sent = False
                with server._lock:
                    server.requests.append(received)
                canned = server.response_for(soap, op, body) if soap else None
                if canned is None and soap:
                    # ASMX's answer to an unknown action: a Client/Sender fault with HTTP 500.
                    code = "Client" if soap == "11" else "Sender"
                    reason = f"Server did not recognize the value of HTTP Header SOAPAction: {op}."
                    canned = Canned(500, soap_fault(soap, code, reason), CONTENT_TYPES[soap])
                elif canned is None:
                    canned = Canned(415, b"unsupported media type", "text/plain")
                self._send(canned)

            def _send(self, canned: Canned):
                self.send_response(canned.status)
                self.send_header("Content-Type", canned.content_type)
                self.send_header("Content-Length", str(len(canned.body)))
                self.send_header("Cache-Control", "private, max-age=0")
                self.end_headers()
                self.wfile.write(canned.body)

        return Handler
