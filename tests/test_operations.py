"""Day-two operations against slapd: the audit file, JSON logs, stops, `ssobridge reload` without a serve.

docs/operations.md describes each; reloading a running serve is tests/test_reload.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import threading
import time

from tests.support.services import (AUTH, NO_SHIELD, WRONG, authenticate, envelope, openldap_config,
                                    sign_in_cookie, start_service)
from tests.support.events import wait_for


def test_the_audit_file_has_one_json_line_per_login_across_two_workers_and_survives_rotation(openldap, tmp_path):
    user = openldap.users["jdoe"]
    service = start_service(tmp_path, openldap_config(openldap) + NO_SHIELD + '[audit]\nfile = "audit.jsonl"\n',
                            server='workers = 2\nlog_format = "json"\n', log_level="INFO")
    audit = tmp_path / "audit.jsonl"
    long_name = "x" * 300
    try:
        threads = [threading.Thread(target=authenticate, args=(service, "jdoe", password))
                   for password in [user.password] * 10 + ["wrong-Passw0rd"] * 10]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # jdoe locks at 10 failures (slapd's default policy) when all 10 wrong binds come after the last
        # good one, as they may in any run: the sign-in below must find the account as before the logins.
        openldap.unlock(user)
        sign_in_cookie(service, "jdoe")
        authenticate(service, long_name, "wrong-Passw0rd")
        wait_for(lambda: audit.exists() and audit.read_text().count("\n") == 22, timeout=10)
        audit.rename(tmp_path / "audit.jsonl.1")  # as logrotate's create mode does
        authenticate(service, "jdoe", user.password)
        wait_for(lambda: audit.exists(), timeout=10)
        log_lines = service.log().splitlines()
    finally:
        service.stop()
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl.1").read_text().splitlines()]
    assert len(lines) == 22
    for line in lines:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line.pop("time"))
        assert isinstance(line.pop("ms"), int)
    server = openldap.ldaps_url
    ok = {"operation": "Authenticate", "username": "jdoe", "dn": user.dn, "directory": "example-openldap",
          "server": server, "outcome": "OK", "reason": None}
    wrong = {**ok, "outcome": "FAIL", "reason": "wrong_credentials"}
    assert sorted(lines[:20], key=lambda line: line["outcome"], reverse=True) == [ok] * 10 + [wrong] * 10
    assert lines[20] == {**ok, "operation": "GetSignInCookieInfo"}
    assert lines[21] == {"operation": "Authenticate", "username": "x" * 256, "dn": None,
                         "directory": "example-openldap", "server": None, "outcome": "FAIL",
                         "reason": "no such user"}
    rotated = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(line["operation"], line["outcome"]) for line in rotated] == [("Authenticate", "OK")]
    for text in ((tmp_path / "audit.jsonl.1").read_text(), audit.read_text(), "\n".join(log_lines)):
        assert user.password not in text and "wrong-Passw0rd" not in text

    # log_format = "json": every line of the log is one JSON object, ours with their fields
    parsed = [json.loads(line) for line in log_lines]
    logins = [line for line in parsed if line.get("event") == "login" and line["outcome"] == "FAIL"]
    assert logins[0] == {"time": logins[0]["time"], "level": "INFO", "logger": "ssobridge.login",
                         "process": logins[0]["process"], "event": "login", "operation": "Authenticate",
                         "outcome": "FAIL", "reason": "wrong_credentials", "user": "jdoe",
                         "directory": "example-openldap", "server": server, "dn": user.dn}
    assert {line["logger"] for line in parsed} >= {"ssobridge", "ssobridge.login", "_granian"}
    assert any(line.get("message", "").startswith("Listening at: http://127.0.0.1:") for line in parsed)


def test_a_second_sigterm_stops_within_five_seconds_and_a_request_in_flight_finishes(openldap, tmp_path):
    service = start_service(tmp_path, openldap_config(openldap) + NO_SHIELD, server="workers = 1\n",
                            log_level="INFO")
    pid_file = tmp_path / "ssobridge.pid"
    port = int(service.url.split(":")[2].split("/")[0])
    body = envelope("Authenticate", [AUTH, "loginUsername=jdoe", "loginPassword=wrong"])
    head = (f"POST /ExternalProvider.asmx HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml; charset=utf-8\r\n"
            f'SOAPAction: "http://tempuri.org/Authenticate"\r\nContent-Length: {len(body)}\r\n\r\n').encode()
    try:
        assert pid_file.read_text() == f"{service.process.pid}\n"
        in_flight, stuck = socket.create_connection(("127.0.0.1", port)), socket.create_connection(("127.0.0.1", port))
        in_flight.sendall(head + body[:100])
        stuck.sendall(head + body[:100])  # never sends the rest
        time.sleep(0.3)
        started = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        service.process.send_signal(signal.SIGTERM)
        second = time.monotonic()
        time.sleep(1.7)
        in_flight.sendall(body[100:])  # this request took 2 s
        in_flight.settimeout(5)
        answer = in_flight.recv(65536)
        service.process.wait(10)
        stopped = time.monotonic()
    finally:
        service.stop()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and WRONG.encode() in answer
    assert stopped - second < 5, stopped - started
    assert 'event=worker_killed worker=1 note="still busy when the stop\'s time was up"' in service.log()
    assert not pid_file.exists()
    assert service.process.returncode == 0 or os.name == "nt"


def test_reload_without_a_running_serve_names_the_pid_file_and_signals_nobody(tmp_path):
    import subprocess
    import sys
    config = tmp_path / "ssobridge.toml"
    config.write_text('[smartertrack]\nweb_service_password = "x"\n')
    sleeper = subprocess.Popen(["sleep", "30"])  # a stale pid file whose pid is now another program's
    pid_file = tmp_path / "ssobridge.pid"
    try:
        answers = []
        for pid in (sleeper.pid, None):
            if pid is None:
                pid_file.unlink()
            else:
                pid_file.write_text(f"{pid}\n")
            answers.append(subprocess.run([sys.executable, "-m", "ssobridge", "reload", "--config", str(config)],
                                          capture_output=True, text=True, timeout=60))
        assert sleeper.poll() is None  # not signalled
    finally:
        sleeper.kill()
        sleeper.wait()
    assert [(a.returncode, a.stdout, a.stderr) for a in answers] == [
        (1, "", f"ssobridge: no running serve found: {pid_file} names process {sleeper.pid}, which is not "
                "ssobridge\n"),
        (1, "", f"ssobridge: no running serve found: {pid_file} is missing or unreadable (serve writes it there, "
                "in [server] data_dir, while it runs)\n")]
