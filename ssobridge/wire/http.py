"""The HTTP side of the endpoint: one URL, any path, SOAP 1.1 and 1.2, ?wsdl, and the guards.

Requests that cannot be SOAP for us are refused here, fast and plainly, before spyne sees them: an
empty or oversized body, any DOCTYPE (SOAP forbids DTDs), a content type that is not SOAP, a charset
other than UTF-8 or UTF-16, a body that does not decode as its charset says or whose XML declaration
names another encoding. What passes is handed on as UTF-8 without an XML declaration, so spyne and
lxml see one form only. Bodies are never logged.
"""

from __future__ import annotations

import io
import logging
import re
from html import escape
from importlib import resources
from typing import Callable, Iterable, Mapping

from lxml import etree
from spyne.server.wsgi import WsgiApplication

from .. import metrics
from ..operations import OPERATIONS
from . import envelope
from .soap import ENVELOPES, NS, PARSED_ENVELOPE, make_applications

log = logging.getLogger("ssobridge.http")

# A refused body of up to this many times max_body_bytes is read and dropped (without being kept), so its
# 413 arrives: closing a socket with unread data makes the kernel reset the connection, and the client may
# then never see the answer. Larger ones are not read; those clients get the reset.
DRAIN_FACTOR = 16
INVALID_LENGTH = ("400 Bad Request", "Invalid Content-Length.")
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
# No DTDs, no entities, no network, no huge trees: the envelope is data, never instructions.
_PARSER = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True, huge_tree=False)
_WSDL_ADDRESS = re.compile(r'(<(?:soap|soap12|http):address location=")[^"]*(")')

StartResponse = Callable[..., object]


def load_wsdl(public_url: str) -> bytes:
    """The WSDL ASMX publishes for these operations, with our public URL as the address."""
    text = resources.files("ssobridge").joinpath("wsdl/ExternalProvider.asmx.wsdl").read_text(encoding="utf-8")
    return _WSDL_ADDRESS.sub(lambda m: m.group(1) + escape(public_url, quote=True) + m.group(2), text).encode("utf-8")


class Endpoint:
    """The WSGI application SmarterTrack talks to."""

    def __init__(self, bridge, public_url: str, max_body_bytes: int, max_variables: int,
                 routes: Mapping[str, Callable] | None = None):
        """`routes`: path -> WSGI application answering GET and HEAD there (/metrics, /healthz, /readyz)."""
        soap11, soap12 = make_applications(bridge, max_variables)
        self._soap11 = WsgiApplication(soap11)
        self._soap12 = WsgiApplication(soap12)
        self._call = bridge.call
        self._wsdl = load_wsdl(public_url)
        self._max_body = max_body_bytes
        self._max_variables = max_variables
        self._routes = dict(routes or {})

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method in ("GET", "HEAD"):
            return self._get(environ, start_response)
        if method != "POST":
            return _plain(start_response, "405 Method Not Allowed", "Use POST for SOAP calls, GET ?wsdl for the WSDL.",
                          [("Allow", "GET, HEAD, POST")])
        soap12 = "application/soap+xml" in environ.get("CONTENT_TYPE", "").lower()
        body, problem = self._read_body(environ)
        if problem:
            log_refused(problem, environ.get("REMOTE_ADDR"))
            return _fault(start_response, *problem, soap12)
        content_type = environ.get("CONTENT_TYPE", "").lower()
        if not (soap12 or content_type.startswith("text/xml")):
            return _fault(start_response, "415 Unsupported Media Type",
                          "Content-Type must be text/xml (SOAP 1.1) or application/soap+xml (SOAP 1.2).", soap12)
        body, problem = _as_utf8(body, environ.get("CONTENT_TYPE", ""))
        if problem:
            return _fault(start_response, problem[0], problem[1], soap12)
        parsed, problem = _check_envelope(body, soap12, self._max_variables)
        if problem:
            return _fault(start_response, "400 Bad Request", problem, soap12)
        root, call = parsed[0], parsed[2]
        if (items := envelope.plain_items(root, call, self._max_variables)) is not None:
            status, headers, data = envelope.answer(self._call, call.tag[len(NS) + 2:], items, soap12)
            start_response(status, headers)
            return [data]
        environ = dict(environ, **{"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
                                   "QUERY_STRING": "", "CONTENT_TYPE": _CHARSET.sub("", environ["CONTENT_TYPE"])
                                   + "; charset=utf-8", PARSED_ENVELOPE: parsed[:2]})
        return (self._soap12 if soap12 else self._soap11)(environ, start_response)

    def _get(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if (route := self._routes.get(environ.get("PATH_INFO", ""))) is not None:
            return route(environ, start_response)
        if environ.get("QUERY_STRING", "").lower().split("&")[0] in ("wsdl", "wsdl="):
            start_response("200 OK", [("Content-Type", "text/xml; charset=utf-8"),
                                      ("Content-Length", str(len(self._wsdl)))])
            return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [self._wsdl]
        return _plain(start_response, "200 OK", "ssobridge: SmarterTrack external provider web service. "
                                                "POST SOAP 1.1 or 1.2 here; the WSDL is at ?wsdl.")

    def _read_body(self, environ: dict) -> tuple[bytes, tuple[str, str] | None]:
        length, problem = checked_length(environ.get("CONTENT_LENGTH") or None, self._max_body)
        if problem:
            if length is not None and length <= DRAIN_FACTOR * self._max_body:
                _discard(environ["wsgi.input"], length)
            return b"", problem
        # Without a Content-Length (chunked), read one byte past the limit to know it was exceeded.
        body = environ["wsgi.input"].read(length if length is not None else self._max_body + 1)
        if len(body) > self._max_body:
            return b"", too_large(self._max_body)
        if not body.strip():
            return b"", ("400 Bad Request", "Empty request body: a SOAP envelope was expected.")
        if _DOCTYPE.search(body):
            return b"", ("400 Bad Request", "DOCTYPE is not allowed in a SOAP message.")
        return body, None


def checked_length(header: str | None, max_body: int) -> tuple[int | None, tuple[str, str] | None]:
    """The Content-Length a request announces (None without one: chunked), and the refusal it earns before
    any of its body is read (not a number; more than max_body), for the WSGI and the RSGI side alike."""
    if header is None:
        return None, None
    if not header.strip().isdigit():
        return None, INVALID_LENGTH
    length = int(header)
    return length, too_large(max_body) if length > max_body else None


def too_large(max_body: int) -> tuple[str, str]:
    return "413 Payload Too Large", f"Request body larger than {max_body} bytes."


def log_refused(problem: tuple[str, str], remote: str | None) -> None:
    log.warning("event=request_refused status=%s reason=%r remote=%s", problem[0][:3], problem[1], remote)


def _discard(stream, length: int) -> None:
    """Read and drop a refused body of `length` bytes (see DRAIN_FACTOR)."""
    while length > 0:
        chunk = stream.read(min(length, 65536))
        if not chunk:
            return
        length -= len(chunk)


# Each charset we accept, and the encodings an XML declaration may name for it.
_CHARSETS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-16": "utf-16", "utf-16le": "utf-16", "utf-16be": "utf-16"}
_CHARSET = re.compile(r";\s*charset\s*=\s*(\"[^\"]*\"|[^;]*)", re.IGNORECASE)
_XML_DECLARATION = re.compile(r"<\?xml[^>]*?\?>")
_DECLARED_ENCODING = re.compile(r"""encoding\s*=\s*["']([^"']*)["']""")


def _as_utf8(body: bytes, content_type: str) -> tuple[bytes, tuple[str, str] | None]:
    """The body as UTF-8 without its XML declaration, or why it cannot be read as what it claims."""
    found = _CHARSET.search(content_type)
    charset = found.group(1).strip().strip('"').lower() if found else ""
    if charset and charset not in _CHARSETS:
        return b"", ("415 Unsupported Media Type", "Unsupported charset: use utf-8 or utf-16.")
    if not charset:  # XML's own rules: a UTF-16 byte order mark, else UTF-8
        charset = "utf-16" if body[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8"
    try:
        text = body.decode(charset)
    except UnicodeDecodeError:
        return b"", ("400 Bad Request", f"The request body is not valid {charset.upper()}.")
    text = text.lstrip("\ufeff \t\r\n")
    if not text.startswith("<"):
        return b"", ("400 Bad Request", f"The request body is not XML in {charset.upper()}.")
    declaration = _XML_DECLARATION.match(text)
    if declaration:
        declared = _DECLARED_ENCODING.search(declaration.group(0))
        if declared and _CHARSETS.get(declared.group(1).lower()) != _CHARSETS[charset]:
            return b"", ("400 Bad Request", "The XML declaration names another encoding than the Content-Type.")
        text = text[declaration.end():]
    return text.encode("utf-8"), None


def _check_envelope(body: bytes, soap12: bool, max_variables: int) -> tuple[tuple | None, str | None]:
    """The parsed envelope (root, xml ids, the operation's element), or a short plain reason when the
    body is not a SOAP call of one of our operations."""
    try:
        root, ids = etree.XMLID(body, _PARSER)
    except etree.XMLSyntaxError as e:
        return None, f"Malformed XML: {e.msg.strip()}"
    envelope = ENVELOPES[soap12]
    if root.tag != f"{{{envelope}}}Envelope":
        return None, f"Not a SOAP {'1.2' if soap12 else '1.1'} envelope."
    body_element = root.find(f"{{{envelope}}}Body")
    call = next(iter(body_element), None) if body_element is not None else None
    if call is None or not isinstance(call.tag, str):
        return None, "The SOAP Body names no operation."
    namespace, _, operation = call.tag[1:].partition("}")
    if namespace != NS or operation not in OPERATIONS:
        return None, f"Unknown operation {etree.QName(call).localname!r}; this service has {', '.join(OPERATIONS)}."
    # Refused here rather than in spyne, which would first build an object for each of them.
    variables = call.find(f"{{{NS}}}inputs/{{{NS}}}InputVariables")
    if variables is not None and len(variables) > max_variables:
        return None, f"More than {max_variables} InputVariables."
    if b"<!--" in body:  # spyne's own parser drops comments (<string>a<!-- -->b</string> is "ab")
        etree.strip_tags(root, etree.Comment)
    return (root, ids, call), None


def _plain(start_response: StartResponse, status: str, text: str, headers: list | None = None) -> list[bytes]:
    data = text.encode("utf-8")
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data))),
                            *(headers or [])])
    return [data]


def _fault(start_response: StartResponse, status: str, text: str, soap12: bool) -> list[bytes]:
    code, headers, data = refusal(status, text, soap12)
    start_response(status, headers)
    return [data]


def refusal(status: str, text: str, soap12: bool) -> tuple[int, list[tuple[str, str]], bytes]:
    """A SOAP fault envelope of the caller's SOAP version, with a plain message: (status, headers, body)."""
    metrics.REJECTED.labels(status[:3]).inc()
    message = escape(text, quote=False)
    if soap12:
        body = (f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{ENVELOPES[True]}"><soap:Body>'
                f'<soap:Fault><soap:Code><soap:Value>soap:Sender</soap:Value></soap:Code><soap:Reason>'
                f'<soap:Text xml:lang="en">{message}</soap:Text></soap:Reason></soap:Fault>'
                f'</soap:Body></soap:Envelope>')
        content_type = "application/soap+xml; charset=utf-8"
    else:
        body = (f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{ENVELOPES[False]}"><soap:Body>'
                f'<soap:Fault><faultcode>soap:Client</faultcode><faultstring>{message}</faultstring></soap:Fault>'
                f'</soap:Body></soap:Envelope>')
        content_type = "text/xml; charset=utf-8"
    data = body.encode("utf-8")
    return int(status[:3]), [("Content-Type", content_type), ("Content-Length", str(len(data))),
                             ("Connection", "close")], data
