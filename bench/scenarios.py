"""The measured scenarios, in the order run.py runs them. Each returns the figures for one part of the
results; bench/README.md says what each one measures and why.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.bridge import ROOT, USER_INFO_AND_EVENTS, directory_table, example_policy, ldap_settings, start_bridge
from bench.load import (AUTH, Client, CpuMeter, Monitor, NotifyEvent, RawLdap, SoapAuthenticate, bridge_pids,
                        latency_summary, measure, percentile, run_load, slapd_pid, timed, worker_pids)
from tests.support.services import Service
from tests.support.network import BlackHole, DeadPort

CLIENT_COUNTS = (1, 16)


@dataclass
class Bench:
    """What the scenarios share: the slapd with its bench users and counters, and the run's settings."""

    directory: object  # tests.support.slapd's directory: URLs, DNs, passwords, CA file
    slapd: object
    logins: list[str]
    monitor: Monitor
    workdir: Path
    seconds: float
    wrong_percent: float
    services: list[Service] = field(default_factory=list)

    def start_bridge(self, name: str, first_url: str | None = None, tables: dict | None = None,
                     python: str = sys.executable, **settings) -> Service:
        """A fresh ssobridge on the bench slapd (after `first_url` when given), in workdir/name, run by
        `python` (default: the bench's interpreter); `settings` go into its [[directory]] (e.g. urls=[...],
        retry_down_after=...)."""
        service = start_bridge(self.workdir / name, directory_table(self.directory, first_url, **settings), tables,
                               self.workdir / "data", python)
        self.services.append(service)
        return service

    def stop_services(self) -> None:
        for service in self.services:
            service.stop()


# --- Authenticate -------------------------------------------------------------------------------------

def authenticate(bench: Bench, service: Service) -> dict:
    """Authenticate at 1 and 16 clients next to the raw ldap3 ceiling, then 16 clients over two ssobridge
    processes. Returns `raw_ldap3_request` (what the raw loop sends) and the `authenticate` table."""
    search_filter, attributes = ldap_settings(service, bench.logins[0])
    soap = SoapAuthenticate([service.url], bench.logins, bench.wrong_percent)
    raw = RawLdap(bench.directory, bench.logins, search_filter, attributes, bench.wrong_percent)
    sign_in_everyone(service.url, bench.logins)
    run_load(16, 1, soap)  # warm-up: both pools filled to 16, code paths hot
    run_load(4, 0.5, raw)
    # ssobridge's CPU: the serve process and its granian workers (they exist once requests were served)
    cpu = CpuMeter({"ssobridge": bridge_pids(service), "slapd": [slapd_pid(bench.slapd)]})
    bench.monitor.calibrate()
    table = {}
    for threads in CLIENT_COUNTS:
        ours = measure(threads, bench.seconds, soap, bench.monitor, cpu)
        ceiling = measure(threads, bench.seconds, raw, bench.monitor, cpu)
        table[f"{threads}_clients"] = {"ssobridge": ours, "raw_ldap3": ceiling,
                                       "ratio": round(ours["per_second"] / ceiling["per_second"], 3)}
        print(f"bench: Authenticate, {threads} clients: ssobridge {ours['per_second']}/s, "
              f"raw ldap3 {ceiling['per_second']}/s", file=sys.stderr)
    # One ssobridge process is one GIL: the same 16 clients spread over two processes show what that costs.
    second = bench.start_bridge("service2")
    pair = SoapAuthenticate([service.url, second.url], bench.logins, bench.wrong_percent)
    run_load(16, 1, pair)
    two = measure(16, bench.seconds, pair, bench.monitor,
                  CpuMeter({"ssobridge": bridge_pids(service) + bridge_pids(second),
                            "slapd": [slapd_pid(bench.slapd)]}))
    second.stop()
    table["16_clients_2_processes"] = {
        "ssobridge": two, "ratio": round(two["per_second"] / table["16_clients"]["raw_ldap3"]["per_second"], 3)}
    return {"raw_ldap3_request": {"filter": search_filter.replace(bench.logins[0], "<login>"),
                                  "attributes": attributes, "bind_controls": ["ppolicy request"]},
            "authenticate": table, "workers": len(worker_pids(service))}


def sign_in_everyone(url: str, logins: list[str], clients: int = 8) -> None:
    """One good login for every bench user (8 at once), outside any measured window: it writes each one's
    known-password verifier into the shared data_dir (an scrypt, ~50 ms; a running service has them)."""
    errors: list[BaseException] = []

    def sign_in(index: int) -> None:
        client = Client(url)
        try:
            for login in logins[index::clients]:
                data = client.authenticate(login)
                assert b"Authentication=OK" in data, (login, data[:300])
        except BaseException as e:
            errors.append(e)
        finally:
            client.close()

    threads = [threading.Thread(target=sign_in, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"signing everyone in: {errors[0]!r}") from errors[0]


def operations_per_authenticate(bench: Bench, url: str, calls: int = 200) -> dict:
    """One client, a warm pool: slapd's counters before and after `calls` Authenticate calls."""
    monitor, logins = bench.monitor, bench.logins
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


# --- first URL dead -----------------------------------------------------------------------------------

def first_url_dead(bench: Bench, calls: int = 100) -> dict:
    """No dead URL (for comparison), a refused port, and a black hole (accepts TCP, never answers) before
    the live slapd."""
    dead, hole = DeadPort(), BlackHole()
    try:
        return {"none (all URLs alive)": fresh_bridge_after(bench, None, "alive", calls),
                "refused": fresh_bridge_after(bench, f"ldaps://{dead.host}:{dead.port}", "dead", calls),
                "black_hole": fresh_bridge_after(bench, f"ldaps://{hole.host}:{hole.port}", "hole", calls)}
    finally:
        dead.close()
        hole.close()


def fresh_bridge_after(bench: Bench, first_url: str | None, name: str, calls: int) -> dict:
    """A fresh ssobridge whose first URL is `first_url` (None: only the live server, for comparison):
    the first call (cold pools; pays the dead server once), then `calls` more; then, on another fresh
    ssobridge, 16 clients' first calls at the same moment."""
    logins = bench.logins
    service = bench.start_bridge(f"{name}/sequential", first_url)
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
    service = bench.start_bridge(f"{name}/burst", first_url)
    try:
        burst = first_calls_at_once(service.url, logins, 16)
        burst_failures = service.log().count("event=directory_server_down")
    finally:
        service.stop()
    return {"first_call_ms": round(first_ms, 1), "later": {"calls": calls, **latency_summary(later)},
            "dead_server_tried": failures_logged,
            "burst_16_first_calls": {**burst, "dead_server_tried": burst_failures}}


def first_calls_at_once(url: str, logins: list[str], clients: int) -> dict:
    """`clients` connections opened first, then one Authenticate on each, released at the same moment."""
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


# --- group rules, user cards, events ------------------------------------------------------------------

def group_rules(bench: Bench) -> dict | None:
    """GetCustomFieldOptions and StartTicket under docs/examples/group-rules.toml's group rules (None without them)."""
    policy = example_policy()
    if policy is None:
        return None
    service = bench.start_bridge("policy", tables=policy)
    try:
        return policy_latency(service.url, bench.logins)
    finally:
        service.stop()


def policy_latency(url: str, logins: list[str]) -> dict:
    """Each operation for 50 users not seen before (cold caches), then 200 times for one of them (warm)."""
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
    """GetUserDetails for 50 users not seen before (cold), then 300 calls over the same 50 (cached cards)."""
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


def user_info_and_events(bench: Bench) -> dict:
    """GetUserDetails with cold and warm card caches, then NotifyEventFired at 1 and 8 clients."""
    service = bench.start_bridge("info", tables=USER_INFO_AND_EVENTS)
    try:
        details = user_details_latency(service.url, bench.logins)
        events = {f"{threads}_clients": run_load(threads, bench.seconds, NotifyEvent(service.url))
                  for threads in (1, 8)}
        return {"user_details": details, "notify_event_fired": events}
    finally:
        service.stop()


# --- profile ------------------------------------------------------------------------------------------

def profile(bench: Bench, service: Service, output: Path) -> dict:
    """py-spy on `service` under 1 and 16 clients calling Authenticate; raw stacks into `output`."""
    output.mkdir(parents=True, exist_ok=True)
    soap = SoapAuthenticate([service.url], bench.logins, bench.wrong_percent)
    return {f"{threads}_clients": profile_server(service.process.pid, threads, max(bench.seconds, 5) + 1, soap,
                                                 output / f"profile-{threads}-clients.txt")
            for threads in CLIENT_COUNTS}


def profile_server(pid: int, threads: int, seconds: float, work, output: Path) -> dict:
    """py-spy on ssobridge (the serve process and, with --subprocesses, its granian workers) while `threads`
    clients call Authenticate. --gil: only the thread holding the GIL is sampled, so the shares are of the
    Python CPU time of the processes (threads waiting on a socket or on the GIL are not counted). The raw stacks go to `output`, a summary into the results."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        return {"error": "py-spy is not installed (pip install py-spy)"}
    recorder = subprocess.Popen([py_spy, "record", "--pid", str(pid), "--subprocesses", "--duration", str(int(seconds)),
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
    ("request thread: the whole WSGI call (wire/rsgi.py)", ("_call_wsgi@ssobridge/wire/rsgi.py",)),
    ("ssobridge Endpoint (the WSGI app: guards + spyne)", ("Endpoint.__call__@ssobridge/wire/http.py",)),
    ("spyne: parse the request (lxml, deserialize)", ("ServerBase.generate_contexts@spyne/server/_base.py",
                                                      "ServerBase.get_in_object@spyne/server/_base.py")),
    ("spyne: serialize the response", ("ServerBase.get_out_string_pull@spyne/server/_base.py",)),
    ("spyne: MethodContext.close (gc.collect() once a second)", ("MethodContext.close@spyne/context.py",)),
    ("LoginProvider.authenticate (all directory work)", ("LoginProvider.authenticate@ssobridge/providers/login.py",)),
    ("Directory.find_user (the search)", ("Directory.find_user@ssobridge/directory/directory.py",)),
    ("Directory.verify_password (the bind)", ("Directory.verify_password@ssobridge/directory/directory.py",)),
    ("ldap3 + pyasn1 (any frame)", ("@ldap3/", "@pyasn1/")),
    ("logging (any frame)", ("@logging/",)),
    ("granian event loop (RSGI: reading bodies, handing over)", ("RSGIEndpoint.__rsgi__@ssobridge/wire/rsgi.py",)),
)

# Where a sample's innermost frame is, by file path fragment; the first match wins.
_AREAS = (("ssl", "ssl.py"), ("socket", "socket.py"), ("ldap3", "ldap3/"), ("pyasn1", "pyasn1/"),
          ("spyne", "spyne/"), ("lxml", "lxml"), ("granian", "granian/"), ("asyncio", "asyncio/"), ("logging", "logging/"),
          ("threading, queue", "threading.py"), ("threading, queue", "queue.py"), ("ssobridge", "ssobridge/"))


def _matches(spec: str, function: str, file: str) -> bool:
    name, _, fragment = spec.partition("@")
    return fragment in file and (not name or function == name or function.endswith("." + name))


_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")  # one frame of py-spy's raw format


def summarize_profile(path: Path) -> dict:
    """Shares of the samples in py-spy's raw stacks: by stage (inclusive), by area and function (self)."""
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
