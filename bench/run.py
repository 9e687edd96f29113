"""ssobridge benchmarks, in one run against a private OpenLDAP slapd (started here, loopback only).

    .venv/bin/python bench/run.py [--seconds 5] [--mixed-seconds 300] [--wrong-percent 0] [--no-profile] [--keep]
                                  [--output DIR] [--pythons PYTHON [PYTHON ...] [--rounds 2] [--pythons-only]]
                                  [--only TARGET]

First in the results: issue 10's targets, each with PASS or FAIL, its measured value and this command
(bench/targets.py). Measures, through a running `ssobridge serve` (a subprocess, INFO logging as in
production, with as many granian workers as it starts out of the box: the count is in the results) and
with the SOAP 1.1 requests SmarterTrack sends (keep-alive connections, one per client thread):
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
7. All servers down (the only URL refused; a black hole): 200 calls after the first failed probe.
8. A server that comes back (a proxy in front of slapd refuses, then accepts): time to the first OK login.
9. Cached GetUserDetails at 8 clients: calls/s and slapd's operation count (must be 0).
10. RSS of every worker after --mixed-seconds of mixed load (Authenticate, wrong passwords, group rules,
   GetUserDetails, NotifyEventFired).
11. With --pythons: Authenticate at 1 and 16 clients on an ssobridge run by each of those interpreters, side by
   side with the raw ldap3 ceiling, in alternating rounds (bench/interpreters.py); --pythons-only runs just that.
Writes bench/results/latest.json and latest.md.

The parts: bench/load.py (users, clients, load threads, counters, CPU and memory readings), bench/bridge.py
(the ssobridge configs, as data, and processes), bench/scenarios.py (each measurement), bench/targets.py (the
scenarios for issue 10's targets, and the verdicts), bench/interpreters.py (Authenticate on several Pythons),
bench/report.py (the results files).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: bench.*, tests.*

from bench import interpreters, report, scenarios, targets  # noqa: E402
from bench.bridge import ROOT, lockout_shield  # noqa: E402
from bench.load import Monitor, add_bench_users  # noqa: E402
from tests.support.pki import create_test_pki  # noqa: E402
from tests.support.slapd import start_openldap  # noqa: E402

SINGLE_TARGETS = {"all-servers-down": targets.all_servers_down, "server-comes-back": targets.server_comes_back,
                  "cached-user-details": targets.cached_user_details}


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5, help="duration of each load scenario (default 5)")
    parser.add_argument("--wrong-percent", type=float, default=0,
                        help="share of Authenticate calls with a wrong password, in %% (default 0)")
    parser.add_argument("--mixed-seconds", type=float, default=300,
                        help="duration of the mixed load before worker memory is read (default 300)")
    parser.add_argument("--no-profile", dest="profile", action="store_false",
                        help="skip the py-spy profile of ssobridge under 1 and 16 clients (~15 s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, configs)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results",
                        help="where latest.json and latest.md go (default bench/results)")
    parser.add_argument("--pythons", nargs="+", metavar="PYTHON",
                        help="also run Authenticate on an ssobridge started by each of these interpreters (each "
                             "with this checkout installed, e.g. .venv-3.11/bin/python .venv-3.13/bin/python), "
                             "side by side; ratios are to the oldest")
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternating rounds of the --pythons comparison (default 2: A B, then B A)")
    parser.add_argument("--pythons-only", action="store_true",
                        help="run only the --pythons comparison (about 1.5 minutes with 2 interpreters)")
    parser.add_argument("--only", choices=sorted(SINGLE_TARGETS),
                        help="run only this target's scenario and print its figures (JSON); no results written")
    arguments = parser.parse_args()
    if arguments.pythons_only and not arguments.pythons:
        parser.error("--pythons-only needs --pythons")
    if arguments.rounds < 1:
        parser.error("--rounds must be at least 1")
    return arguments


def command_line() -> str:
    """How this run was started, with the bench's interpreter as typed from the checkout (it runs the
    clients and the raw ldap3 ceiling)."""
    python = sys.executable
    if Path(python).is_relative_to(ROOT):
        python = os.path.relpath(python, ROOT)
    return " ".join([python, "bench/run.py", *sys.argv[1:]])


def main() -> int:
    arguments = parse_arguments()
    pythons = interpreters.probe_all(arguments.pythons) if arguments.pythons else []
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="ssobridge-bench-"))
    pki = create_test_pki(work / "pki")
    directory, slapd = start_openldap(work / "slapd", pki)
    monitor = bench = None
    results = report.new_results(arguments.seconds, arguments.wrong_percent)
    results["command"] = command_line()
    try:
        logins = add_bench_users(directory)
        monitor = Monitor(directory)
        bench = scenarios.Bench(directory, slapd, logins, monitor, work, arguments.seconds, arguments.wrong_percent)
        if arguments.only:
            print(json.dumps({arguments.only: SINGLE_TARGETS[arguments.only](bench)}, indent=2))
            return 0
        if not arguments.pythons_only:
            run_scenarios(bench, arguments, results)
        if pythons:
            comparison = interpreters.compare(bench, pythons, arguments.rounds)
            results["python_comparison"] = comparison
            results.setdefault("workers", comparison["interpreters"][0]["workers"])
            results.setdefault("lockout_shield", comparison["lockout_shield"])
    finally:
        if bench is not None:
            bench.stop_services()
        if monitor is not None:
            monitor.close()
        slapd.stop()
        if arguments.keep:
            print(f"bench: kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["total_seconds"] = round(time.monotonic() - began, 1)
    results["targets"] = targets.verdicts(results, results["command"])
    print(report.write(results, arguments.output))
    return 0


def run_scenarios(bench: scenarios.Bench, arguments: argparse.Namespace, results: dict) -> None:
    """Every scenario but the --pythons comparison, in order; each adds its part of `results`."""
    service = bench.start_bridge("service")
    results["lockout_shield"] = lockout_shield(service)
    results.update(scenarios.authenticate(bench, service))
    results["ldap_operations_per_authenticate"] = scenarios.operations_per_authenticate(bench, service.url)
    results["first_url_dead"] = scenarios.first_url_dead(bench)
    print("bench: first URL dead done", file=sys.stderr)
    if arguments.profile:
        results["profile"] = scenarios.profile(bench, service, arguments.output)
    service.stop()
    policy = scenarios.group_rules(bench)
    if policy is not None:
        results["policy"] = policy
    results.update(scenarios.user_info_and_events(bench))
    results["all_servers_down"] = targets.all_servers_down(bench)
    results["server_comes_back"] = targets.server_comes_back(bench)
    results["cached_user_details"] = targets.cached_user_details(bench)
    print("bench: outage and cached cards done", file=sys.stderr)
    results["mixed_load_memory"] = targets.mixed_load_memory(bench, arguments.mixed_seconds)


if __name__ == "__main__":
    sys.exit(main())
