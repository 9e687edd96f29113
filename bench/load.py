"""The load: bench users in slapd, SOAP and raw ldap3 clients, the threads that drive them, and the readings
taken around each measured window (slapd's cn=Monitor counters, the processes' CPU time).

A load is a callable `work(state, rng, index)` with `work.setup(index)` (one state per thread, made before
the clock starts) and optionally `work.teardown(state)`; run_load and measure drive it.
"""

from __future__ import annotations

import http.client
import os
import random
import resource
import socket
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import ldap3

from ssobridge.directory.tls import VerifiedTls, verifying_context
from tests.support.services import WEB_SERVICE_PASSWORD, envelope

USERS = 200
PASSWORD = "Bench-Passw0rd!"
WRONG_PASSWORD = "Bench-Passw0rd?"
AUTH = f"authPW={WEB_SERVICE_PASSWORD}"
PPOLICY_CONTROL = ("1.3.6.1.4.1.42.2.27.8.5.1", False, None)


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
                          tls=VerifiedTls(verifying_context(str(directory.ca_file)), directory.host),
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

    COUNTERS = (("operations", "cn=Operations,cn=Monitor", "monitorOpCompleted"),  # every kind, all together
                ("searches", "cn=Search,cn=Operations,cn=Monitor", "monitorOpCompleted"),
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


def worker_pids(service) -> list[int]:
    """The granian worker processes of a running `ssobridge serve`: the children of its process (/proc)."""
    parent, children = service.process.pid, []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return sorted(children)


def bridge_pids(service) -> list[int]:
    """The `ssobridge serve` process and its workers: where ssobridge's CPU time is spent."""
    return [service.process.pid, *worker_pids(service)]


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (resident now) and VmHWM (the peak resident) of a process, in MB (10^6 bytes), from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[{"VmRSS": "rss_mb", "VmHWM": "peak_rss_mb"}[name]] = round(int(rest.split()[0]) * 1024 / 1e6, 1)
    return values


def slapd_pid(slapd) -> int | None:
    try:
        return int((slapd.directory / "slapd.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# --- the SOAP client ----------------------------------------------------------------------------------

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


# --- running a load, and the readings around it -------------------------------------------------------

def percentile(ordered: list[float], p: float) -> float:
    """Nearest rank on sorted values."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(len(ordered) * p / 100 + 0.5) - 1))]


def latency_summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"p50_ms": round(percentile(ordered, 50), 2), "p95_ms": round(percentile(ordered, 95), 2),
            "p99_ms": round(percentile(ordered, 99), 2), "max_ms": round(ordered[-1], 2) if ordered else None}


def timed(function, *args) -> tuple[float, object]:
    started = time.perf_counter()
    outcome = function(*args)
    return (time.perf_counter() - started) * 1000, outcome


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


# --- the loads: what one client thread does, call after call ------------------------------------------

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


class NotifyEvent:
    """NotifyEventFired calls, each with a new argument."""

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



class CachedUserDetails:
    """GetUserDetails for `logins`, each thread's connection first asking for every one of them (outside
    the clock): every card is in the workers' shared card store, and each worker's code paths are warm."""

    def __init__(self, url: str, logins: list[str]):
        self.url, self.logins = url, logins

    def setup(self, index: int) -> Client:
        client = Client(self.url)
        for login in self.logins:
            self._details(client, login)
        return client

    def teardown(self, client: Client) -> None:
        client.close()

    def _details(self, client: Client, login: str) -> None:
        data = client.call("GetUserDetails", [AUTH, f"username={login}", "email=", "interactionType=ticket"])
        if b"<tns:Success>true</tns:Success>" not in data or login.encode() not in data:
            raise AssertionError(f"GetUserDetails {login}: {data[:500]!r}")

    def __call__(self, client: Client, rng: random.Random, index: int) -> str:
        self._details(client, self.logins[rng.randrange(len(self.logins))])
        return "ok"


class MixedLoad:
    """What a helpdesk sends over a day, in one stream: Authenticate (right passwords, and wrong ones for
    the last WRONG_LOGINS people only, so the lockout shield never stands in a right password's way),
    GetCustomFieldOptions and StartTicket under the group rules, GetUserDetails, NotifyEventFired."""

    WRONG_LOGINS = 10
    # (what, weight in %)
    MIX = (("authenticate", 50), ("wrong_password", 5), ("GetCustomFieldOptions", 10), ("StartTicket", 10),
           ("GetUserDetails", 15), ("NotifyEventFired", 10))

    def __init__(self, url: str, logins: list[str]):
        self.url = url
        self.right, self.wrong = logins[:-self.WRONG_LOGINS], logins[-self.WRONG_LOGINS:]
        self.kinds = [kind for kind, weight in self.MIX for _ in range(weight)]

    def setup(self, index: int) -> Client:
        return Client(self.url)

    def teardown(self, client: Client) -> None:
        client.close()

    def __call__(self, client: Client, rng: random.Random, index: int) -> str:
        kind = self.kinds[rng.randrange(len(self.kinds))]
        login = self.right[rng.randrange(len(self.right))]
        if kind == "authenticate":
            expected, data = b"Authentication=OK", client.authenticate(login)
        elif kind == "wrong_password":
            expected, data = b"Authentication=FAIL", client.authenticate(
                self.wrong[rng.randrange(len(self.wrong))], WRONG_PASSWORD)
        elif kind == "GetCustomFieldOptions":
            expected, data = b"<tns:Success>true</tns:Success>", client.call(
                kind, [AUTH, f"loginUsername={login}", "departmentName=Support", "location=PRE"])
        elif kind == "StartTicket":
            expected, data = b"<tns:Success>true</tns:Success>", client.call(
                kind, [AUTH, f"loginUsername={login}", "departmentName=Support", "subject=Server down",
                       f"ticketNumber=M-{index}-{rng.randrange(10**9)}"])
        elif kind == "GetUserDetails":
            expected, data = login.encode(), client.call(
                kind, [AUTH, f"username={login}", "email=", "interactionType=ticket"])
        else:
            expected, data = b"<tns:Success>true</tns:Success>", client.call(
                kind, [AUTH, "eventType=502000", f"args_n={index}-{rng.random()}"])
        if expected not in data:
            raise AssertionError(f"{kind} for {login}: {data[:500]!r}")
        return kind
