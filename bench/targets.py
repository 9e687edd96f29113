"""The scenarios that exist for issue 10's targets, and the verdicts: every target, its measured value, its
limit, PASS or FAIL, and the command that made it. The Authenticate targets read what scenarios.py measured,
issue 17's (newer Pythons) what interpreters.py measured; bench/README.md ("Targets") lists them.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import sys
import threading
import time

from bench.bridge import USER_INFO_AND_EVENTS, example_policy
from bench.load import (CachedUserDetails, Client, CpuMeter, MixedLoad, bridge_pids, latency_summary, measure,
                        memory_mb, run_load, timed, worker_pids)
from tests.support.network import BlackHole, DeadPort

UNAVAILABLE = b"The directory is unavailable."
OUTAGE_P99_MS = 50
RECOVERY_RETRY_DOWN_AFTER = 5  # seconds: short, so that the wait for a server back is a few seconds
RSS_LIMIT_MB = 100
CACHED_DETAILS_PER_SECOND = 1000
# Issue 17: a newer Python may be at most this much slower than the oldest in calls/s at 16 clients (faster is
# fine), and must still reach the raw ldap3 ceiling.
PYTHON_SLOWER_AT_MOST = 0.10
PYTHON_CEILING_RATIO = 1.0


# --- all servers down ---------------------------------------------------------------------------------

def all_servers_down(bench, calls: int = 200, budget_seconds: float = 20) -> dict:
    """A directory whose only URL is dead (a refused port; a black hole), on a fresh ssobridge: the first
    call (the failed probe), then `calls` more, one after the other; each must answer "directory
    unavailable". Stops early after `budget_seconds` (when every call waits for a timeout)."""
    dead, hole = DeadPort(), BlackHole()
    try:
        return {name: only_url_dead(bench, name, url, calls, budget_seconds)
                for name, url in (("refused", f"ldaps://{dead.host}:{dead.port}"),
                                  ("black_hole", f"ldaps://{hole.host}:{hole.port}"))}
    finally:
        dead.close()
        hole.close()


def only_url_dead(bench, name: str, url: str, calls: int, budget_seconds: float) -> dict:
    service = bench.start_bridge(f"down/{name}", urls=[url])
    client = Client(service.url)
    try:
        first_ms, data = timed(client.authenticate, bench.logins[0])
        assert UNAVAILABLE in data, data
        later, stop = [], time.monotonic() + budget_seconds
        for i in range(calls):
            elapsed, data = timed(client.authenticate, bench.logins[1 + i % (len(bench.logins) - 1)])
            assert UNAVAILABLE in data, data
            later.append(elapsed)
            if time.monotonic() > stop:
                break
        tried = service.log().count("event=directory_server_down")
    finally:
        client.close()
        service.stop()
    return {"first_call_ms": round(first_ms, 1), "calls": len(later), "calls_planned": calls,
            **latency_summary(later), "dead_server_tried": tried}


# --- a server that comes back -------------------------------------------------------------------------

class SwitchableProxy:
    """TCP forwarding (TLS untouched) to a real server, on a fixed loopback port that can be made to refuse
    (the listener closed, every open connection reset) and to accept again (the same port listens again)."""

    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1"):
        self._target = (target_host, target_port)
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server((host, 0))  # SO_REUSEADDR: the port can listen again later
        self.host, self.port = self._listener.getsockname()
        self._start()

    def _start(self) -> None:
        threading.Thread(target=self._accept_forever, args=(self._listener,), name="bench-proxy",
                         daemon=True).start()

    def refuse(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        with self._lock:
            for connection in self._open:
                with contextlib.suppress(OSError):
                    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    connection.close()  # SO_LINGER 0: a reset
            self._open.clear()

    def accept_again(self) -> None:
        self._listener = socket.create_server((self.host, self.port))
        self._start()

    def close(self) -> None:
        self.refuse()

    def _accept_forever(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target, timeout=5)
            upstream.settimeout(None)
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def server_comes_back(bench, outage_seconds: float = 0.5, every_seconds: float = 0.02) -> dict:
    """ssobridge's only URL is a proxy in front of slapd (retry_down_after RECOVERY_RETRY_DOWN_AFTER s).
    Logins work; the proxy refuses (open connections reset): calls until the first "directory
    unavailable" (the server is now marked down); `outage_seconds` later the proxy accepts again; then one
    Authenticate every `every_seconds` until the first OK. The time from "accepts again" to that OK
    must be at most one retry interval."""
    proxy = SwitchableProxy(bench.directory.host, bench.directory.ldaps_port)
    retry = RECOVERY_RETRY_DOWN_AFTER
    service = bench.start_bridge("comes-back", urls=[f"ldaps://{bench.directory.host}:{proxy.port}"],
                                 retry_down_after=retry)
    client = Client(service.url)
    login = bench.logins[0]
    try:
        for _ in range(5):
            assert b"Authentication=OK" in client.authenticate(login)
        proxy.refuse()
        refused_at, during = time.monotonic(), []
        while True:
            elapsed, data = timed(client.authenticate, login)
            during.append(elapsed)
            if UNAVAILABLE in data:
                break
            assert time.monotonic() - refused_at < 30, "ssobridge never noticed the server was gone"
        down_at = time.monotonic()
        time.sleep(outage_seconds)
        proxy.accept_again()
        back_at, waited = time.monotonic(), 0
        while True:
            data = client.authenticate(login)
            if b"Authentication=OK" in data:
                break
            assert UNAVAILABLE in data, data
            waited += 1
            assert time.monotonic() - back_at < 3 * retry + 10, "the server was never used again"
            time.sleep(every_seconds)
        ok_at = time.monotonic()
    finally:
        client.close()
        service.stop()
        proxy.close()
    return {"retry_down_after_s": retry, "calls_until_unavailable": len(during),
            "unavailable_after_ms": round((down_at - refused_at) * 1000, 1),
            "outage_s": outage_seconds, "calls_unavailable_after_back": waited, "poll_every_s": every_seconds,
            "first_ok_after_back_s": round(ok_at - back_at, 2), "first_ok_after_down_s": round(ok_at - down_at, 2)}


# --- cached GetUserDetails ----------------------------------------------------------------------------

def cached_user_details(bench, threads: int = 8, users: int = 50) -> dict:
    """GetUserDetails at `threads` clients for `users` people whose cards are in the card store:
    throughput, latency and slapd's operation counters over the window (all kinds: must be 0)."""
    service = bench.start_bridge("cached-details", tables=USER_INFO_AND_EVENTS)
    try:
        load = CachedUserDetails(service.url, bench.logins[100:100 + users])
        run_load(threads, 0.5, load)  # the workers start and fill their caches
        cpu = CpuMeter({"ssobridge": bridge_pids(service)})
        result = measure(threads, bench.seconds, load, bench.monitor, cpu)
    finally:
        service.stop()
    per_call = result.get("ldap_per_call")
    result["ldap_operations"] = None if per_call is None else round(per_call["operations"] * result["calls"])
    return result


# --- memory after a mixed load ------------------------------------------------------------------------

def mixed_load_memory(bench, seconds: float, threads: int = 8) -> dict:
    """The mixed load (bench/load.py MixedLoad) for `seconds` on an ssobridge with the example group rules,
    user cards and events; the resident memory of every granian worker (children of `ssobridge serve`,
    /proc/PID/status) after a short warm-up and at the end."""
    tables = {**(example_policy() or {}), **USER_INFO_AND_EVENTS}
    service = bench.start_bridge("mixed", tables=tables)
    try:
        load = MixedLoad(service.url, bench.logins)
        run_load(threads, 1, load)
        workers = worker_pids(service)
        before = {pid: memory_mb(pid) for pid in workers}
        print(f"bench: mixed load for {seconds} s ({len(workers)} workers)", file=sys.stderr)
        result = run_load(threads, seconds, load)
        after = {pid: memory_mb(pid) for pid in workers}
        parent = memory_mb(service.process.pid)
    finally:
        service.stop()
    return {"load": result, "serve_process": parent,
            "workers": [{"pid": pid, "rss_mb_after_warm_up": before[pid]["rss_mb"], **after[pid]}
                        for pid in workers]}


# --- the verdicts -------------------------------------------------------------------------------------

def verdicts(r: dict, command: str) -> list[dict]:
    """One row per target of issues 10 and 17: target, measured value, PASS/FAIL, and the command."""
    rows = []

    def add(target: str, value: str, passed: bool | None, where: str) -> None:
        verdict = "n/a" if passed is None else "PASS" if passed else "FAIL"
        rows.append({"target": target, "measured": value, "verdict": verdict, "command": f"{command}  ({where})"})

    auth = r.get("authenticate", {})
    if "16_clients" in auth:
        row = auth["16_clients"]
        add("Authenticate, 16 clients: >= 0.7 x raw ldap3 ceiling",
            f"{row['ratio']} ({row['ssobridge']['per_second']} / {row['raw_ldap3']['per_second']} calls/s, "
            f"{r.get('workers')} workers)", row["ratio"] >= 0.7, "Authenticate")
    if "1_clients" in auth:
        row = auth["1_clients"]
        added = round(row["ssobridge"]["p50_ms"] - row["raw_ldap3"]["p50_ms"], 2)
        add("Authenticate, 1 client: p50 over raw <= 1.5 ms",
            f"{added} ms ({row['ssobridge']['p50_ms']} - {row['raw_ldap3']['p50_ms']})", added <= 1.5,
            "Authenticate")
    for name, case in r.get("all_servers_down", {}).items():
        complete = case["calls"] == case["calls_planned"]
        add(f"All servers down ({name.replace('_', ' ')}): p99 <= {OUTAGE_P99_MS} ms after the first failed probe",
            f"p99 {case['p99_ms']} ms over {case['calls']} calls" + ("" if complete else " (stopped: time budget)")
            + f"; first call {case['first_call_ms']} ms", complete and case["p99_ms"] <= OUTAGE_P99_MS,
            "All servers down")
    back = r.get("server_comes_back")
    if back:
        add("A server that comes back is used again within one retry interval",
            f"{back['first_ok_after_back_s']} s (retry_down_after {back['retry_down_after_s']} s)",
            back["first_ok_after_back_s"] <= back["retry_down_after_s"], "A server that comes back")
    details = r.get("cached_user_details")
    if details:
        ops = details["ldap_operations"]
        add("Cached GetUserDetails: 0 LDAP operations", "n/a (cn=Monitor unreadable)" if ops is None else
            f"{ops} operations in {details['calls']} calls", None if ops is None else ops == 0, "Cached GetUserDetails")
        add(f"Cached GetUserDetails: >= {CACHED_DETAILS_PER_SECOND} calls/s at {details['threads']} clients",
            f"{details['per_second']} calls/s", details["per_second"] >= CACHED_DETAILS_PER_SECOND,
            "Cached GetUserDetails")
    mixed = r.get("mixed_load_memory")
    if mixed:
        largest = max(worker["rss_mb"] for worker in mixed["workers"])
        add(f"RSS per worker < {RSS_LIMIT_MB} MB after {mixed['load']['seconds']} s of mixed load",
            f"largest {largest} MB (" + ", ".join(str(w["rss_mb"]) for w in mixed["workers"]) + " MB)",
            largest < RSS_LIMIT_MB, "Memory after mixed load")
    ops = r.get("ldap_operations_per_authenticate", {})
    if "searches" in ops:
        shield = r.get("lockout_shield")
        add("Exactly 1 search and 1 bind per Authenticate, warm pool, lockout shield on",
            f"{ops['searches']} searches, {ops['binds']} binds, {ops['connections']} new connections; shield "
            f"{shield}", ops["searches"] == 1 and ops["binds"] == 1 and shield == "on", "Authenticate")
    comparison = r.get("python_comparison")
    if comparison:
        first, ceiling = comparison["interpreters"][0], comparison["ceiling"]["16_clients"]
        rounds = f"median of {comparison['rounds']} round" + ("s" if comparison["rounds"] > 1 else "")
        for later in comparison["interpreters"][1:]:
            mine, theirs = later["16_clients"], first["16_clients"]
            within = f"within {PYTHON_SLOWER_AT_MOST * 100:g} %"
            add(f"{later['label']} {within} of {first['label']} in calls/s at 16 clients",
                f"{mine['to_first']['per_second']} ({mine['per_second']} / {theirs['per_second']} calls/s, {rounds})",
                mine["to_first"]["per_second"] >= 1 - PYTHON_SLOWER_AT_MOST, "Authenticate on each Python")
            add(f"{later['label']} >= {PYTHON_CEILING_RATIO}x the raw ldap3 ceiling at 16 clients",
                f"{mine['to_ceiling']} ({mine['per_second']} / {ceiling['per_second']} calls/s, {rounds})",
                mine["to_ceiling"] >= PYTHON_CEILING_RATIO, "Authenticate on each Python")
    return rows
