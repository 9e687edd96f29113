"""Two worker processes behind one port: what must happen once happens once.

Every log line starts with the writing process's id, so a test can tell which worker stored an event,
refused a password or took the event leader lock. Each test pins `workers = 2` (the default on a
2-CPU machine, said here so the tests mean the same on any machine).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from contextlib import closing
from concurrent.futures import ThreadPoolExecutor

from tests.support.lockout import directory_failures
from tests.support.services import WRONG, authenticate, openldap_config, start_service
from tests.support.events import jsonl, notify, wait_for
from tests.support.services import JSONL_ONLY, LOCKOUT, pids_of, TWO_WORKERS

def pending(tmp_path) -> int:
    with closing(sqlite3.connect(tmp_path / "events.db")) as db:
        return db.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'").fetchone()[0]


def _notify_all(service, numbers) -> list[bool]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda n: notify(service, "511006", n=str(n))["Success"], numbers))


def test_events_from_eight_clients_over_two_workers_are_delivered_exactly_once(tmp_path):
    service = start_service(tmp_path, JSONL_ONLY, server=TWO_WORKERS, log_level="INFO")
    try:
        assert all(_notify_all(service, range(800)))
        wait_for(lambda: len(jsonl(tmp_path)) >= 800, timeout=60)
        time.sleep(1.5)  # a second leader, were there one, would add duplicates within its poll interval
        log = service.log()
    finally:
        service.stop()
    lines = jsonl(tmp_path)
    assert sorted(int(e["args"]["n"]) for e in lines) == list(range(800))  # each exactly once
    assert len({e["id"] for e in lines}) == 800
    assert len(set(pids_of(log, "event=started "))) == 2
    assert len(set(pids_of(log, "event=event_stored "))) == 2  # both workers stored events
    assert len(pids_of(log, "event=delivery_leader ")) == 1  # one of them delivered them all


def test_killing_the_delivering_worker_hands_delivery_to_another(tmp_path):
    service = start_service(tmp_path, JSONL_ONLY, server=TWO_WORKERS, log_level="INFO")
    try:
        assert all(_notify_all(service, range(40)))
        wait_for(lambda: pending(tmp_path) == 0)  # written and marked delivered: no redelivery is due
        [leader] = pids_of(service.log(), "event=delivery_leader ")
        os.kill(leader, signal.SIGKILL)  # connections it had accepted are reset: SmarterTrack would retry
        wait_for(lambda: len(pids_of(service.log(), "event=started ")) == 3)  # granian started a new worker
        assert all(_notify_all(service, range(40, 120)))
        wait_for(lambda: len(jsonl(tmp_path)) >= 120)
        log = service.log()
        assert service.process.poll() is None
    finally:
        service.stop()
    assert sorted(int(e["args"]["n"]) for e in jsonl(tmp_path)) == list(range(120))  # none lost, none twice
    leaders = pids_of(log, "event=delivery_leader ")
    assert len(leaders) == 2 and leaders[0] == leader and leaders[1] != leader


def test_the_shield_counts_for_both_workers_and_lockouts_sees_the_soft_lock(openldap, tmp_path):
    """Wrong passwords for one account, each over its own connection, spread over both workers: the
    directory sees exactly the soft threshold's wrong binds (jdoe locks after 10: soft threshold 5)."""
    user = openldap.users["jdoe"]
    config = openldap_config(openldap, ppolicy_default_dn="cn=default,ou=policies,dc=example,dc=org")
    service = start_service(tmp_path, config, server=TWO_WORKERS, log_level="INFO")
    try:
        with ThreadPoolExecutor(16) as pool:
            messages = list(pool.map(lambda i: authenticate(service, user.login, f"wrong-{i}-Passw0rd")["Message"],
                                     range(64)))
        log = service.log()
        assert messages.count(WRONG) == 5 and messages.count(LOCKOUT) == 59
        assert directory_failures(openldap, user) == 5
        assert log.count("reason='wrong_credentials'") == 5
        assert len(set(pids_of(log, f"user='{user.login}'"))) == 2  # both workers answered this account
        listed = service.command("lockouts").stdout
        assert listed.startswith(f"{user.dn}\tfailures counted here: 5\tuntil ")
    finally:
        service.stop()
        service.unlock(user.login)
        openldap.unlock(user)


def test_four_workers_starting_on_a_new_data_dir_all_start(openldap, tmp_path):
    """Every store in data_dir is made by the parent before the workers open it: two workers switching a new
    SQLite file to WAL at once got "database is locked", and one died at start (granian respawned it)."""
    for attempt in range(4):
        folder = tmp_path / f"attempt-{attempt}"
        folder.mkdir()
        service = start_service(folder, openldap_config(openldap), server="workers = 4\n")
        try:
            user = openldap.users["jdoe"]
            assert authenticate(service, user.login, user.password)["OutputVariables"][0] == "Authentication=OK"
        finally:
            service.stop()
        log = service.log()
        assert log.count("Spawning worker-") == 4, log
        assert "Unexpected exit from worker" not in log and "Traceback" not in log, log
