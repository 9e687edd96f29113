"""With every server of a directory marked down, logins answer "directory unavailable" at once; one probe
per server finds a server back, and a burst of first calls does not queue on the same dead server.

Real sockets: a black hole (accepts TCP, never answers: the TLS handshake waits for connect_timeout) of
our own, so that its count of accepted connections is this test's alone, and slapd stopped and started.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.support.network import BlackHole
from tests.support.services import (ATTRIBUTES, MESSAGES, authenticate, fail, identity, ok, openldap_config,
                                    start_service)


@pytest.fixture
def hole():
    hole = BlackHole()
    yield hole
    hole.close()


# one worker: down-marks and probes are per worker process, and these assertions count them for one
ONE_WORKER = "workers = 1\n"


def url_of(hole: BlackHole) -> str:
    return f"ldaps://{hole.host}:{hole.port}"


def test_with_every_server_down_logins_answer_unavailable_at_once_after_the_first_failed_probe(
        openldap, tmp_path, hole):
    service = start_service(tmp_path, openldap_config(openldap, urls=[url_of(hole)], connect_timeout=1,
                                                      retry_down_after=30) + ATTRIBUTES, server=ONE_WORKER)
    user = openldap.users["jdoe"]
    try:
        started = time.monotonic()
        assert authenticate(service, user.login, user.password) == fail(MESSAGES["unavailable"])
        assert time.monotonic() - started >= 1  # the first probe waits for connect_timeout
        timings = []
        for _ in range(50):
            started = time.monotonic()
            assert authenticate(service, user.login, user.password) == fail(MESSAGES["unavailable"])
            timings.append(time.monotonic() - started)
    finally:
        service.stop()
    # No network wait (that would be connect_timeout, 1 s); the target is p99 <= 50 ms. One of 50 may be late
    # on this shared 2-CPU machine (a 96 ms outlier was seen under load, the median being 3 ms).
    assert sorted(timings)[-2] < 0.05 and max(timings) < 0.5, sorted(timings)[-5:]
    assert hole.connections == 1  # one probe per retry interval, not one per login


def test_a_burst_of_first_calls_connects_to_a_dead_first_server_once(openldap, tmp_path, hole):
    service = start_service(tmp_path, openldap_config(openldap, urls=[url_of(hole), openldap.ldaps_url],
                                                      connect_timeout=1, timeout=30) + ATTRIBUTES,
                            server=ONE_WORKER)
    user = openldap.users["jdoe"]
    start = threading.Barrier(16)
    results, timings = [], []

    def login() -> None:
        start.wait()
        started = time.monotonic()
        results.append(authenticate(service, user.login, user.password))
        timings.append(time.monotonic() - started)

    try:
        threads = [threading.Thread(target=login) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        service.stop()
    assert results == [ok(*identity(openldap, "jdoe"))] * 16
    assert hole.connections == 1
    assert max(timings) < 1.6, sorted(timings)  # one connect_timeout (1 s) at most, well under 2 x


def test_a_restarted_server_is_used_again_within_one_retry_interval(openldap, tmp_path):
    service = start_service(tmp_path, openldap_config(openldap, connect_timeout=1, retry_down_after=2) + ATTRIBUTES,
                            server=ONE_WORKER)
    user = openldap.users["jdoe"]
    try:
        assert authenticate(service, user.login, user.password) == ok(*identity(openldap, "jdoe"))
        with openldap.outage():
            for _ in range(5):
                started = time.monotonic()
                assert authenticate(service, user.login, user.password) == fail(MESSAGES["unavailable"])
                assert time.monotonic() - started < 0.5
        restarted = time.monotonic()
        while (answer := authenticate(service, user.login, user.password)) != ok(*identity(openldap, "jdoe")):
            assert answer == fail(MESSAGES["unavailable"])
            assert time.monotonic() - restarted < 2, "not back within retry_down_after"
            time.sleep(0.1)
        log = service.log()
    finally:
        service.stop()
    assert log.count("event=directory_server_down") == 1  # marked down once, not once per login
