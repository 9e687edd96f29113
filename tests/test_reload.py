"""Reload (SIGHUP and `ssobridge reload`) against slapd: every worker takes the new config in place,
keep-alive connections included, within 2 s of the signal, and not one request fails; a refused config
changes nothing (docs/operations.md, Reloading the config).

In the test under load, six clients log an unknown user in without pause (no bind, so nothing locks),
three of them reusing one keep-alive connection each as SmarterTrack's .NET client does; the FAIL message
they get is the config's [messages] wrong_credentials, so each answer says which config served it.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import threading
import time
from pathlib import Path

from lxml import etree

from ssobridge.events.leader import LeaderLock
from tests.support.events import jsonl, notify, wait_for
from tests.support.services import (AUTH, JSONL_ONLY, NO_SHIELD, NS, TWO_WORKERS, authenticate, envelope,
                                    openldap_config, pids_of, scrape, start_service, value)

WORKERS = 3
DEADLINE = 2.0  # seconds from the signal by which every answer must carry the new message
BODY = envelope("Authenticate", [AUTH, "loginUsername=ghost", "loginPassword=Not-the-Passw0rd"])
HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{NS}Authenticate"'}


def messages(text: str) -> str:
    return f'[messages]\nwrong_credentials = "{text}"\n'


def rewrite_messages(config: Path, text: str) -> None:
    body = re.sub(r'(?m)^wrong_credentials = ".*"$', f'wrong_credentials = "{text}"', config.read_text())
    config.write_text(body)


def count(service, marker: str) -> int:
    return service.log().count(marker)


def test_sighup_and_reload_command_change_a_message_while_logins_go_on_without_a_failure(openldap, tmp_path):
    user = openldap.users["jdoe"]
    service = start_service(tmp_path, openldap_config(openldap) + NO_SHIELD + messages("First text."),
                            server="workers = 2\n", log_level="INFO")
    answers, stop = [], threading.Event()

    def logins():
        while not stop.is_set():
            try:
                answers.append(authenticate(service, "jdoe", user.password)["OutputVariables"][0])
            except Exception as e:  # noqa: BLE001 - any failed request is what this test looks for
                answers.append(repr(e))

    stream = [threading.Thread(target=logins) for _ in range(2)]
    try:
        assert authenticate(service, "jdoe", "wrong")["Message"] == "First text."
        for thread in stream:
            thread.start()
        config = tmp_path / "ssobridge.toml"
        rewrite_messages(config, "Second text.")
        service.process.send_signal(signal.SIGHUP)
        wait_for(lambda: count(service, "event=reload_done") == 1, timeout=30)
        assert authenticate(service, "jdoe", "wrong")["Message"] == "Second text."

        rewrite_messages(config, "Third text.")
        reload = service.command("reload")
        assert (reload.returncode, reload.stderr) == (0, "")
        assert reload.stdout.startswith(f"ssobridge: asked serve (pid {service.process.pid}) to reload ")
        wait_for(lambda: count(service, "event=reload_done") == 2, timeout=30)
        assert authenticate(service, "jdoe", "wrong")["Message"] == "Third text."
    finally:
        stop.set()
        for thread in stream:
            if thread.is_alive():
                thread.join()
        service.stop()
    assert len(answers) > 20
    assert [a for a in answers if a != "Authentication=OK"] == []  # no worker is stopped, so nothing is reset


def test_a_broken_config_is_refused_with_its_problems_logged_and_the_old_one_keeps_serving(openldap, tmp_path):
    service = start_service(tmp_path, openldap_config(openldap) + NO_SHIELD + messages("Kept text."),
                            server="workers = 1\n", log_level="INFO")
    try:
        config = tmp_path / "ssobridge.toml"
        good = config.read_text()
        config.write_text(good.replace('wrong_credentials = "Kept text."', 'wrong_credentials = "Lost text.'))
        service.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "event=reload_refused" in service.log(), timeout=15)
        log = service.log()
        assert re.search(r"ERROR ssobridge event=reload_problem config=\S+ssobridge.toml problem=.*line \d+", log)
        assert "problems=1 note='the running config goes on serving; fix the file and reload again'" in log
        assert authenticate(service, "jdoe", "wrong")["Message"] == "Kept text."

        config.write_text(good.replace("[lockout]\nenabled = false", "[lockout]\nenabled = false\nthreshhold = 3"))
        reload = service.command("reload")  # refused before any signal: the file is checked first
        assert reload.returncode == 2
        assert "lockout.threshhold: unknown key" in reload.stderr
        time.sleep(1)
        assert "event=reload_requested" in service.log() and count(service, "event=reload_requested") == 1
        assert authenticate(service, "jdoe", "wrong")["Message"] == "Kept text."
        assert service.process.poll() is None
    finally:
        service.stop()


def message_of(data: bytes) -> str:
    return etree.fromstring(data).find(f".//{{{NS}}}Message").text


class Client(threading.Thread):
    """Logs in until stopped; `answers`: (sent, message or the error) per request, in order."""

    def __init__(self, address: tuple[str, int], keep_alive: bool, stop: threading.Event):
        super().__init__(daemon=True)
        self.address, self.keep_alive, self.stop = address, keep_alive, stop
        self.answers: list[tuple[float, str]] = []
        self.connections = 0

    def run(self) -> None:
        connection = None
        while not self.stop.is_set():
            sent = time.monotonic()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(*self.address, timeout=15)
                    self.connections += 1
                connection.request("POST", "/ExternalProvider.asmx", BODY, HEADERS)
                response = connection.getresponse()
                data = response.read()
                answer = message_of(data) if response.status == 200 else f"HTTP {response.status}"
            except Exception as e:  # noqa: BLE001 - any failed request is what this test looks for
                answer, connection = repr(e), None
            self.answers.append((sent, answer))
            if not self.keep_alive and connection is not None:
                connection.close()
                connection = None


def reloaded(service) -> list[int]:
    return [int(n) for n in re.findall(r"event=reload_done generation=(\d+) ", service.log())]


def test_a_reload_under_keep_alive_load_reaches_every_worker_within_two_seconds_and_drops_nothing(openldap,
                                                                                                     tmp_path):
    service = start_service(tmp_path, openldap_config(openldap) + NO_SHIELD + messages("Text 0."),
                            server=f"workers = {WORKERS}\n", log_level="INFO")
    config = tmp_path / "ssobridge.toml"
    port = int(service.url.split(":")[2].split("/")[0])
    stop = threading.Event()
    clients = [Client(("127.0.0.1", port), keep_alive=number % 2 == 0, stop=stop) for number in range(6)]
    try:
        wait_for(lambda: len(pids_of(service.log(), "event=started ")) == WORKERS, timeout=30)
        for client in clients:
            client.start()
        wait_for(lambda: all(len(client.answers) >= 3 for client in clients), timeout=30)

        rewrite_messages(config, "Text 1.")
        first = time.monotonic()
        service.process.send_signal(signal.SIGHUP)
        wait_for(lambda: reloaded(service) == [1], timeout=30)
        time.sleep(max(0.0, first + DEADLINE + 1 - time.monotonic()))

        burst = time.monotonic()
        for text in ("Text 2.", "Text 3.", "Text 4.", "Text 5."):  # the last file wins
            rewrite_messages(config, text)
            last = time.monotonic()
            service.process.send_signal(signal.SIGHUP)
            time.sleep(0.3)
        wait_for(lambda: reloaded(service)[-1:] == [5], timeout=30)
        time.sleep(max(0.0, last + DEADLINE + 1 - time.monotonic()))

        good = config.read_text()
        config.write_text(good.replace('wrong_credentials = "Text 5."', 'wrong_credentials = "Text 6.'))
        refused = time.monotonic()
        service.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "event=reload_refused" in service.log(), timeout=15)
        time.sleep(1.5)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=20)
        log = service.log()
        service.stop()

    texts = [f"Text {n}." for n in range(6)]
    for client in clients:
        assert len(client.answers) > 20
        failed = [answer for _, answer in client.answers if answer not in texts]
        assert failed == []  # not one request failed or was reset, over the whole run
        order = [texts.index(answer) for _, answer in client.answers]
        if client.keep_alive:  # one connection, one worker: once it has the new config, never the old again
            assert order == sorted(order)
        assert {answer for sent, answer in client.answers if first + DEADLINE < sent < burst} == {"Text 1."}, \
            [line for line in log.splitlines() if "reload" in line]
        assert {answer for sent, answer in client.answers if sent > last + DEADLINE} == {"Text 5."}, \
            [line for line in log.splitlines() if "reload" in line]
        assert any(sent > refused for sent, _ in client.answers)
    assert [client.connections for client in clients if client.keep_alive] == [1, 1, 1]

    workers = set(pids_of(log, "event=started "))
    assert len(workers) == WORKERS and len(pids_of(log, "event=started ")) == WORKERS  # no process restarted
    done = [int(n) for n in re.findall(r"event=reload_done generation=(\d+) workers=3 ", log)]
    assert done[0] == 1 and done[-1] == 5 and done == sorted(set(done))  # once per completed reload
    for generation in (1, 5):
        assert set(pids_of(log, f"event=config_reloaded generation={generation} ")) == workers
    assert "event=reload_incomplete" not in log and "event=reload_not_taken" not in log
    after_refusal = log[log.index("event=reload_refused"):]
    assert "event=config_reloaded" not in after_refusal and "event=reload_done" not in after_refusal
    last_done = log.rindex("event=reload_done")
    assert set(pids_of(log[last_done:], "event=login ")) == workers  # every worker answered with Text 5.
    seconds = [float(s) for s in re.findall(r"event=reload_done generation=\d+ workers=3 seconds=([\d.]+)", log)]
    answered = [answer for client in clients for answer in client.answers]
    old_until = [max(sent for sent, answer in answered if answer == "Text 0.") - first,
                 max(sent for sent, answer in answered if answer in texts[1:5]) - last]
    print(f"reload_done seconds after the signal: {seconds}; the old message answered until "
          f"{old_until[0]:.2f} s after the first signal, {old_until[1]:.2f} s after the burst's last")


def test_reloads_while_events_arrive_deliver_each_event_once_and_hand_the_delivery_lock_on(tmp_path):
    """The delivering worker's old runtime gives the leader lock up when it is replaced; a new runtime (of
    that worker or the other) takes it: no event is lost or delivered twice, and the lock is held at the end."""
    service = start_service(tmp_path, JSONL_ONLY + messages("E0."), server=TWO_WORKERS, log_level="INFO")
    config = tmp_path / "ssobridge.toml"
    stored, numbers, stop = [], iter(range(100_000)), threading.Event()

    def notifier():
        while not stop.is_set():
            number = next(numbers)
            if notify(service, "511006", n=str(number))["Success"]:
                stored.append(number)

    senders = [threading.Thread(target=notifier) for _ in range(4)]
    try:
        for sender in senders:
            sender.start()
        for generation in (1, 2, 3):
            time.sleep(0.5)
            rewrite_messages(config, f"E{generation}.")
            service.process.send_signal(signal.SIGHUP)
            wait_for(lambda: reloaded(service)[-1:] == [generation], timeout=30)
        time.sleep(0.5)
        stop.set()
        for sender in senders:
            sender.join()
        wait_for(lambda: len(jsonl(tmp_path)) >= len(stored), timeout=60)
        time.sleep(1.5)  # a second delivering process, were there one, would add duplicates within its poll interval
        probe = LeaderLock(tmp_path / "events.db")
        held_by_a_worker = not probe.try_acquire()
        probe.release()
        samples = scrape(service)
        log = service.log()
    finally:
        stop.set()
        service.stop()
    delivered = [int(event["args"]["n"]) for event in jsonl(tmp_path)]
    assert len(stored) > 50 and sorted(delivered) == sorted(stored)  # each stored event once, none lost
    assert held_by_a_worker
    assert len(pids_of(log, "event=delivery_leader ")) >= 4  # taken again after each of the 3 reloads
    assert value(samples, "ssobridge_requests_total", operation="NotifyEventFired", outcome="ok") == len(stored)


def test_a_worker_started_again_after_a_crash_takes_part_in_the_next_reload(openldap, tmp_path):
    service = start_service(tmp_path, openldap_config(openldap) + NO_SHIELD + messages("Before."),
                            server=TWO_WORKERS, log_level="INFO")
    try:
        wait_for(lambda: len(pids_of(service.log(), "event=started ")) == 2, timeout=30)
        os.kill(pids_of(service.log(), "event=started ")[0], signal.SIGKILL)
        wait_for(lambda: len(pids_of(service.log(), "event=started ")) == 3, timeout=30)  # granian started one
        rewrite_messages(tmp_path / "ssobridge.toml", "After.")
        service.process.send_signal(signal.SIGHUP)
        wait_for(lambda: reloaded(service) == [1], timeout=30)
        answers = {authenticate(service, "ghost", "Not-the-Passw0rd")["Message"] for _ in range(20)}
        log = service.log()
    finally:
        service.stop()
    assert answers == {"After."}
    assert set(pids_of(log, "event=config_reloaded generation=1 ")) == set(pids_of(log, "event=started ")[1:])
    assert re.search(r"event=reload_done generation=1 workers=2 seconds=[\d.]+$", log, re.MULTILINE)
