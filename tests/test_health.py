"""GET /healthz (the process serves) and GET /readyz (every directory can be used now), against slapd."""

from __future__ import annotations

import json
import re
import time

from tests.support.services import openldap_config, start_service
from tests.support.services import get, TWO_WORKERS

RETRY_DOWN_AFTER = 1


def until(condition, timeout: float = 30):
    """Poll `condition` (a callable returning a value or None) until it returns a value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found is not None:
            return found
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def ready(service, status: int):
    """The /readyz answer, once its status is `status` (answers are cached a few seconds per worker)."""
    def answer():
        code, headers, text = get(service, "/readyz")
        return (headers, json.loads(text)) if code == status else None
    return until(answer)


def test_readyz_is_503_while_slapd_is_down_and_200_again_after_healthz_200_throughout(openldap, tmp_path):
    config = openldap_config(openldap, retry_down_after=RETRY_DOWN_AFTER)
    service = start_service(tmp_path, config, server=TWO_WORKERS, log_level="INFO")
    url = openldap.ldaps_url
    healthy = {"status": "ok"}
    try:
        assert json.loads(get(service, "/healthz")[2]) == healthy
        headers, answer = ready(service, 200)
        assert answer == {"ready": True, "directories": {"example-openldap": "ok"}}
        assert headers["content-type"] == "application/json"
        with openldap.outage():
            _, down = ready(service, 503)
            assert down["ready"] is False
            reason = down["directories"]["example-openldap"]
            refused = "LDAPSocketOpenError: socket connection error while opening: [Errno 111] Connection refused"
            # Found out by the readiness search itself, or by an earlier request that marked it down:
            assert re.fullmatch(re.escape(f"{url}: ") + rf"({re.escape(refused)}|marked down, retried in [01] s "
                                rf"\({re.escape(refused)}\))", reason), reason
            status, _, text = get(service, "/healthz")
            assert (status, text) == (200, '{"status": "ok"}\n')
        started = time.monotonic()
        _, back = ready(service, 200)
        assert back == {"ready": True, "directories": {"example-openldap": "ok"}}
        # Within the cache (5 s per worker) and one retry_down_after: the directory layer found it back.
        assert time.monotonic() - started < 5 + RETRY_DOWN_AFTER + 3
        assert get(service, "/healthz")[0] == 200
    finally:
        service.stop()


def test_readyz_names_a_refused_service_account_without_binding_again(openldap, tmp_path):
    config = openldap_config(openldap, bind_password="not-the-Passw0rd", service_retry_seconds=600)
    service = start_service(tmp_path, config, server="workers = 1\n", log_level="INFO")
    try:
        _, answer = ready(service, 503)
        for _ in range(3):
            assert get(service, "/readyz")[0] == 503
        log = service.log()
    finally:
        service.stop()
    reason = answer["directories"]["example-openldap"]
    assert reason == f"service account password is wrong (result 49), refused by {openldap.ldaps_url}"
    assert log.count("event=service_account_refused") == 1  # one bind; the guard answered after it


def test_healthcheck_command_asks_healthz(openldap, tmp_path):
    import subprocess
    import sys
    service = start_service(tmp_path, openldap_config(openldap, urls=["ldaps://127.0.0.1:1"]))
    try:
        assert get(service, "/readyz")[0] == 503  # no directory: not ready, yet alive
        done = subprocess.run([sys.executable, "-m", "ssobridge", "healthcheck", "--config",
                               str(tmp_path / "ssobridge.toml")], capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stderr) == (0, "")
    finally:
        service.stop()
