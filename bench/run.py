"""ssobridge benchmarks, in one run against a private OpenLDAP slapd (started here, loopback only).

    .venv/bin/python bench/run.py [--seconds 5]

Measures, through a running `ssobridge serve` and with SOAP 1.1 requests as SmarterTrack sends them
(keep-alive connections, one per client thread):
1. Authenticate throughput and latency at 1 and 16 concurrent clients, next to a raw ldap3 loop doing
   the same directory work (search as the service account, bind as the user) on open pooled TLS
   connections: the ceiling, and the ratio.
2. LDAP operations and new connections per Authenticate on a warm pool, counted by slapd (cn=Monitor).
3. Authenticate latency with the first configured URL dead: refused, and a black hole (connect_timeout 1 s).
4. GetCustomFieldOptions and StartTicket latency with cold and warm group caches (the example policy).
5. GetUserDetails latency with cold and warm card caches; NotifyEventFired throughput at 1 and 8 clients.
Writes bench/results/latest.json and latest.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import ldap3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.service import WEB_SERVICE_PASSWORD, directory_toml, envelope, start_service  # noqa: E402
from tests.support.directory import connect  # noqa: E402
from tests.support.network import BlackHole, DeadPort  # noqa: E402
from tests.support.pki import create_test_pki  # noqa: E402
from tests.support.slapd import start_openldap  # noqa: E402

USERS = 200
PASSWORD = "Bench-Passw0rd!"
AUTH = f"authPW={WEB_SERVICE_PASSWORD}"


def add_bench_users(directory) -> list[str]:
    logins = [f"bench{i:03d}" for i in range(USERS)]
    with connect(directory, directory.admin_dn, directory.admin_password) as admin:
        admin.bind()
        for login in logins:
            admin.add(f"uid={login},{directory.users_dn}", ["inetOrgPerson"],
                      {"uid": login, "cn": f"Bench {login}", "sn": "Bench", "mail": f"{login}@example.org",
                       "displayName": f"Bench User {login}", "userPassword": PASSWORD})
            assert admin.result["result"] in (0, 68), admin.result
    return logins


class Client:
    """One keep-alive HTTP connection, as SmarterTrack's .NET client keeps one."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.path = parts.path
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.connection.connect()
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def call(self, operation: str, variables: list[str]) -> bytes:
        body = envelope(operation, variables)
        self.connection.request("POST", self.path, body, {
            "Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"http://tempuri.org/{operation}"'})
        response = self.connection.getresponse()
        data = response.read()
        assert response.status == 200, data
        return data


def run_load(threads: int, seconds: float, work) -> dict:
    """`work(thread_index, iteration)` in `threads` threads for `seconds`; latency percentiles in ms."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    stop = time.monotonic() + seconds

    def worker(index: int) -> None:
        iteration = 0
        state = work.setup(index) if hasattr(work, "setup") else None
        while time.monotonic() < stop:
            started = time.perf_counter()
            work(state, index, iteration)
            latencies[index].append((time.perf_counter() - started) * 1000)
            iteration += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    began = time.monotonic()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - began
    flat = sorted(x for per in latencies for x in per)
    return {"threads": threads, "calls": len(flat), "per_second": round(len(flat) / elapsed, 1),
            "p50_ms": round(percentile(flat, 50), 2), "p95_ms": round(percentile(flat, 95), 2),
            "p99_ms": round(percentile(flat, 99), 2)}


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * p / 100))]


class SoapAuthenticate:
    def __init__(self, url: str, logins: list[str]):
        self.url, self.logins = url, logins

    def setup(self, index: int) -> Client:
        return Client(self.url)

    def __call__(self, client: Client, index: int, iteration: int) -> None:
        login = self.logins[(index * 7919 + iteration) % len(self.logins)]
        data = client.call("Authenticate", [AUTH, f"loginUsername={login}", f"loginPassword={PASSWORD}"])
        assert b"Authentication=OK" in data, data


class RawLdap:
    """The ceiling: the same search and bind with ldap3 on already-open TLS connections."""

    def __init__(self, directory, logins: list[str]):
        self.directory, self.logins = directory, logins

    def setup(self, index: int):
        service = connect(self.directory, self.directory.service_dn, self.directory.service_password.encode())
        service.bind()
        user = connect(self.directory, authentication=ldap3.SIMPLE)
        return service, user

    def __call__(self, state, index: int, iteration: int) -> None:
        service, user = state
        login = self.logins[(index * 7919 + iteration) % len(self.logins)]
        service.search(self.directory.base_dn, f"(&(objectClass=inetOrgPerson)(uid={login}))",
                       attributes=["mail", "displayName", "cn", "pwdAccountLockedTime"], size_limit=2)
        user.user, user.password = service.response[0]["dn"], PASSWORD.encode()
        assert user.bind(), user.result


def monitor_counts(directory) -> dict:
    with connect(directory, directory.admin_dn, directory.admin_password) as admin:
        admin.bind()
        counts = {}
        for name, dn, attribute in (("binds", "cn=Bind,cn=Operations,cn=Monitor", "monitorOpCompleted"),
                                    ("searches", "cn=Search,cn=Operations,cn=Monitor", "monitorOpCompleted"),
                                    ("connections", "cn=Total,cn=Connections,cn=Monitor", "monitorCounter")):
            admin.search(dn, "(objectClass=*)", "BASE", attributes=[attribute])
            counts[name] = int(admin.response[0]["raw_attributes"][attribute][0])
    return counts


def operations_per_authenticate(url: str, directory, logins: list[str], calls: int = 200) -> dict:
    client = Client(url)
    for login in logins[:20]:  # warm the pools
        client.call("Authenticate", [AUTH, f"loginUsername={login}", f"loginPassword={PASSWORD}"])
    before = monitor_counts(directory)
    for i in range(calls):
        login = logins[i % len(logins)]
        client.call("Authenticate", [AUTH, f"loginUsername={login}", f"loginPassword={PASSWORD}"])
    after = monitor_counts(directory)
    # Reading the counters costs one connection, one bind and (before the read completes) searches of its own.
    own = {"binds": 1, "searches": 2, "connections": 1}
    return {name: round((after[name] - before[name] - own[name]) / calls, 3) for name in after} | {"calls": calls}


def first_url_dead(base_body: str, dead_url: str, workdir: Path, login: str) -> dict:
    service = start_service(workdir, base_body.replace("urls = [", f'urls = ["{dead_url}", ', 1))
    try:
        client = Client(service.url)
        timings = []
        for _ in range(20):
            started = time.perf_counter()
            data = client.call("Authenticate", [AUTH, f"loginUsername={login}", f"loginPassword={PASSWORD}"])
            timings.append((time.perf_counter() - started) * 1000)
            assert b"Authentication=OK" in data, data
    finally:
        service.stop()
    return {"first_ms": round(timings[0], 1), "then_p50_ms": round(statistics.median(timings[1:]), 2)}


def policy_latency(url: str, logins: list[str]) -> dict:
    client = Client(url)
    results = {}
    operations = (("GetCustomFieldOptions", ["departmentName=Support", "location=PRE"], logins[:50]),
                  ("StartTicket", ["departmentName=Support", "subject=Server down", "ticketNumber=B-1"],
                   logins[100:150]))
    for operation, extra, users in operations:
        cold, warm = [], []
        for login in users:  # a new user each time: the membership cache is cold
            started = time.perf_counter()
            client.call(operation, [AUTH, f"loginUsername={login}", *extra])
            cold.append((time.perf_counter() - started) * 1000)
        for _ in range(200):  # the same user again: membership cached
            started = time.perf_counter()
            client.call(operation, [AUTH, f"loginUsername={users[0]}", *extra])
            warm.append((time.perf_counter() - started) * 1000)
        results[operation] = {"cold_p50_ms": round(statistics.median(cold), 2),
                              "warm_p50_ms": round(statistics.median(warm), 2),
                              "warm_p95_ms": round(percentile(sorted(warm), 95), 2)}
    return results


def user_details_latency(url: str, logins: list[str]) -> dict:
    client = Client(url)
    cold, warm = [], []
    for login in logins[50:100]:  # not seen before: directory lookups
        started = time.perf_counter()
        client.call("GetUserDetails", [AUTH, f"username={login}", "email=", "interactionType=ticket"])
        cold.append((time.perf_counter() - started) * 1000)
    for i in range(300):  # cached cards
        started = time.perf_counter()
        client.call("GetUserDetails", [AUTH, f"username={logins[50 + i % 50]}", "email=", "interactionType=ticket"])
        warm.append((time.perf_counter() - started) * 1000)
    return {"cold_p50_ms": round(statistics.median(cold), 2), "warm_p50_ms": round(statistics.median(warm), 2),
            "warm_p95_ms": round(percentile(sorted(warm), 95), 2)}


class NotifyEvent:
    def __init__(self, url: str):
        self.url = url

    def setup(self, index: int) -> Client:
        return Client(self.url)

    def __call__(self, client: Client, index: int, iteration: int) -> None:
        data = client.call("NotifyEventFired", [AUTH, "eventType=502000", f"args_n={index}-{iteration}"])
        assert b"<tns:Success>true</tns:Success>" in data, data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5, help="duration of each load scenario")
    arguments = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ssobridge-bench-"))
    pki = create_test_pki(work / "pki")
    directory, slapd = start_openldap(work / "slapd", pki)
    services = []
    try:
        logins = add_bench_users(directory)
        body = directory_toml("bench", "ldap", [directory.ldaps_url], directory.base_dn, directory.service_dn,
                              directory.service_password, ca_file=str(directory.ca_file), connect_timeout=1,
                              timeout=5)
        service = start_service(work / "service", body)
        services.append(service)
        results: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                     "platform": platform.platform()},
                         "seconds_per_scenario": arguments.seconds}
        soap = SoapAuthenticate(service.url, logins)
        raw = RawLdap(directory, logins)
        run_load(4, 1, soap)  # warm-up: pools filled, code paths hot
        results["authenticate"] = {}
        for threads in (1, 16):
            ours = run_load(threads, arguments.seconds, soap)
            ceiling = run_load(threads, arguments.seconds, raw)
            results["authenticate"][f"{threads}_clients"] = {
                "ssobridge": ours, "raw_ldap3": ceiling,
                "ratio": round(ours["per_second"] / ceiling["per_second"], 3)}
        results["ldap_operations_per_authenticate"] = operations_per_authenticate(service.url, directory, logins)
        dead, hole = DeadPort(), BlackHole()
        try:
            results["first_url_dead"] = {
                "refused": first_url_dead(body, f"ldaps://{dead.host}:{dead.port}", work / "dead", logins[0]),
                "black_hole": first_url_dead(body, f"ldaps://{hole.host}:{hole.port}", work / "hole", logins[0]),
            }
        finally:
            dead.close()
            hole.close()
        example = (ROOT / "config.example.toml").read_text(encoding="utf-8").split("\n[policy]\n", 1)[1]
        policy_service = start_service(work / "policy", body + "[policy]\n" + example)
        services.append(policy_service)
        results["policy"] = policy_latency(policy_service.url, logins)
        info_events = ('[user_info]\ncache_seconds = 600\n[events]\ndatabase = "events.db"\n'
                       '[[events.sink]]\nname = "archive"\ntype = "jsonl"\npath = "events.jsonl"\n')
        info_service = start_service(work / "info", body + info_events)
        services.append(info_service)
        results["user_details"] = user_details_latency(info_service.url, logins)
        results["notify_event_fired"] = {
            f"{threads}_clients": run_load(threads, arguments.seconds, NotifyEvent(info_service.url))
            for threads in (1, 8)}
    finally:
        for service in services:
            service.stop()
        slapd.stop()
    output = ROOT / "bench" / "results"
    output.mkdir(parents=True, exist_ok=True)
    (output / "latest.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (output / "latest.md").write_text(render(results), encoding="utf-8")
    print(render(results))
    return 0


def render(r: dict) -> str:
    lines = [f"# ssobridge bench, {r['date']}", "",
             f"{r['machine']['cpus']} CPUs, Python {r['machine']['python']}, {r['machine']['platform']}; "
             f"{r['seconds_per_scenario']} s per load scenario; OpenLDAP slapd over ldaps:// on loopback.", "",
             "## Authenticate", "",
             "| clients | ssobridge calls/s | p50 ms | p95 ms | p99 ms | raw ldap3 calls/s | p50 ms | ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for key, row in r["authenticate"].items():
        ours, raw = row["ssobridge"], row["raw_ldap3"]
        lines.append(f"| {ours['threads']} | {ours['per_second']} | {ours['p50_ms']} | {ours['p95_ms']} | "
                     f"{ours['p99_ms']} | {raw['per_second']} | {raw['p50_ms']} | {row['ratio']} |")
    ops = r["ldap_operations_per_authenticate"]
    dead = r["first_url_dead"]
    lines += ["", f"LDAP operations per Authenticate on a warm pool (slapd cn=Monitor, {ops['calls']} calls): "
                  f"{ops['searches']} searches, {ops['binds']} binds, {ops['connections']} new connections.", "",
              "## First URL dead (connect_timeout 1 s)", "",
              "| first URL | first call ms | later calls p50 ms |", "|---|---|---|",
              f"| refused | {dead['refused']['first_ms']} | {dead['refused']['then_p50_ms']} |",
              f"| black hole | {dead['black_hole']['first_ms']} | {dead['black_hole']['then_p50_ms']} |", "",
              "## Group rules (config.example.toml policy)", "",
              "| operation | cold cache p50 ms | warm cache p50 ms | warm p95 ms |", "|---|---|---|---|"]
    for operation, row in r["policy"].items():
        lines.append(f"| {operation} | {row['cold_p50_ms']} | {row['warm_p50_ms']} | {row['warm_p95_ms']} |")
    info = r["user_details"]
    lines += ["", "## GetUserDetails (default card)", "", "| cold cache p50 ms | warm cache p50 ms | warm p95 ms |",
              "|---|---|---|", f"| {info['cold_p50_ms']} | {info['warm_p50_ms']} | {info['warm_p95_ms']} |", "",
              "## NotifyEventFired (stored in SQLite WAL, synchronous=FULL, before the answer; jsonl sink)", "",
              "| clients | events/s | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|"]
    for row in r["notify_event_fired"].values():
        lines.append(f"| {row['threads']} | {row['per_second']} | {row['p50_ms']} | {row['p95_ms']} | "
                     f"{row['p99_ms']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
