"""Which server a request opens, rules of directory/servers.py with a fake probe and fake outcomes."""

from __future__ import annotations

import threading
import time

from ssobridge.directory.servers import Servers

A, B = "ldaps://a.example.test", "ldaps://b.example.test"


class Probe:
    """Stands for the background probe: each call waits until the test says whether the server is back."""

    def __init__(self):
        self.calls, self.back = [], threading.Event()

    def __call__(self, url: str) -> None:
        self.calls.append(url)
        if not self.back.wait(5):
            raise OSError("still down")


def test_a_new_server_is_opened_by_one_request_and_the_others_move_on_to_the_next():
    servers = Servers("x", (A, B), retry_down_after=30, wait_for_probe=1, probe=Probe())
    first = servers.choose(None, set())
    assert (first.url, first.probing) == (A, True)
    second = servers.choose(None, set())
    assert (second.url, second.probing) == (B, True)


def test_the_last_new_server_is_waited_for_and_then_used():
    servers = Servers("x", (A,), retry_down_after=30, wait_for_probe=5, probe=Probe())
    first = servers.choose(None, set())
    threading.Timer(0.1, servers.answered, (first, True)).start()
    started = time.monotonic()
    again = servers.choose(None, set())
    assert (again.url, again.probing, again.up) == (A, False, True)
    assert 0.05 < time.monotonic() - started < 1


def test_every_server_down_answers_none_at_once_until_a_background_probe_finds_one_back():
    probe = Probe()
    servers = Servers("x", (A, B), retry_down_after=0.2, wait_for_probe=5, probe=probe)
    for url in (A, B):
        state = servers.choose(None, set())
        assert state.url == url
        servers.failed(state, "timed out", seconds=1.0, claimed=True)  # slow failures: no quick retry
    started = time.monotonic()
    assert servers.choose(None, set()) is None
    assert time.monotonic() - started < 0.01
    time.sleep(0.25)  # retry_down_after is over: the next request starts one probe per server and moves on
    assert servers.choose(None, set()) is None
    assert servers.choose(None, set()) is None
    assert sorted(probe.calls) == [A, B]
    probe.back.set()
    deadline = time.monotonic() + 2
    while not (state := servers.choose(None, set())) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (state.url, state.up, state.probing) == (A, True, False)


def test_with_every_server_down_one_that_refused_at_once_is_tried_by_one_request_at_a_time():
    servers = Servers("x", (A,), retry_down_after=30, wait_for_probe=5, probe=Probe())
    state = servers.choose(None, set())
    servers.failed(state, "Connection refused", seconds=0.001, claimed=True)
    again = servers.choose(None, set())
    assert (again.url, again.probing) == (A, True)
    started = time.monotonic()
    assert servers.choose(None, set()) is None  # the other request does not wait for it
    assert time.monotonic() - started < 0.01


def test_a_server_is_counted_as_a_failover_once_while_it_stays_down():
    servers = Servers("x", (A,), retry_down_after=30, wait_for_probe=5, probe=Probe())
    state = servers.choose(None, set())
    assert servers.failed(state, "Connection refused", seconds=0.001, claimed=True) is True
    assert servers.failed(servers.choose(None, set()), "Connection refused", seconds=0.001, claimed=True) is False
    assert servers.failovers == 1
    assert servers.answered(servers.choose(None, set()), claimed=True) is True
