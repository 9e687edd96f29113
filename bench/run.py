"""ssobridge benchmarks, in one run against a private OpenLDAP slapd (started here, loopback only).

    .venv/bin/python bench/run.py [--seconds 5] [--wrong-percent 0] [--no-profile] [--keep]

Measures, through a running `ssobridge serve` (a subprocess, INFO logging as in production) and with the
SOAP 1.1 requests SmarterTrack sends (keep-alive connections, one per client thread):
1. Authenticate throughput and latency (p50/p95/p99) at 1 and 16 concurrent clients, next to a raw ldap3
   loop doing the same directory work (the same search as the service account, the same bind as the
   user, with the password policy control) on already-open TLS connections with TCP_NODELAY: the
   ceiling, and the ratio; and the 16 clients spread over two ssobridge processes. For every load: LDAP
   operations per call (slapd's cn=Monitor) and CPU time per call of each process (ssobridge, slapd,
   this bench process).
2. LDAP operations and new connections per Authenticate on a warm pool, counted by slapd (cn=Monitor).
3. Authenticate latency with the first configured URL dead: refused, and a black hole that accepts TCP
   and never answers (connect_timeout 1 s): the first call, later calls, and 16 first calls at once.
4. GetCustomFieldOptions and StartTicket latency with cold and warm group caches (the example policy).
5. GetUserDetails latency with cold and warm card caches; NotifyEventFired throughput at 1 and 8 clients.
6. Where ssobridge's Python CPU time goes under 1 and 16 clients (py-spy, when installed; raw stacks in
   bench/results/profile-*-clients.txt, a summary in the results; --no-profile skips it).
Writes bench/results/latest.json and latest.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import re
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import ldap3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.service import (WEB_SERVICE_PASSWORD, Service, directory_toml, envelope,  # noqa: E402
                           start_service, toml_string)
from tests.support.network import BlackHole, DeadPort  # noqa: E402
from tests.support.pki import create_test_pki  # noqa: E402
from tests.support.slapd import start_openldap  # noqa: E402

USERS = 200
PASSWORD = "Bench-Passw0rd!"
WRONG_PASSWORD = "Bench-Passw0rd?"
AUTH = f"authPW={WEB_SERVICE_PASSWORD}"
PPOLICY_CONTROL = ("1.3.6.1.4.1.42.2.27.8.5.1", False, None)
CLIENT_COUNTS = (1, 16)


# --- the directory ------------------------------------------------------------------------------------

def add_bench_users(directory) -> list[str]:
    """USERS people with one password, under a policy that never locks (for the wrong-password mix)."""
    policy = f"cn=bench-no-lockout,ou=policies,{directory.base_dn}"
    logins = [f"bench{i:03d}" for i in range(USERS)]
    admin = open_ldap(directory, directory.admin_dn, directory.admin_password)
    try:
        admin.add(policy, ["top", "device", "pwdPolicy"],
                  {"pwdAttribute": "userPassword", "pwdLockout": "FALSE", "pwdMaxFailure": 0})
        assert admin.result["result"] in (0, 68), admin.result
        for login in logins:
            admin.add(f"uid={login},{directory.users_dn}", ["inetOrgPerson"],
                      {"uid": login, "cn": f"Bench {login}", "sn": "Bench", "mail": f"{login}@example.org",
                       "displayName": f"Bench User {login}", "userPassword": PASSWORD,
                       "pwdPolicySubentry": policy})
            assert admin.result["result"] in (0, 68), admin.result
    finally:
        admin.unbind()
    return logins


def open_ldap(directory, user: str | None = None, password: str | None = None) -> ldap3.Connection:
    """An open LDAPS connection (bound when user is given), options as ssobridge's, TCP_NODELAY on."""
    server = ldap3.Server(directory.host, port=directory.ldaps_port, use_ssl=True, get_info=ldap3.NONE,
                          tls=ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(directory.ca_file)),
                          connect_timeout=5)
    connection = ldap3.Connection(server, authentication=ldap3.SIMPLE, client_strategy=ldap3.SYNC,
                                  auto_bind="NONE", raise_exceptions=False, read_only=user != directory.admin_dn,
                                  auto_referrals=False, check_names=False, receive_timeout=10)
    connection.open(read_server_info=False)
    connection.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if user is not None:
        connection.user, connection.password = user, password.encode("utf-8")
        assert connection.bind(read_server_info=False), connection.result
    return connection


class Monitor:
    """slapd's own counters (cn=Monitor), read on one open admin connection.

    The reads cost operations of their own (searches on this connection); `calibrate` measures that cost
    with nothing else running, and `delta` subtracts it.
    """

    COUNTERS = (("searches", "cn=Search,cn=Operations,cn=Monitor", "monitorOpCompleted"),
                ("binds", "cn=Bind,cn=Operations,cn=Monitor", "monitorOpCompleted"),
                ("connections", "cn=Total,cn=Connections,cn=Monitor", "monitorCounter"))

    def __init__(self, directory):
        self._connection = open_ldap(directory, directory.admin_dn, directory.admin_password)
        self._lock = threading.Lock()
        self.own = dict.fromkeys((name for name, _, _ in self.COUNTERS), 0)
        try:
            self.read()
            self.available = True
        except (AssertionError, KeyError, IndexError, ldap3.core.exceptions.LDAPException) as e:
            print(f"bench: cn=Monitor not readable ({e!r}); LDAP operation counts left out", file=sys.stderr)
            self.available = False

    def read(self) -> dict[str, int]:
        counts = {}
        with self._lock:
            for name, dn, attribute in self.COUNTERS:
                self._connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=[attribute])
                assert self._connection.result["result"] == 0, self._connection.result
                counts[name] = int(self._connection.response[0]["raw_attributes"][attribute][0])
        return counts

    def calibrate(self) -> None:
        if not self.available:
            return
        samples = []
        for _ in range(3):
            before = self.read()
            after = self.read()
            samples.append({name: after[name] - before[name] for name in after})
        self.own = {name: min(sample[name] for sample in samples) for name in self.own}

    def snapshot(self) -> dict[str, int] | None:
        return self.read() if self.available else None

    def per_call(self, before: dict | None, after: dict | None, calls: int) -> dict | None:
        if before is None or after is None or not calls:
            return None
        return {name: round((after[name] - before[name] - self.own[name]) / calls, 3) for name in after}

    def close(self) -> None:
        self._connection.unbind()


def slapd_pid(slapd) -> int | None:
    try:
        return int((slapd.directory / "slapd.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# --- ssobridge ----------------------------------------------------------------------------------------

def start_bridge(workdir: Path, body: str) -> Service:
    """`python -m ssobridge serve --config FILE`, as an operator runs it (INFO logging, the default)."""
    return start_service(workdir, body, log_level="INFO")


def ldap_settings(config_path: Path, login: str) -> tuple[str, list[str]]:
    """The search filter and attribute list ssobridge uses for `login`, so the raw loop does the same work."""
    from ssobridge.config import load
    from ssobridge.directory import Directory, parse_login_name
    directory = Directory(load(config_path).directories[0])
    return directory.user_filter(parse_login_name(login)), list(directory.search_attributes)


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
        if response.status != 200:
            raise AssertionError(f"HTTP {response.status}: {data[:300]!r}")
        return data

    def authenticate(self, login: str, password: str = PASSWORD) -> bytes:
        return self.call("Authenticate", [AUTH, f"loginUsername={login}", f"loginPassword={password}"])

    def close(self) -> None:
        self.connection.close()


# --- load ---------------------------------------------------------------------------------------------

def percentile(ordered: list[float], p: float) -> float:
    """Nearest rank on sorted values."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(len(ordered) * p / 100 + 0.5) - 1))]


def latency_summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"p50_ms": round(percentile(ordered, 50), 2), "p95_ms": round(percentile(ordered, 95), 2),
            "p99_ms": round(percentile(ordered, 99), 2), "max_ms": round(ordered[-1], 2) if ordered else None}


def run_load(threads: int, seconds: float, work, on_start=None, on_stop=None) -> dict:
    """`work(state, rng, index)` in `threads` threads for `seconds`, each thread with `work.setup(index)`
    made BEFORE the clock starts; throughput and latency percentiles (ms). on_start() runs just before
    the clock starts, on_stop() right after the last thread ends (before teardown)."""
    states = [work.setup(index) for index in range(threads)]
    latencies: list[list[float]] = [[] for _ in range(threads)]
    outcomes: list[Counter] = [Counter() for _ in range(threads)]
    errors: list[BaseException] = []
    window = {}

    def start_clock() -> None:
        if on_start:
            on_start()
        window["began"] = time.perf_counter()
        window["stop"] = window["began"] + seconds

    barrier = threading.Barrier(threads, action=start_clock)

    def worker(index: int) -> None:
        rng = random.Random(index)
        state, mine, seen = states[index], latencies[index], outcomes[index]
        barrier.wait()
        stop = window["stop"]
        try:
            while True:
                started = time.perf_counter()
                if started >= stop:
                    return
                seen[work(state, rng, index)] += 1
                mine.append((time.perf_counter() - started) * 1000)
        except BaseException as e:  # reported after the run; a silent thread would skew the figures
            errors.append(e)

    pool = [threading.Thread(target=worker, args=(i,), name=f"bench-{i}") for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - window["began"]
    if on_stop:
        on_stop()
    for state in states:
        if hasattr(work, "teardown"):
            work.teardown(state)
    if errors:
        raise RuntimeError(f"{len(errors)} of {threads} load threads failed; first: {errors[0]!r}") from errors[0]
    flat = [x for per in latencies for x in per]
    return {"threads": threads, "calls": len(flat), "seconds": round(elapsed, 2),
            "per_second": round(len(flat) / elapsed, 1), **latency_summary(flat),
            "outcomes": dict(sum(outcomes, Counter()))}


class CpuMeter:
    """CPU time (user + system, all threads) of the processes involved, from /proc and getrusage."""

    def __init__(self, pids: dict[str, list[int | None]]):
        self.pids = {name: [pid for pid in group if pid] for name, group in pids.items()}
        self.ticks = os.sysconf("SC_CLK_TCK")

    def snapshot(self) -> dict[str, float]:
        seconds = {}
        for name, group in self.pids.items():
            try:
                for pid in group:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    seconds[name] = seconds.get(name, 0) + (int(fields[11]) + int(fields[12])) / self.ticks
            except (OSError, IndexError, ValueError):
                seconds.pop(name, None)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        seconds["bench"] = usage.ru_utime + usage.ru_stime
        return seconds

    @staticmethod
    def per_call(before: dict, after: dict, calls: int) -> dict:
        return {f"{name}_ms": round((after[name] - before[name]) * 1000 / calls, 3)
                for name in after if name in before and calls}


def measure(threads: int, seconds: float, work, monitor: Monitor, cpu: CpuMeter) -> dict:
    """run_load with slapd's counters and the processes' CPU time read just before and just after the
    measured window (connection setup excluded)."""
    seen = {}

    def before() -> None:
        seen["ops"], seen["cpu"] = monitor.snapshot(), cpu.snapshot()

    def after() -> None:
        seen["cpu_after"], seen["ops_after"] = cpu.snapshot(), monitor.snapshot()

    result = run_load(threads, seconds, work, before, after)
    ops_before, cpu_before, cpu_after, ops_after = seen["ops"], seen["cpu"], seen["cpu_after"], seen["ops_after"]
    result["cpu_per_call"] = cpu.per_call(cpu_before, cpu_after, result["calls"])
    result["cpu_busy_percent_of_machine"] = round(
        100 * sum(cpu_after[n] - cpu_before[n] for n in cpu_after if n in cpu_before)
        / result["seconds"] / (os.cpu_count() or 1), 1)
    result["ldap_per_call"] = monitor.per_call(ops_before, ops_after, result["calls"])
    return result


def pick(logins: list[str], rng: random.Random, wrong_percent: float) -> tuple[str, bool]:
    return logins[rng.randrange(len(logins))], rng.random() * 100 < wrong_percent


class SoapAuthenticate:
    """Authenticate calls; with several URLs (ssobridge processes), client i talks to URL i mod n."""

    def __init__(self, urls: list[str], logins: list[str], wrong_percent: float = 0):
        self.urls, self.logins, self.wrong_percent = urls, logins, wrong_percent

    def setup(self, index: int) -> Client:
        client = Client(self.urls[index % len(self.urls)])
        client.authenticate(self.logins[index % len(self.logins)])  # the HTTP connection is warm too
        return client

    def teardown(self, client: Client) -> None:
        client.close()

    def __call__(self, client: Client, rng: random.Random, index: int) -> str:
        login, wrong = pick(self.logins, rng, self.wrong_percent)
        data = client.authenticate(login, WRONG_PASSWORD if wrong else PASSWORD)
        expected = b"Authentication=FAIL" if wrong else b"Authentication=OK"
        if expected not in data:
            raise AssertionError(f"{login} ({'wrong' if wrong else 'right'} password): {data[:500]!r}")
        return "wrong_password" if wrong else "ok"


class RawLdap:
    """The ceiling: ssobridge's search (same filter and attributes) as the service account, then a simple
    bind as the user's DN with the password as bytes and the password policy control, with plain ldap3 on
    connections opened beforehand (one service and one user connection per thread)."""

    def __init__(self, directory, logins: list[str], search_filter: str, attributes: list[str],
                 wrong_percent: float = 0):
        self.directory, self.logins, self.attributes = directory, logins, attributes
        self.filter_prefix, _, self.filter_suffix = search_filter.partition(logins[0])
        self.wrong_percent = wrong_percent

    def setup(self, index: int):
        service = open_ldap(self.directory, self.directory.service_dn, self.directory.service_password)
        user = open_ldap(self.directory)
        return service, user

    def teardown(self, state) -> None:
        for connection in state:
            connection.unbind()

    def __call__(self, state, rng: random.Random, index: int) -> str:
        service, user = state
        login, wrong = pick(self.logins, rng, self.wrong_percent)
        service.search(self.directory.base_dn, f"{self.filter_prefix}{login}{self.filter_suffix}", ldap3.SUBTREE,
                       attributes=self.attributes, size_limit=2, time_limit=5)
        entries = [item for item in service.response if item.get("type") == "searchResEntry"]
        if len(entries) != 1:
            raise AssertionError(f"search for {login}: {service.result}")
        user.user, user.password = entries[0]["dn"], (WRONG_PASSWORD if wrong else PASSWORD).encode("utf-8")
        user.bind(read_server_info=False, controls=[PPOLICY_CONTROL])
        if user.result["result"] != (49 if wrong else 0):
            raise AssertionError(f"bind as {login}: {user.result}")
        return "wrong_password" if wrong else "ok"


# --- scenarios ----------------------------------------------------------------------------------------

def operations_per_authenticate(url: str, monitor: Monitor, logins: list[str], calls: int = 200) -> dict:
    """One client, a warm pool: slapd's counters before and after `calls` Authenticate calls."""
    client = Client(url)
    try:
        for login in logins[:20]:
            client.authenticate(login)
        before = monitor.snapshot()
        for i in range(calls):
            client.authenticate(logins[i % len(logins)])
        after = monitor.snapshot()
    finally:
        client.close()
    per_call = monitor.per_call(before, after, calls)
    return {"calls": calls, **(per_call or {}), "reader_overhead_subtracted": monitor.own}


def timed(function, *args) -> tuple[float, object]:
    started = time.perf_counter()
    outcome = function(*args)
    return (time.perf_counter() - started) * 1000, outcome


def first_url_dead(body: str, first_url: str | None, workdir: Path, logins: list[str], calls: int) -> dict:
    """A fresh ssobridge whose first URL is `first_url` (None: only the live server, for comparison):
    the first call (cold pools; pays the dead server once), then `calls` more; then, on another fresh
    ssobridge, 16 clients' first calls at the same moment."""
    if first_url:
        body = body.replace("urls = [", f"urls = [{toml_string(first_url)}, ", 1)
    service = start_bridge(workdir / "sequential", body)
    try:
        client = Client(service.url)
        first_ms, data = timed(client.authenticate, logins[0])
        assert b"Authentication=OK" in data, data
        later = []
        for i in range(calls):
            elapsed, data = timed(client.authenticate, logins[1 + i % (len(logins) - 1)])
            assert b"Authentication=OK" in data, data
            later.append(elapsed)
        client.close()
        failures_logged = service.log().count("event=directory_server_down")
    finally:
        service.stop()
    service = start_bridge(workdir / "burst", body)
    try:
        burst = first_calls_at_once(service.url, logins, 16)
        burst_failures = service.log().count("event=directory_server_down")
    finally:
        service.stop()
    return {"first_call_ms": round(first_ms, 1), "later": {"calls": calls, **latency_summary(later)},
            "dead_server_tried": failures_logged,
            "burst_16_first_calls": {**burst, "dead_server_tried": burst_failures}}


def first_calls_at_once(url: str, logins: list[str], clients: int) -> dict:
    connections = [Client(url) for _ in range(clients)]
    barrier = threading.Barrier(clients)
    latencies: list[float] = []
    errors: list[BaseException] = []

    def one(index: int) -> None:
        barrier.wait()
        try:
            elapsed, data = timed(connections[index].authenticate, logins[index])
            assert b"Authentication=OK" in data, data
            latencies.append(elapsed)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for connection in connections:
        connection.close()
    if errors:
        raise RuntimeError(f"burst: {errors[0]!r}") from errors[0]
    return {"clients": clients, **latency_summary(latencies)}


def policy_latency(url: str, logins: list[str]) -> dict:
    client = Client(url)
    results = {}
    operations = (("GetCustomFieldOptions", ["departmentName=Support", "location=PRE"], logins[:50]),
                  ("StartTicket", ["departmentName=Support", "subject=Server down", "ticketNumber=B-1"],
                   logins[100:150]))
    for operation, extra, users in operations:
        cold, warm = [], []
        for login in users:  # a new user each time: the membership cache is cold
            cold.append(timed(client.call, operation, [AUTH, f"loginUsername={login}", *extra])[0])
        for _ in range(200):  # the same user again: membership cached
            warm.append(timed(client.call, operation, [AUTH, f"loginUsername={users[0]}", *extra])[0])
        results[operation] = {"cold_p50_ms": round(statistics.median(cold), 2),
                              "warm_p50_ms": round(statistics.median(warm), 2),
                              "warm_p95_ms": round(percentile(sorted(warm), 95), 2)}
    client.close()
    return results


def user_details_latency(url: str, logins: list[str]) -> dict:
    client = Client(url)
    cold, warm = [], []
    for login in logins[50:100]:  # not seen before: directory lookups
        cold.append(timed(client.call, "GetUserDetails",
                          [AUTH, f"username={login}", "email=", "interactionType=ticket"])[0])
    for i in range(300):  # cached cards
        warm.append(timed(client.call, "GetUserDetails",
                          [AUTH, f"username={logins[50 + i % 50]}", "email=", "interactionType=ticket"])[0])
    client.close()
    return {"cold_p50_ms": round(statistics.median(cold), 2), "warm_p50_ms": round(statistics.median(warm), 2),
            "warm_p95_ms": round(percentile(sorted(warm), 95), 2)}


class NotifyEvent:
    def __init__(self, url: str):
        self.url = url

    def setup(self, index: int) -> Client:
        return Client(self.url)

    def teardown(self, client: Client) -> None:
        client.close()

    def __call__(self, client: Client, rng: random.Random, index: int) -> str:
        data = client.call("NotifyEventFired", [AUTH, "eventType=502000", f"args_n={index}-{rng.random()}"])
        if b"<tns:Success>true</tns:Success>" not in data:
            raise AssertionError(data[:500])
        return "ok"


# --- profile ------------------------------------------------------------------------------------------

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def profile_server(pid: int, threads: int, seconds: float, work, output: Path) -> dict:
    """py-spy on ssobridge while `threads` clients call Authenticate. --gil: only the thread holding the
    GIL is sampled, so the shares are of the Python CPU time of the process (threads waiting on a socket
    or on the GIL are not counted). The raw stacks go to `output`, a summary into the results."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        return {"error": "py-spy is not installed (pip install py-spy)"}
    recorder = subprocess.Popen([py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds)),
                                 "--rate", "1000", "--gil", "--format", "raw", "--nonblocking",
                                 "--output", str(output)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # py-spy attaches
    load = run_load(threads, seconds - 1, work)
    _, error = recorder.communicate(timeout=seconds + 30)
    if recorder.returncode != 0 or not output.exists():
        return {"error": f"py-spy failed: {error.decode(errors='replace')[-500:]}"}
    return {"raw_stacks": str(output.relative_to(ROOT)) if output.is_relative_to(ROOT) else str(output),
            "load_while_sampled": {k: load[k] for k in ("threads", "per_second", "p50_ms")},
            **summarize_profile(output)}


# Inclusive shares: samples whose stack has a frame matching any "function@file fragment" (function may be
# empty: any function in that file).
_STAGES = (
    ("cheroot worker: the whole HTTP request", ("HTTPConnection.communicate@cheroot/server.py",)),
    ("ssobridge Endpoint (the WSGI app: guards + spyne)", ("Endpoint.__call__@ssobridge/wire/http.py",)),
    ("spyne: parse the request (lxml, deserialize)", ("ServerBase.generate_contexts@spyne/server/_base.py",
                                                      "ServerBase.get_in_object@spyne/server/_base.py")),
    ("spyne: serialize the response", ("ServerBase.get_out_string_pull@spyne/server/_base.py",)),
    ("spyne: MethodContext.close (gc.collect() once a second)", ("MethodContext.close@spyne/context.py",)),
    ("LoginProvider.authenticate (all directory work)", ("LoginProvider.authenticate@ssobridge/providers/login.py",)),
    ("Directory.find_user (the search)", ("Directory.find_user@ssobridge/directory/accounts.py",)),
    ("Directory.verify_password (the bind)", ("Directory.verify_password@ssobridge/directory/accounts.py",)),
    ("ldap3 + pyasn1 (any frame)", ("@ldap3/", "@pyasn1/")),
    ("logging (any frame)", ("@logging/",)),
    ("cheroot connection manager (select loop)", ("ConnectionManager.run@cheroot/connections.py",)),
)

# Where a sample's innermost frame is, by file path fragment; the first match wins.
_AREAS = (("ssl", "ssl.py"), ("socket", "socket.py"), ("ldap3", "ldap3/"), ("pyasn1", "pyasn1/"),
          ("spyne", "spyne/"), ("lxml", "lxml"), ("cheroot", "cheroot/"), ("logging", "logging/"),
          ("threading, queue", "threading.py"), ("threading, queue", "queue.py"), ("ssobridge", "ssobridge/"))


def _matches(spec: str, function: str, file: str) -> bool:
    name, _, fragment = spec.partition("@")
    return fragment in file and (not name or function == name or function.endswith("." + name))


def summarize_profile(path: Path) -> dict:
    total = 0
    by_area: Counter = Counter()
    by_function: Counter = Counter()
    stages: Counter = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [(m["function"], m["file"]) for m in map(_FRAME.match, stack.split(";")) if m]
        if not frames:
            continue
        n = int(count)
        total += n
        function, file = frames[-1]
        by_area[next((area for area, fragment in _AREAS if fragment in file), "other")] += n
        by_function[f"{function} ({file})"] += n
        for stage, specs in _STAGES:
            if any(_matches(spec, fn, f) for spec in specs for fn, f in frames):
                stages[stage] += n

    def percent(n: int) -> float:
        return round(100 * n / total, 1) if total else 0.0

    return {"samples": total,
            "inclusive_percent": {stage: percent(stages[stage]) for stage, _ in _STAGES},
            "self_percent_by_area": {area: percent(n) for area, n in by_area.most_common()},
            "top_self_functions_percent": {name: percent(n) for name, n in by_function.most_common(15)}}


# --- main ---------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5, help="duration of each load scenario (default 5)")
    parser.add_argument("--wrong-percent", type=float, default=0,
                        help="share of Authenticate calls with a wrong password, in %% (default 0)")
    parser.add_argument("--no-profile", dest="profile", action="store_false",
                        help="skip the py-spy profile of ssobridge under 1 and 16 clients (~15 s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, configs)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results",
                        help="where latest.json and latest.md go (default bench/results)")
    arguments = parser.parse_args()
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="ssobridge-bench-"))
    pki = create_test_pki(work / "pki")
    directory, slapd = start_openldap(work / "slapd", pki)
    services: list[Service] = []
    monitor = None
    results: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "platform": platform.platform(), "cpu_model": cpu_model()},
                     "seconds_per_scenario": arguments.seconds, "wrong_password_percent": arguments.wrong_percent,
                     "directory": "OpenLDAP slapd (ppolicy, memberof overlays), ldaps:// on 127.0.0.1, "
                                  f"{USERS} bench users"}
    try:
        logins = add_bench_users(directory)
        monitor = Monitor(directory)
        body = directory_toml("bench", "ldap", [directory.ldaps_url], directory.base_dn, directory.service_dn,
                              directory.service_password, ca_file=str(directory.ca_file), connect_timeout=1,
                              timeout=5)
        service = start_bridge(work / "service", body)
        services.append(service)
        search_filter, attributes = ldap_settings(work / "service" / "ssobridge.toml", logins[0])
        results["raw_ldap3_request"] = {"filter": search_filter.replace(logins[0], "<login>"),
                                        "attributes": attributes, "bind_controls": ["ppolicy request"]}
        cpu = CpuMeter({"ssobridge": [service.process.pid], "slapd": [slapd_pid(slapd)]})
        soap = SoapAuthenticate([service.url], logins, arguments.wrong_percent)
        raw = RawLdap(directory, logins, search_filter, attributes, arguments.wrong_percent)
        run_load(16, 1, soap)  # warm-up: both pools filled to 16, code paths hot
        run_load(4, 0.5, raw)
        monitor.calibrate()
        results["authenticate"] = {}
        for threads in CLIENT_COUNTS:
            ours = measure(threads, arguments.seconds, soap, monitor, cpu)
            ceiling = measure(threads, arguments.seconds, raw, monitor, cpu)
            results["authenticate"][f"{threads}_clients"] = {
                "ssobridge": ours, "raw_ldap3": ceiling,
                "ratio": round(ours["per_second"] / ceiling["per_second"], 3)}
            print(f"bench: Authenticate, {threads} clients: ssobridge {ours['per_second']}/s, "
                  f"raw ldap3 {ceiling['per_second']}/s", file=sys.stderr)
        # One ssobridge process is one GIL: the same 16 clients spread over two processes show what that costs.
        second = start_bridge(work / "service2", body)
        services.append(second)
        pair = SoapAuthenticate([service.url, second.url], logins, arguments.wrong_percent)
        run_load(16, 1, pair)
        two = measure(16, arguments.seconds, pair,
                      monitor, CpuMeter({"ssobridge": [service.process.pid, second.process.pid],
                                         "slapd": [slapd_pid(slapd)]}))
        second.stop()
        ceiling = results["authenticate"]["16_clients"]["raw_ldap3"]
        results["authenticate"]["16_clients_2_processes"] = {
            "ssobridge": two, "ratio": round(two["per_second"] / ceiling["per_second"], 3)}
        results["ldap_operations_per_authenticate"] = operations_per_authenticate(service.url, monitor, logins)
        dead, hole = DeadPort(), BlackHole()
        try:
            results["first_url_dead"] = {
                "none (all URLs alive)": first_url_dead(body, None, work / "alive", logins, 100),
                "refused": first_url_dead(body, f"ldaps://{dead.host}:{dead.port}", work / "dead", logins, 100),
                "black_hole": first_url_dead(body, f"ldaps://{hole.host}:{hole.port}", work / "hole", logins, 100),
            }
        finally:
            dead.close()
            hole.close()
        print("bench: first URL dead done", file=sys.stderr)
        if arguments.profile:
            arguments.output.mkdir(parents=True, exist_ok=True)
            results["profile"] = {
                f"{threads}_clients": profile_server(service.process.pid, threads, max(arguments.seconds, 5) + 1,
                                                     soap, arguments.output / f"profile-{threads}-clients.txt")
                for threads in CLIENT_COUNTS}
        service.stop()
        try:
            example = (ROOT / "config.example.toml").read_text(encoding="utf-8").split("\n[policy]\n", 1)[1]
        except (OSError, IndexError):
            example = None
        if example:
            policy_service = start_bridge(work / "policy", body + "[policy]\n" + example)
            services.append(policy_service)
            results["policy"] = policy_latency(policy_service.url, logins)
            policy_service.stop()
        info_events = ('[user_info]\ncache_seconds = 600\n[events]\ndatabase = "events.db"\n'
                       '[[events.sink]]\nname = "archive"\ntype = "jsonl"\npath = "events.jsonl"\n')
        info_service = start_bridge(work / "info", body + info_events)
        services.append(info_service)
        results["user_details"] = user_details_latency(info_service.url, logins)
        results["notify_event_fired"] = {
            f"{threads}_clients": run_load(threads, arguments.seconds, NotifyEvent(info_service.url))
            for threads in (1, 8)}
    finally:
        for service in services:
            service.stop()
        if monitor is not None:
            monitor.close()
        slapd.stop()
        if arguments.keep:
            print(f"bench: kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["total_seconds"] = round(time.monotonic() - began, 1)
    arguments.output.mkdir(parents=True, exist_ok=True)
    (arguments.output / "latest.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (arguments.output / "latest.md").write_text(render(results), encoding="utf-8")
    print(render(results))
    return 0


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def render(r: dict) -> str:
    machine = r["machine"]
    lines = [f"# ssobridge bench, {r['date']}", "",
             f"{machine['cpus']} CPUs ({machine.get('cpu_model')}), Python {machine['python']}, "
             f"{machine['platform']}; {r['seconds_per_scenario']} s per load scenario; "
             f"{r['wrong_password_percent']} % wrong passwords; {r['directory']}. "
             f"Whole run {r.get('total_seconds')} s.", "",
             "## Authenticate", "",
             "Client, ssobridge and slapd share the machine's cores. CPU ms per call: ssobridge / slapd / "
             "bench process (the client, or for raw ldap3 the loop itself).", "",
             "| clients | what | calls/s | p50 ms | p95 ms | p99 ms | CPU ms/call | LDAP ops/call (search, bind, "
             "new conn) | ratio |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key, row in r["authenticate"].items():
        pairs = [("ssobridge" + (", 2 processes" if "processes" in key else ""), row["ssobridge"])]
        if "raw_ldap3" in row:
            pairs.append(("raw ldap3", row["raw_ldap3"]))
        for label, m in pairs:
            c, ops = m.get("cpu_per_call") or {}, m.get("ldap_per_call")
            cpu = " / ".join(str(c.get(f"{n}_ms", "-")) for n in ("ssobridge", "slapd", "bench"))
            ops_text = f"{ops['searches']}, {ops['binds']}, {ops['connections']}" if ops else "n/a"
            ratio = row["ratio"] if label.startswith("ssobridge") else ""
            lines.append(f"| {m['threads']} | {label} | {m['per_second']} | {m['p50_ms']} | {m['p95_ms']} | "
                         f"{m['p99_ms']} | {cpu} | {ops_text} | {ratio} |")
    ops = r["ldap_operations_per_authenticate"]
    if "searches" in ops:
        lines += ["", f"LDAP operations per Authenticate on a warm pool (slapd cn=Monitor, {ops['calls']} calls, "
                      f"one client): {ops['searches']} searches, {ops['binds']} binds, {ops['connections']} new "
                      "connections."]
    lines += ["", "## First URL dead (connect_timeout 1 s, retry_down_after 30 s)", "",
              "A fresh ssobridge each time: the first call also opens the two pools' first connections "
              "(TLS + service bind). Burst: 16 clients' first calls at the same moment, on another fresh "
              "ssobridge.", "",
              "| first URL | first call ms | next 100 calls p50 / p95 ms | dead server tried | burst of 16: "
              "p50 / max ms | dead server tried |", "|---|---|---|---|---|---|"]
    for name, row in r["first_url_dead"].items():
        later, burst = row["later"], row["burst_16_first_calls"]
        lines.append(f"| {name} | {row['first_call_ms']} | {later['p50_ms']} / {later['p95_ms']} | "
                     f"{row['dead_server_tried']} | {burst['p50_ms']} / {burst['max_ms']} | "
                     f"{burst['dead_server_tried']} |")
    if "profile" in r:
        lines += ["", "## Where ssobridge spends its Python CPU time (py-spy --gil, Authenticate load)", ""]
        profiles = {name: p for name, p in r["profile"].items() if "error" not in p}
        lines += [p["error"] for p in r["profile"].values() if "error" in p]
        if profiles:
            names = list(profiles)
            lines += ["Inclusive share of the samples (GIL held) whose stack is in ...", "",
                      "| where | " + " | ".join(f"{n.replace('_', ' ')} %" for n in names) + " |",
                      "|---|" + "---|" * len(names)]
            for stage in profiles[names[0]]["inclusive_percent"]:
                lines.append(f"| {stage} | " + " | ".join(str(profiles[n]["inclusive_percent"][stage])
                                                          for n in names) + " |")
            lines += ["", "Raw stacks: " + ", ".join(p["raw_stacks"] for p in profiles.values()) + "."]
    if "policy" in r:
        lines += ["", "## Group rules (config.example.toml policy)", "",
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
