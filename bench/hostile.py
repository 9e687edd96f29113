"""Hostile HTTP against a real ssobridge on a private slapd: slow clients, and 100,000 hostile requests.

    .venv/bin/python bench/hostile.py [--count 100000] [--seed 1] [--clients 8] [--output bench/results]

1. Slow clients at the default request_timeout (30 s): 300 half-open connections, 100 that send their
   headers and no body, 50 that send one byte every 10 s; meanwhile good logins (their latency), and when
   the server closed each kind of slow connection (seconds after it began).
2. `--count` hostile requests from the seeded generator (tests/support/hostile.py), `--clients` at once,
   each on its own connection, with known secret values in the bodies: answers that are not 2xx or 4xx (a 5xx
   is never right for a client's fault, SOAP fault or not) and the 5xx among them, hangs (no answer within
   60 s), tracebacks and secrets in the service's log, and the RSS of the worker processes (the larger of
   the two) before (after 200 good logins), at its peak, and 10 s after the last request.
Writes bench/results/hostile.md.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: bench.*, tests.*

from tests.support import hostile  # noqa: E402
from tests.support.pki import create_test_pki  # noqa: E402
from tests.support.services import (ATTRIBUTES, AUTH, WEB_SERVICE_PASSWORD, authenticate,  # noqa: E402
                                    openldap_config, start_service)
from tests.support.slapd import start_openldap  # noqa: E402

SECRETS = ("Bench-Secret-Passw0rd-31337", "Zweites-Geheimnis-42")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


WORKERS = 2  # as many as the test suite's multi-worker tests: requests are spread over both


def worker_pids(parent: int) -> list[int]:
    return [int(pid) for pid in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]


def worker_rss_mb(parent: int) -> float:
    return max(rss_mb(pid) for pid in worker_pids(parent))


def timed_login(service, user) -> float:
    started = time.monotonic()
    result = authenticate(service, user.login, user.password)
    assert "Authentication=OK" in result["OutputVariables"], result
    return time.monotonic() - started


def slow_clients(service, user) -> dict:
    host, port = service.url.split("//")[1].split("/")[0].split(":")
    address = (host, int(port))
    began = time.monotonic()
    closed: dict[str, list[float]] = {"half-open": [], "body-starved": [], "one byte every 10 s": []}

    def watch(kind: str, connection: socket.socket, opened: float, trickle: bytes = b"") -> None:
        connection.settimeout(1)
        position = 0
        while time.monotonic() - opened < 90:
            if trickle and time.monotonic() - opened >= position * 10:
                try:
                    connection.send(trickle[position:position + 1])
                except OSError:
                    break
                position += 1
            try:
                if not connection.recv(65536):
                    break
            except socket.timeout:
                continue
            except OSError:
                break
        closed[kind].append(time.monotonic() - opened)
        connection.close()

    threads = []
    request = hostile.head(length=3000) + b"\r\n\r\n"
    for kind, count in (("half-open", 300), ("body-starved", 100), ("one byte every 10 s", 50)):
        for _ in range(count):
            connection = socket.create_connection(address)
            opened = time.monotonic()
            if kind == "body-starved":
                connection.sendall(request + b"<soap")
            thread = threading.Thread(target=watch, args=(kind, connection, opened,
                                                          request if kind.startswith("one") else b""), daemon=True)
            thread.start()
            threads.append(thread)
    latencies = []
    while time.monotonic() - began < 8:
        latencies.append(timed_login(service, user))
        time.sleep(0.2)
    for thread in threads:
        thread.join()
    return {"logins": len(latencies), "login_max_s": max(latencies), "login_median_s": sorted(latencies)[len(latencies) // 2],
            "closed_after_s": {kind: (min(v), max(v)) for kind, v in closed.items()}}


def hostile_run(service, count: int, seed: int, clients: int, kinds: list[str]) -> dict:
    parent = service.process.pid
    host, port = service.url.split("//")[1].split("/")[0].split(":")
    corpus = [r for r in hostile.requests(seed, count, AUTH, SECRETS) if not kinds or r.kind in kinds]
    before = worker_rss_mb(parent)
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.wait(0.5):
            peak.append(worker_rss_mb(parent))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(lambda request: hostile.send(host, int(port), request, timeout=60), corpus,
                                chunksize=64))
    seconds = time.monotonic() - started
    done.set()
    time.sleep(10)
    after = worker_rss_mb(parent)
    log = service.log()
    statuses: dict[str, int] = {}
    for status, _ in answers:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "requests": len(corpus), "seconds": round(seconds, 1), "statuses": dict(sorted(statuses.items())),
        "unacceptable": sum(1 for status, answer in answers if status is not None
                            and not hostile.acceptable(status, answer)),
        "server_errors": sum(1 for status, _ in answers if status is not None and status >= 500),
        "hangs": sum(1 for status, _ in answers if status is None),
        "tracebacks": log.count("Traceback"),
        "secrets_in_log": sum(log.count(s) for s in (*SECRETS, WEB_SERVICE_PASSWORD)),
        "rss_mb": (round(before, 1), round(max(peak), 1), round(after, 1)),
        "kinds": len({r.kind for r in corpus}),
    }


def write(results: dict, output: Path) -> Path:
    slow, run = results["slow"], results["hostile"]
    lines = [
        "# Hostile HTTP (bench/hostile.py)", "",
        f"ssobridge on slapd, {WORKERS} granian workers, [server] threads 16, request_timeout 30 s; "
        f"{results['when']}.", "",
        "## Slow clients: 300 half-open, 100 body-starved, 50 one byte every 10 s", "",
        f"- good logins meanwhile: {slow['logins']}, median {slow['login_median_s'] * 1000:.0f} ms, "
        f"max {slow['login_max_s'] * 1000:.0f} ms",
    ]
    for kind, (low, high) in slow["closed_after_s"].items():
        lines.append(f"- {kind}: closed by the server {low:.1f}-{high:.1f} s after the connection opened")
    lines += [
        "", f"## {run['requests']:,} hostile requests (seed {results['seed']}, {results['clients']} clients, "
            f"{run['kinds']} kinds)", "",
        f"- {run['seconds']} s; answers by status: {run['statuses']}",
        f"- unacceptable answers (not 2xx/4xx): {run['unacceptable']}, of which 5xx: {run['server_errors']}",
        f"- hangs (no answer within 60 s): {run['hangs']}",
        f"- tracebacks in the log: {run['tracebacks']}",
        f"- secrets in the log: {run['secrets_in_log']}",
        f"- worker RSS (the larger worker): before {run['rss_mb'][0]} MB, peak {run['rss_mb'][1]} MB, 10 s after {run['rss_mb'][2]} MB",
        "",
    ]
    output.mkdir(parents=True, exist_ok=True)
    path = output / "hostile.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--kinds", nargs="*", default=[], help="only these kinds of the generator")
    parser.add_argument("--skip-slow", action="store_true", help="skip the slow-client part (~90 s)")
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parent / "results")
    arguments = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ssobridge-hostile-"))
    pki = create_test_pki(work / "pki")
    directory, slapd = start_openldap(work / "slapd", pki)
    service = None
    try:
        service = start_service(work / "service", openldap_config(directory) + ATTRIBUTES,
                                server=f"workers = {WORKERS}\n", log_level="INFO")
        user = directory.users["jdoe"]
        for _ in range(200):
            timed_login(service, user)
        results = {"seed": arguments.seed, "clients": arguments.clients, "when": time.strftime("%Y-%m-%d")}
        results["slow"] = {"logins": 0, "login_max_s": 0, "login_median_s": 0, "closed_after_s": {}} \
            if arguments.skip_slow else slow_clients(service, user)
        print(f"bench: slow clients: {results['slow']}", file=sys.stderr)
        results["hostile"] = hostile_run(service, arguments.count, arguments.seed, arguments.clients,
                                         arguments.kinds)
        print(f"bench: hostile: {results['hostile']}", file=sys.stderr)
    finally:
        if service is not None:
            service.stop()
        slapd.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(write(results, arguments.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
