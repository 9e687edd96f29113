"""Hostile HTTP against the real service on OpenLDAP: slow clients, bad bytes, a fuzzed corpus.

The service runs with request_timeout = 3 (headers within 1 s, the body within 2 s more), so the
deadlines show in seconds; bench/hostile.py measures the default 30 s.
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support import hostile
from tests.support.services import (ATTRIBUTES, AUTH, WEB_SERVICE_PASSWORD, authenticate, envelope, fault_text,
                                    identity, ok, openldap_config, pids_of, scrape, start_service, value)

SECRETS = ("Hostile-Secret-4711", "Zz9-geheim-Passwort")


@pytest.fixture(scope="module")
def service(openldap, tmp_path_factory):
    running = start_service(tmp_path_factory.mktemp("hostile"), openldap_config(openldap) + ATTRIBUTES,
                            server="request_timeout = 3\n", log_level="DEBUG")
    yield running
    running.stop()


def address(service) -> tuple[str, int]:
    host, port = service.url.split("//")[1].split("/")[0].split(":")
    return host, int(port)


def assert_clean_log(service) -> None:
    log = service.log()
    assert "Traceback" not in log
    for secret in (*SECRETS, WEB_SERVICE_PASSWORD):
        assert secret not in log
    assert "<soap" not in log and "Envelope" not in log


def connect(service) -> socket.socket:
    connection = socket.create_connection(address(service), timeout=10)
    return connection


def test_a_good_login_is_answered_within_a_second_while_450_slow_clients_hold_connections(service, openldap):
    held = []
    try:
        held += [connect(service) for _ in range(300)]  # half-open: connected, nothing sent
        for _ in range(100):  # body-starved: whole headers, no body
            connection = connect(service)
            connection.sendall(hostile.head(length=2000) + b"\r\n\r\n" + b"<soap")
            held.append(connection)
        for _ in range(50):  # one byte of the request line, then (in real life) one byte every 10 s
            connection = connect(service)
            connection.sendall(b"P")
            held.append(connection)
        time.sleep(0.3)
        user = openldap.users["jdoe"]
        started = time.monotonic()
        result = authenticate(service, user.login, user.password)
        elapsed = time.monotonic() - started
        assert result == ok(*identity(openldap, "jdoe"))
        assert elapsed < 1.0
    finally:
        for connection in held:
            connection.close()
    assert_clean_log(service)


def closed_after(connection: socket.socket) -> tuple[float, bytes]:
    """Seconds until the server closed the connection, and what it sent before."""
    started, answer = time.monotonic(), b""
    connection.settimeout(10)
    while True:
        data = connection.recv(65536)
        if not data:
            return time.monotonic() - started, answer
        answer += data


def test_a_request_whose_headers_do_not_arrive_is_closed_after_a_third_of_request_timeout(service):
    with connect(service) as silent, connect(service) as trickling:
        trickling.sendall(b"POST / HT")
        assert closed_after(silent)[0] < 2.0
        seconds, answer = closed_after(trickling)
        assert seconds < 2.0


def test_a_body_that_does_not_arrive_within_request_timeout_gets_408_and_the_connection_closes(service):
    with connect(service) as starved:
        starved.sendall(hostile.head(length=5000) + b"\r\n\r\n" + b"<soap:Envelope")
        seconds, answer = closed_after(starved)
    assert 1.5 < seconds < 3.5
    assert answer.startswith(b"HTTP/1.1 408")
    assert fault_text(answer.split(b"\r\n\r\n", 1)[1]) == "The request body did not arrive within 2 s."


def test_a_client_that_closes_in_the_middle_of_its_body_leaves_no_error_and_the_service_answers_on(service, openldap):
    with connect(service) as quitter:
        quitter.sendall(hostile.head(length=5000) + b"\r\n\r\n" + b"<soap:Envelope")
        time.sleep(0.2)
    time.sleep(0.3)
    user = openldap.users["jdoe"]
    assert authenticate(service, user.login, user.password) == ok(*identity(openldap, "jdoe"))
    assert "internal_error" not in service.log()
    assert_clean_log(service)


def raw(service, head: bytes, body: bytes) -> tuple[int, bytes]:
    status, answer = hostile.send(*address(service), hostile.Hostile("test", head, body), timeout=10)
    return status, answer.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in answer else b""


SECRET_BODY = envelope("Authenticate", [AUTH, "loginUsername=jdoe", f"loginPassword={SECRETS[0]}"])


@pytest.mark.parametrize("content_type, body, status, message", [
    ("text/xml; charset=utf-16", SECRET_BODY + (b" " if len(SECRET_BODY) % 2 else b""), 400,
     "The request body is not XML in UTF-16."),
    ("text/xml; charset=utf-16", SECRET_BODY + (b"" if len(SECRET_BODY) % 2 else b" "), 400,
     "The request body is not valid UTF-16."),
    ("text/xml; charset=latin-1", SECRET_BODY, 415, "Unsupported charset: use utf-8 or utf-16."),
    ("text/xml; charset=x-bogus", SECRET_BODY, 415, "Unsupported charset: use utf-8 or utf-16."),
    ("text/xml; charset=utf-8", SECRET_BODY.replace(b"jdoe", b"jd\xffoe"), 400, "The request body is not valid UTF-8."),
    ("text/xml; charset=utf-8", SECRET_BODY.replace(b'encoding="utf-8"', b'encoding="utf-16"'), 400,
     "The XML declaration names another encoding than the Content-Type."),
    ("application/soap+xml; charset=utf-16", SECRET_BODY.decode().encode("utf-16")[:-1], 400,
     "The request body is not valid UTF-16."),
])
def test_a_body_not_in_its_declared_charset_is_a_short_fault(service, content_type, body, status, message):
    got, data = raw(service, hostile.head(content_type, len(body)), body)
    assert (got, fault_text(data)) == (status, message)
    assert_clean_log(service)


def test_a_utf16_body_is_read_like_its_utf8_twin(service, openldap):
    user = openldap.users["non_ascii"]
    body = envelope("Authenticate", [AUTH, f"loginUsername={user.login}", f"loginPassword={user.password}"])
    body = body.decode().replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16")
    status, data = raw(service, hostile.head("text/xml; charset=utf-16", len(body)), body)
    assert status == 200 and b"Authentication=OK" in data


@pytest.mark.parametrize("length, status", [("-1", 400), ("abc", 400), ("99999999999999999999", 400),
                                            ("1048577", 413)])
def test_a_negative_bogus_or_too_large_content_length_is_refused(service, length, status):
    got, _ = raw(service, hostile.head(length=length), SECRET_BODY)
    assert got == status
    assert_clean_log(service)


@pytest.mark.parametrize("chunked", [b"zz\r\n" + SECRET_BODY + b"\r\n0\r\n\r\n", b"-5\r\n" + SECRET_BODY,
                                     f"{len(SECRET_BODY):x}\r\n".encode() + SECRET_BODY[:-9] + b"\r\n0\r\n\r\n"])
def test_broken_chunked_encoding_is_a_4xx(service, chunked):
    got, data = raw(service, hostile.head(extra=("Transfer-Encoding: chunked",)), chunked)
    assert 400 <= got < 500
    assert b"Traceback" not in data
    assert_clean_log(service)


def test_a_fuzzed_corpus_gets_no_traceback_no_hang_and_leaks_no_secret(service):
    corpus = hostile.requests(seed=9, count=3000, auth=AUTH, secrets=SECRETS)
    host, port = address(service)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda request: hostile.send(host, port, request, timeout=10), corpus))
    hangs = [r.kind for r, (status, _) in zip(corpus, answers) if status is None]
    bad = [(r.kind, status, answer[:200]) for r, (status, answer) in zip(corpus, answers)
           if not hostile.acceptable(status, answer)]
    assert hangs == []
    assert bad == []
    assert {r.kind for r in corpus} == set(hostile.KINDS)
    assert sum(1 for status, _ in answers if status == 200) > 100  # the valid ones got through
    assert_clean_log(service)


def test_a_huge_username_with_a_newline_is_logged_escaped_and_cut_to_256_characters(service):
    name = "evil\n2026-01-01 INFO ssobridge FORGED " + "x" * 375_000
    body = envelope("Authenticate", [AUTH, f"loginUsername={name}", f"loginPassword={SECRETS[0]}"])
    status, data = raw(service, hostile.head(length=len(body)), body)
    assert status == 200 and b"Authentication=FAIL" in data
    lines = [line for line in service.log().splitlines() if "FORGED" in line]
    assert len(lines) == 1
    assert "user='evil\\n2026-01-01 INFO ssobridge FORGED xxx" in lines[0]
    assert f"...({len(name)} characters)" in lines[0] and len(lines[0]) < 800
    assert_clean_log(service)


def test_a_body_cut_short_by_a_half_close_gets_a_400_from_every_worker_never_a_5xx(openldap, tmp_path):
    """Content-Length larger than the body, then shutdown(SHUT_WR): the client still reads, and gets the short
    fault of other refusals (granian answered a bare 500 when the endpoint returned without an answer). At
    least 200 cut points, and on until both workers have refused some (which one accepts is the kernel's)."""
    service = start_service(tmp_path, openldap_config(openldap), server="workers = 2\n", log_level="INFO")
    body = envelope("Authenticate", [AUTH, "loginUsername=jdoe", f"loginPassword={SECRETS[0]}"])
    answers = []

    def refusing_workers() -> int:
        return len(set(pids_of(service.log(), "event=request_refused status=400")))

    try:
        for attempt in range(1000):
            if attempt >= 200 and refusing_workers() == 2:
                break
            cut = attempt % 200 * len(body) // 200  # from no body at all to one byte short
            with connect(service) as client:
                client.sendall(hostile.head(length=len(body)) + b"\r\n\r\n" + body[:cut])
                client.shutdown(socket.SHUT_WR)
                answers.append(closed_after(client)[1])
        chunked = f"{len(body):x}\r\n".encode() + body
        for attempt in range(20):  # chunked, cut short before its last chunk: granian ends the body there
            with connect(service) as client:
                client.sendall(hostile.head(extra=("Transfer-Encoding: chunked",)) + b"\r\n\r\n"
                               + chunked[:attempt * len(chunked) // 20])
                client.shutdown(socket.SHUT_WR)
                answers.append(closed_after(client)[1])
        samples = scrape(service)
        log = service.log()
    finally:
        service.stop()
    cut_short, chunked_answers = answers[:-20], answers[-20:]
    assert len(cut_short) >= 200 and len(set(pids_of(log, "event=request_refused status=400"))) == 2
    assert [answer[:12] for answer in answers] == [b"HTTP/1.1 400"] * len(answers)
    assert {fault_text(answer.split(b"\r\n\r\n", 1)[1]) for answer in cut_short} == \
        {"The request body ended before the length its headers announced."}
    assert all(fault_text(answer.split(b"\r\n\r\n", 1)[1]) for answer in chunked_answers)  # what it got so far
    assert value(samples, "ssobridge_requests_rejected_total", status="400") == len(answers)
    assert "internal_error" not in log and "Traceback" not in log and SECRETS[0] not in log
