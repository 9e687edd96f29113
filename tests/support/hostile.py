"""A seeded generator of hostile HTTP requests for the endpoint, and a raw-socket client to send them.

    requests(seed, count, auth, secrets) -> [Hostile(kind, head, body)]: the same list for the same seed.
    send(host, port, hostile, timeout) -> (status or None, answer bytes): one request on its own connection.
    acceptable(status, answer) -> bool: 2xx or 4xx (never a 5xx: hostile input is the client's fault;
        never a traceback).

Every body carries the values of `secrets` (as loginPassword and in other places), so a test can look
for them in the log. Kinds: valid, truncated, wrong_namespace, unknown_operation, huge (1 MiB), deep,
wide (1,000-variable lists), bogus_charset, charset_mismatch, invalid_utf8, invalid_utf16, utf16,
control_chars, doctype, bogus_headers, chunked, broken_chunked, cut_short (a body shorter than its
Content-Length, then the client half-closes and waits for the answer).
"""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass

NS = "http://tempuri.org/"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
OPERATIONS = ("Authenticate", "GetSignInCookieInfo", "GetCustomFieldOptions", "StartTicket", "StartChat",
              "GetUserDetails", "NotifyEventFired")


@dataclass(frozen=True)
class Hostile:
    kind: str
    head: bytes  # request line and headers, without the blank line
    body: bytes
    half_close: bool = False  # shutdown(SHUT_WR) after the body: "that is all I send", then read


def envelope(operation: str, variables: list[str], soap12: bool = False, namespace: str = NS,
             declaration: str = '<?xml version="1.0" encoding="utf-8"?>') -> str:
    items = "".join(f"<string>{v}</string>" for v in variables)
    return (f'{declaration}<soap:Envelope xmlns:soap="{SOAP12 if soap12 else SOAP11}"><soap:Body>'
            f'<{operation} xmlns="{namespace}"><inputs><InputVariables>{items}</InputVariables></inputs>'
            f'</{operation}></soap:Body></soap:Envelope>')


def head(content_type: str = "text/xml; charset=utf-8", length: int | str | None = None,
         extra: tuple[str, ...] = ()) -> bytes:
    lines = ["POST /ExternalProvider.asmx HTTP/1.1", "Host: sso.example.test", f"Content-Type: {content_type}",
             'SOAPAction: "http://tempuri.org/Authenticate"', "Connection: close", *extra]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return "\r\n".join(lines).encode("latin-1")


def requests(seed: int, count: int, auth: str, secrets: tuple[str, ...]) -> list[Hostile]:
    rng = random.Random(seed)
    return [_one(rng, auth, secrets) for _ in range(count)]


def _variables(rng: random.Random, auth: str, secrets: tuple[str, ...]) -> list[str]:
    secret = rng.choice(secrets)
    user = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz\\@.ÄÖü日本") for _ in range(rng.randint(1, 40)))
    return [rng.choice([auth, f"authPW={secret}"]), f"loginUsername={user}", f"loginPassword={secret}",
            f"cf_Note={secret}"]


def _one(rng: random.Random, auth: str, secrets: tuple[str, ...]) -> Hostile:
    kind = rng.choice(KINDS)
    variables = _variables(rng, auth, secrets)
    operation = rng.choice(OPERATIONS)
    soap12 = rng.random() < 0.3
    content_type = "application/soap+xml; charset=utf-8" if soap12 else "text/xml; charset=utf-8"
    text = envelope(operation, variables, soap12)
    body = text.encode("utf-8")
    if kind == "truncated":
        body = body[:rng.randint(0, len(body) - 1)]
    elif kind == "cut_short":
        return Hostile(kind, head(content_type, len(body)), body[:rng.randint(0, len(body) - 1)], half_close=True)
    elif kind == "wrong_namespace":
        body = envelope(operation, variables, soap12, namespace=rng.choice(["", "urn:x", SOAP11, NS + "x"])).encode()
    elif kind == "unknown_operation":
        body = envelope(rng.choice(["DeleteUser", "authenticate", "x" * 300, "Ä"]), variables, soap12).encode()
    elif kind == "huge":
        size = rng.choice([1024 * 1024, 1024 * 1024 + 1, 1024 * 1024 - 4096])
        filler = variables[2] + "x" * max(0, size - len(body) - 40)
        body = envelope(operation, variables + [filler], soap12).encode()[:size]
    elif kind == "deep":
        depth = rng.choice([300, 3000, 30000])
        body = text.replace("<inputs>", "<a>" * depth + "<inputs>").replace("</inputs>", "</inputs>" + "</a>" * depth
                                                                           ).encode()
    elif kind == "wide":
        many = variables + [f"v{i}={rng.choice(secrets)}" for i in range(rng.choice([996, 997, 1000, 5000]))]
        body = envelope(operation, many, soap12).encode()
    elif kind == "bogus_charset":
        content_type = content_type.replace("utf-8", rng.choice(["utf-7", "latin-1", "x-bogus", '"', "", "utf-32",
                                                                 "utf-8; charset=utf-16", "ebcdic"]))
    elif kind == "charset_mismatch":
        choice = rng.randrange(3)
        if choice == 0:  # a UTF-8 body declared as UTF-16
            content_type = content_type.replace("utf-8", "utf-16")
            if len(body) % 2:
                body += b" "
        elif choice == 1:  # UTF-16 body declared as UTF-8
            body = text.encode("utf-16")
        else:  # the XML declaration disagrees with the header
            body = text.replace('encoding="utf-8"', 'encoding="iso-8859-1"').encode("utf-8")
    elif kind == "invalid_utf8":
        position = rng.randrange(len(body))
        body = body[:position] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]) + body[position:]
    elif kind == "invalid_utf16":
        content_type = content_type.replace("utf-8", rng.choice(["utf-16", "utf-16le"]))
        body = text.replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16-le")
        position = rng.randrange(0, len(body) // 2) * 2
        body = body[:position] + rng.choice([b"\x00\xd8", b"\x00\xdc\x00\xd8", b"\x41"]) + body[position:]
    elif kind == "utf16":
        content_type = content_type.replace("utf-8", "utf-16")
        body = text.replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16")
    elif kind == "control_chars":
        position = text.index("loginPassword=") + 14
        body = (text[:position] + "".join(chr(rng.randrange(0, 32)) for _ in range(5)) + text[position:]).encode()
    elif kind == "doctype":
        dtd = rng.choice(['<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
                          '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
                          "<!doctype x>"])
        body = ('<?xml version="1.0"?>' + dtd + text.split("?>", 1)[1]).encode()
    elif kind == "bogus_headers":
        return Hostile(kind, _bogus_head(rng, content_type, len(body)), body)
    elif kind == "chunked":
        return Hostile(kind, head(content_type, extra=("Transfer-Encoding: chunked",)), _chunked(rng, body))
    elif kind == "broken_chunked":
        chunked = _chunked(rng, body)
        broken = rng.choice([chunked[:-5] + b"zz\r\n\r\n", b"zz\r\n" + body + b"\r\n0\r\n\r\n",
                             b"-5\r\n" + body, b"ffffffffffffffffff\r\n" + body + b"\r\n0\r\n\r\n",
                             chunked.replace(b"\r\n", b"\n", 3)])
        return Hostile(kind, head(content_type, extra=("Transfer-Encoding: chunked",)), broken)
    return Hostile(kind, head(content_type, len(body)), body)


def _chunked(rng: random.Random, body: bytes) -> bytes:
    out, rest = b"", body
    while rest:
        size = rng.randint(1, max(1, len(rest)))
        out += f"{size:x}\r\n".encode() + rest[:size] + b"\r\n"
        rest = rest[size:]
    return out + b"0\r\n\r\n"


def _bogus_head(rng: random.Random, content_type: str, length: int) -> bytes:
    choice = rng.randrange(8)
    if choice == 0:
        return head(content_type, -rng.randint(1, 10 ** 6))
    if choice == 1:
        return head(content_type, rng.choice(["abc", "1e3", "0x10", "", " ", "9" * 30]))
    if choice == 2:
        return head(content_type, length, extra=(f"Content-Length: {length + 1}",))
    if choice == 3:
        return head(rng.choice(["", "application/json", "text/html; charset=utf-8", "text/xml;;;", "x" * 5000]), length)
    if choice == 4:
        return head(content_type, length, extra=("SOAPAction: " + "\x01" * 10, "X-" + "a" * 100 + ": " + "b" * 9000))
    if choice == 5:
        return head(content_type, length, extra=("Transfer-Encoding: chunked",))
    if choice == 6:
        return head(content_type, length).replace(b"POST /ExternalProvider.asmx HTTP/1.1",
                                                  rng.choice([b"POST / HTTP/1.0", b"POST /\x00 HTTP/1.1",
                                                              b"PUT / HTTP/1.1", b"POST " + b"/a" * 5000 + b" HTTP/1.1"]))
    return head(content_type, length, extra=("Expect: 100-continue",))


KINDS = ("valid", "truncated", "wrong_namespace", "unknown_operation", "huge", "deep", "wide", "bogus_charset",
         "charset_mismatch", "invalid_utf8", "invalid_utf16", "utf16", "control_chars", "doctype", "bogus_headers",
         "chunked", "broken_chunked", "cut_short")


def send(host: str, port: int, hostile: Hostile, timeout: float) -> tuple[int | None, bytes]:
    """Send one request on a new connection and read the answer until the server closes it.
    (None, b"") when nothing came back within `timeout` (a hang)."""
    with socket.create_connection((host, port), timeout=timeout) as connection:
        try:
            connection.sendall(hostile.head + b"\r\n\r\n" + hostile.body)
            if hostile.half_close:
                connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer (413) and close before a huge body is sent
        answer = b""
        try:
            while True:
                data = connection.recv(65536)
                if not data:
                    break
                answer += data
        except socket.timeout:
            if not answer:
                return None, b""
        except OSError:
            pass
    while answer.startswith(b"HTTP/1.1 100 ") and b"\r\n\r\n" in answer:
        answer = answer.split(b"\r\n\r\n", 1)[1]
    if not answer.startswith(b"HTTP/1."):
        return (0 if answer == b"" else -1), answer
    return int(answer[9:12]), answer


def acceptable(status: int | None, answer: bytes) -> bool:
    """2xx or 4xx; a closed connection without an answer (0) only for bytes that are not HTTP at all.
    Never a 5xx, even as a SOAP fault (a hostile request is the client's fault: a 5xx pages whoever watches
    for server errors), never a traceback."""
    if status is None or b"Traceback" in answer:
        return False
    return status == 0 or 200 <= status < 500
