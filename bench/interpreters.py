"""Authenticate on several Pythons side by side, in one run (issue 17): one `ssobridge serve` per
interpreter, on the same slapd, the same bench users, the same config and the same (default) worker count,
measured at 1 and 16 clients in alternating rounds next to the raw ldap3 ceiling of the same rounds.

A shared machine drifts (other work starts, the CPU's clock changes), so the measurements interleave:
each round runs the raw loop and every interpreter once, and every other round in the reverse order
(raw, A, B; then B, A, raw), so that no interpreter always comes first or last. The figures are the medians
over the rounds (one slow round, when another job took the cores, does not move them much); each round's
calls/s are kept, to show the noise.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass

from bench.bridge import ROOT, ldap_settings, lockout_shield
from bench.load import CpuMeter, RawLdap, SoapAuthenticate, bridge_pids, measure, run_load, slapd_pid, worker_pids
from bench.scenarios import CLIENT_COUNTS, sign_in_everyone

RAW = "raw ldap3"  # the ceiling's place in a round's order
# The installed versions worth knowing when two interpreters differ (the SOAP, HTTP, LDAP and TLS layers).
PACKAGES = ("granian", "uvloop", "spyne", "lxml", "ldap3", "cryptography", "legacy-cgi")
_PROBE = f"""
import importlib.metadata as metadata, json, platform, ssobridge
def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
print(json.dumps({{"version": platform.python_version(), "implementation": platform.python_implementation(),
                  "ssobridge": ssobridge.__file__, "packages": {{n: version(n) for n in {PACKAGES!r}}}}}))
"""


@dataclass(frozen=True)
class Interpreter:
    path: str  # absolute, not resolved: a venv's python is a symlink, and resolving it would leave the venv
    version: str
    implementation: str
    packages: dict

    @property
    def label(self) -> str:
        return f"{self.implementation} {self.version}"

    @property
    def version_key(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.version.split(".")[:3] if part.isdigit())


def probe(path: str) -> Interpreter:
    """What `path` is, and that it runs this checkout's ssobridge (else the comparison would compare code)."""
    found = shutil.which(path)
    if found is None:
        raise SystemExit(f"bench: --pythons {path}: no such interpreter")
    found = os.path.abspath(found)
    # -I: the current directory is not on sys.path, so a checkout it happens to be in cannot stand in for
    # the ssobridge that interpreter has installed (and that `-m ssobridge serve` will run).
    done = subprocess.run([found, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench: {path} cannot import ssobridge (run `{path} -m pip install -e '.[test]'` "
                         f"in this checkout):\n{done.stderr.strip()[-1000:]}")
    facts = json.loads(done.stdout)
    if not os.path.realpath(facts["ssobridge"]).startswith(str(ROOT / "ssobridge") + os.sep):
        raise SystemExit(f"bench: {path} runs ssobridge from {facts['ssobridge']}, not from this checkout "
                         f"({ROOT}); install it there with `{path} -m pip install -e '.[test]'`")
    return Interpreter(found, facts["version"], facts["implementation"], facts["packages"])


def round_orders(count: int, rounds: int) -> list[list]:
    """Round r runs the raw loop and interpreters 0..count-1 in this order, reversed on every other round."""
    forward = [RAW, *range(count)]
    return [forward if r % 2 == 0 else forward[::-1] for r in range(rounds)]


def probe_all(paths: list[str]) -> list[Interpreter]:
    """Every interpreter of --pythons, the oldest first (the others' ratios are to it); equal versions keep
    their order. Run before slapd starts, so that a wrong path fails at once."""
    return sorted((probe(path) for path in paths), key=lambda interpreter: interpreter.version_key)


def compare(bench, interpreters: list[Interpreter], rounds: int) -> dict:
    """Authenticate at 1 and 16 clients on an ssobridge run by each of `interpreters` (probe_all), and the raw
    ldap3 ceiling, in `rounds` alternating rounds."""
    services = []
    try:
        for index, interpreter in enumerate(interpreters):
            services.append(bench.start_bridge(f"python-{index}-{interpreter.version}", python=interpreter.path))
        return _measure(bench, interpreters, services, rounds)
    finally:
        for service in services:
            service.stop()


def _measure(bench, interpreters: list[Interpreter], services: list, rounds: int) -> dict:
    search_filter, attributes = ldap_settings(services[0], bench.logins[0])
    raw = RawLdap(bench.directory, bench.logins, search_filter, attributes, bench.wrong_percent)
    loads = [SoapAuthenticate([service.url], bench.logins, bench.wrong_percent) for service in services]
    sign_in_everyone(services[0].url, bench.logins)  # the shield's verifiers, in the data_dir they all share
    for load in loads:
        run_load(16, 1, load)  # warm-up: pools filled to 16, code paths hot, every worker started
    run_load(4, 0.5, raw)
    slapd = [slapd_pid(bench.slapd)]
    meters = {RAW: CpuMeter({"slapd": slapd}),
              **{index: CpuMeter({"ssobridge": bridge_pids(service), "slapd": slapd})
                 for index, service in enumerate(services)}}
    bench.monitor.calibrate()
    works = {RAW: raw, **dict(enumerate(loads))}
    measured: dict = {key: [] for key in works}
    orders = round_orders(len(interpreters), rounds)
    for number, order in enumerate(orders, 1):
        for key in order:
            measured[key].append({f"{threads}_clients": measure(threads, bench.seconds, works[key], bench.monitor,
                                                                meters[key])
                                  for threads in CLIENT_COUNTS})
        print(f"bench: Python comparison, round {number} of {rounds}: " + ", ".join(
            f"{RAW if key == RAW else interpreters[key].version} "
            f"{measured[key][-1]['16_clients']['per_second']}/s" for key in order) + " at 16 clients",
            file=sys.stderr)
    workers = [len(worker_pids(service)) for service in services]
    return {**summarize(interpreters, workers, orders, measured), "seconds_per_load": bench.seconds,
            "lockout_shield": lockout_shield(services[0])}


def summarize(interpreters: list[Interpreter], workers: list[int], orders: list[list], measured: dict) -> dict:
    """The comparison from the rounds' measurements (`measured`: RAW and each interpreter's index -> one
    {"1_clients": measure(...), "16_clients": ...} per round): per interpreter the medians, their ratios to
    the first interpreter's, and calls/s over the ceiling's."""
    ceiling = _medians(measured[RAW], "bench")
    rows = [{**asdict(interpreter), "label": label, "workers": count, **_medians(measured[index], "ssobridge"),
             "rounds": measured[index]}
            for index, (interpreter, count, label) in enumerate(zip(interpreters, workers, _labels(interpreters)))]
    for row in rows:
        for clients in _clients():
            mine, first = row[clients], rows[0][clients]
            mine["to_first"] = {name: _ratio(mine[name], first[name]) for name in _FIGURES}
            mine["to_ceiling"] = _ratio(mine["per_second"], ceiling[clients]["per_second"])
    return {"rounds": len(orders),
            "order": [[RAW if key == RAW else rows[key]["label"] for key in order] for order in orders],
            "ceiling": {"python": f"{platform.python_implementation()} {platform.python_version()}",
                        "where": "the bench process", **ceiling, "rounds": measured[RAW]},
            "interpreters": rows}


def _labels(interpreters: list[Interpreter]) -> list[str]:
    """"CPython 3.13.0"; numbered when a version comes twice ("CPython 3.11.7 #2": one interpreter against
    itself shows the noise). The path is in the results beside it."""
    labels = [interpreter.label for interpreter in interpreters]
    return [f"{label} #{labels[:index + 1].count(label)}" if labels.count(label) > 1 else label
            for index, label in enumerate(labels)]


# The figures taken over the rounds, and compared (to the first interpreter; calls/s also to the ceiling).
_FIGURES = ("per_second", "p50_ms", "p99_ms", "cpu_ms_per_call")


def _clients() -> list[str]:
    return [f"{threads}_clients" for threads in CLIENT_COUNTS]


def _medians(runs: list[dict], process: str) -> dict:
    """Per client count: the median over rounds of calls/s, p50, p99 and `process`'s CPU ms per call, with
    each round's calls/s."""
    table = {}
    for clients in _clients():
        figures = [run[clients] for run in runs]
        cpu = [f["cpu_per_call"].get(f"{process}_ms") for f in figures]
        table[clients] = {"per_second": round(statistics.median(f["per_second"] for f in figures), 1),
                          "p50_ms": round(statistics.median(f["p50_ms"] for f in figures), 2),
                          "p99_ms": round(statistics.median(f["p99_ms"] for f in figures), 2),
                          "cpu_ms_per_call": None if None in cpu else round(statistics.median(cpu), 3),
                          "per_second_by_round": [f["per_second"] for f in figures]}
    return table


def _ratio(value: float | None, base: float | None) -> float | None:
    return None if value is None or not base else round(value / base, 3)
