"""NotifyEventFired: nothing acknowledged is ever lost, across receiver outages and kill -9.

A real webhook receiver (an HTTP server on loopback that can be down, failing, or up), a JSON-lines
file and a syslog listener are the sinks; ssobridge runs as `python -m ssobridge serve`.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from ssobridge.events.delivery import signature
from tests.support.services import WEB_SERVICE_PASSWORD, call, start_service, toml_string
from tests.support.events import events_config, jsonl, notify, SECRET, wait_for

AUTH = f"authPW={WEB_SERVICE_PASSWORD}"
def test_events_are_stored_named_and_forwarded_with_signature(tmp_path, receiver, dotnet):
    receiver.start()
    service = start_service(tmp_path, events_config(tmp_path, receiver))
    try:
        result = dotnet.call(service.url, "NotifyEventFired", [AUTH, "eventType=502000", "args_TicketNumber=ABC-1",
                                                               "args_department=Support & Sales", "args_x=a=b"])
        assert result == {"Success": True, "Message": "Event Notification Successful"}
        assert notify(service, "999999", note="unknown kind")["Success"] is True
        missing = call(service.url, "NotifyEventFired", [AUTH, "args_x=1"])
        assert missing == {"Success": False, "Message": "Required Input Missing: eventType"}
        wait_for(lambda: len(receiver.received) == 2 and len(jsonl(tmp_path)) == 2)
    finally:
        service.stop()
    headers, body = receiver.received[0]
    assert headers["X-Ssobridge-Signature"] == signature(SECRET, body)
    first = json.loads(body)
    assert first["event_type"] == "502000" and first["event_name"] == "Ticket Created"
    assert first["args"] == {"TicketNumber": "ABC-1", "department": "Support & Sales", "x": "a=b"}
    assert headers["Idempotency-Key"] == first["id"]
    assert receiver.events()[1]["event_name"] == "Unknown event 999999"
    assert [e["id"] for e in jsonl(tmp_path)] == [e["id"] for e in receiver.events()]


def test_receiver_down_then_up_gets_every_event_in_order_per_type(tmp_path, receiver):
    service = start_service(tmp_path, events_config(tmp_path, receiver))  # the receiver is not running yet
    try:
        sent = defaultdict(list)
        for i in range(30):
            event_type = ("502000", "502002", "511000")[i % 3]
            assert notify(service, event_type, n=str(i))["Success"] is True
            sent[event_type].append(str(i))
        time.sleep(1)
        receiver.start(status=503)  # up, but failing
        time.sleep(1)
        assert receiver.received == []
        receiver.stop()
        receiver.start()
        wait_for(lambda: len(receiver.received) >= 30)
    finally:
        service.stop()
    delivered = defaultdict(list)
    for event in receiver.events():
        delivered[event["event_type"]].append(event["args"]["n"])
    assert delivered == sent  # all of them, and in order within each event type
    assert len(jsonl(tmp_path)) == 30  # the file sink was not held up by the webhook


def test_kill_9_with_events_pending_loses_nothing(tmp_path, receiver):
    config = events_config(tmp_path, receiver)
    service = start_service(tmp_path, config)
    keys_before = set()
    try:
        for i in range(20):
            assert notify(service, "502005", n=str(i))["Success"] is True
    finally:
        service.process.send_signal(signal.SIGKILL)
        service.process.wait()
    receiver.start()
    service = start_service(tmp_path, config)  # the same config and outbox
    try:
        wait_for(lambda: len({e["id"] for e in receiver.events()}) >= 20)
        keys_before = {e["id"]: e["args"]["n"] for e in receiver.events()}
    finally:
        service.stop()
    assert sorted(keys_before.values(), key=int) == [str(i) for i in range(20)]
    # A duplicate, if any, carries the idempotency key of its first delivery.
    assert all(keys_before[e["id"]] == e["args"]["n"] for e in receiver.events())


def test_a_thousand_events_from_eight_clients_are_all_stored_and_delivered(tmp_path, receiver):
    receiver.start()
    service = start_service(tmp_path, events_config(tmp_path, receiver))
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda i: notify(service, "511006", n=str(i))["Success"], range(1000)))
        assert all(results)
        wait_for(lambda: len(receiver.received) >= 1000 and len(jsonl(tmp_path)) >= 1000, timeout=120)
    finally:
        service.stop()
    assert sorted(int(e["args"]["n"]) for e in receiver.events()) == list(range(1000))
    assert len({e["id"] for e in jsonl(tmp_path)}) == 1000


def test_dead_deliveries_are_listed_and_retried(tmp_path, receiver):
    config = events_config(tmp_path, receiver, max_attempts=2)
    service = start_service(tmp_path, config)
    config_file = str(service.log_path.parent / "ssobridge.toml")
    try:
        assert notify(service, "507000", task="backup")["Success"] is True
        time.sleep(1.5)  # two failed tries, 0.1 s apart: dead

        def events(*action: str) -> str:
            return subprocess.run([sys.executable, "-m", "ssobridge", "events", "--config", config_file, *action],
                                  capture_output=True, encoding="utf-8", timeout=30).stdout

        listing = events("list")
        assert "hook: 1 dead" in listing and "archive: 1 delivered" in listing
        assert "507000 Task Created" in listing and "task='backup'" in listing
        assert "hook: dead after 2 tries (URLError" in listing
        receiver.start()
        assert "1 dead delivery back to pending" in events("retry", "--sink", "hook")
        wait_for(lambda: len(receiver.received) == 1)
    finally:
        service.stop()
    assert receiver.events()[0]["args"] == {"task": "backup"}


def test_syslog_sink_gets_filtered_events(tmp_path, receiver):
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(10)
    syslog = (f'[[events.sink]]\nname = "syslog"\ntype = "syslog"\n'
              f'address = {toml_string("127.0.0.1:" + str(listener.getsockname()[1]))}\n'
              f'event_types = ["Ticket Created"]\n')
    receiver.start()
    service = start_service(tmp_path, events_config(tmp_path, receiver, extra_sinks=syslog))
    try:
        notify(service, "502002", ticket="ABC-2")  # not for syslog
        notify(service, "502000", ticket="ABC-3")
        message = listener.recv(65536).decode("utf-8")
    finally:
        service.stop()
        listener.close()
    assert message.startswith("<134>1 ") and " ssobridge - 502000 - " in message
    assert json.loads(message.split(" - 502000 - ", 1)[1])["args"] == {"ticket": "ABC-3"}
