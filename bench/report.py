"""The results: one dict, written as results/latest.json (everything) and results/latest.md (the tables)."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

from bench.load import USERS


def new_results(seconds: float, wrong_percent: float) -> dict:
    """The run's settings and the machine it runs on; the scenarios add their figures."""
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform(), "cpu_model": cpu_model()},
            "seconds_per_scenario": seconds, "wrong_password_percent": wrong_percent,
            "directory": f"OpenLDAP slapd (ppolicy, memberof overlays), ldaps:// on 127.0.0.1, {USERS} bench users"}


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None



def write(results: dict, output: Path) -> str:
    """latest.json and latest.md in `output`; returns the markdown."""
    output.mkdir(parents=True, exist_ok=True)
    (output / "latest.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    markdown = render(results)
    (output / "latest.md").write_text(markdown, encoding="utf-8")
    return markdown


def render(r: dict) -> str:
    """The markdown: the run's settings, then one section per scenario that ran."""
    machine = r["machine"]
    lines = [f"# ssobridge bench, {r['date']}", "",
             f"{machine['cpus']} CPUs ({machine.get('cpu_model')}), Python {machine['python']}, "
             f"{machine['platform']}; {r['seconds_per_scenario']} s per load scenario; "
             f"{r['wrong_password_percent']} % wrong passwords; {r['directory']}. "
             f"Whole run {r.get('total_seconds')} s."]
    lines += _authenticate(r["authenticate"], r["ldap_operations_per_authenticate"])
    lines += _first_url_dead(r["first_url_dead"])
    if "profile" in r:
        lines += _profile(r["profile"])
    if "policy" in r:
        lines += _group_rules(r["policy"])
    lines += _user_details(r["user_details"])
    lines += _notify_event_fired(r["notify_event_fired"])
    return "\n".join(lines) + "\n"


def _authenticate(table: dict, ops: dict) -> list[str]:
    lines = ["", "## Authenticate", "",
             "Client, ssobridge and slapd share the machine's cores. CPU ms per call: ssobridge / slapd / "
             "bench process (the client, or for raw ldap3 the loop itself).", "",
             "| clients | what | calls/s | p50 ms | p95 ms | p99 ms | CPU ms/call | LDAP ops/call (search, bind, "
             "new conn) | ratio |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key, row in table.items():
        pairs = [("ssobridge" + (", 2 processes" if "processes" in key else ""), row["ssobridge"])]
        if "raw_ldap3" in row:
            pairs.append(("raw ldap3", row["raw_ldap3"]))
        for label, m in pairs:
            c, per_call = m.get("cpu_per_call") or {}, m.get("ldap_per_call")
            cpu = " / ".join(str(c.get(f"{n}_ms", "-")) for n in ("ssobridge", "slapd", "bench"))
            ops_text = f"{per_call['searches']}, {per_call['binds']}, {per_call['connections']}" if per_call else "n/a"
            ratio = row["ratio"] if label.startswith("ssobridge") else ""
            lines.append(f"| {m['threads']} | {label} | {m['per_second']} | {m['p50_ms']} | {m['p95_ms']} | "
                         f"{m['p99_ms']} | {cpu} | {ops_text} | {ratio} |")
    if "searches" in ops:
        lines += ["", f"LDAP operations per Authenticate on a warm pool (slapd cn=Monitor, {ops['calls']} calls, "
                      f"one client): {ops['searches']} searches, {ops['binds']} binds, {ops['connections']} new "
                      "connections."]
    return lines


def _first_url_dead(cases: dict) -> list[str]:
    lines = ["", "## First URL dead (connect_timeout 1 s, retry_down_after 30 s)", "",
             "A fresh ssobridge each time: the first call also opens the two pools' first connections "
             "(TLS + service bind). Burst: 16 clients' first calls at the same moment, on another fresh "
             "ssobridge.", "",
             "| first URL | first call ms | next 100 calls p50 / p95 ms | dead server tried | burst of 16: "
             "p50 / max ms | dead server tried |", "|---|---|---|---|---|---|"]
    for name, row in cases.items():
        later, burst = row["later"], row["burst_16_first_calls"]
        lines.append(f"| {name} | {row['first_call_ms']} | {later['p50_ms']} / {later['p95_ms']} | "
                     f"{row['dead_server_tried']} | {burst['p50_ms']} / {burst['max_ms']} | "
                     f"{burst['dead_server_tried']} |")
    return lines


def _profile(runs: dict) -> list[str]:
    lines = ["", "## Where ssobridge spends its Python CPU time (py-spy --gil, Authenticate load)", ""]
    profiles = {name: p for name, p in runs.items() if "error" not in p}
    lines += [p["error"] for p in runs.values() if "error" in p]
    if profiles:
        names = list(profiles)
        lines += ["Inclusive share of the samples (GIL held) whose stack is in ...", "",
                  "| where | " + " | ".join(f"{n.replace('_', ' ')} %" for n in names) + " |",
                  "|---|" + "---|" * len(names)]
        for stage in profiles[names[0]]["inclusive_percent"]:
            lines.append(f"| {stage} | " + " | ".join(str(profiles[n]["inclusive_percent"][stage])
                                                      for n in names) + " |")
        lines += ["", "Raw stacks: " + ", ".join(p["raw_stacks"] for p in profiles.values()) + "."]
    return lines


def _group_rules(operations: dict) -> list[str]:
    lines = ["", "## Group rules (config.example.toml policy)", "",
             "| operation | cold cache p50 ms | warm cache p50 ms | warm p95 ms |", "|---|---|---|---|"]
    for operation, row in operations.items():
        lines.append(f"| {operation} | {row['cold_p50_ms']} | {row['warm_p50_ms']} | {row['warm_p95_ms']} |")
    return lines


def _user_details(info: dict) -> list[str]:
    return ["", "## GetUserDetails (default card)", "", "| cold cache p50 ms | warm cache p50 ms | warm p95 ms |",
            "|---|---|---|", f"| {info['cold_p50_ms']} | {info['warm_p50_ms']} | {info['warm_p95_ms']} |"]


def _notify_event_fired(loads: dict) -> list[str]:
    lines = ["", "## NotifyEventFired (stored in SQLite WAL, synchronous=FULL, before the answer; jsonl sink)", "",
             "| clients | events/s | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|"]
    for row in loads.values():
        lines.append(f"| {row['threads']} | {row['per_second']} | {row['p50_ms']} | {row['p95_ms']} | "
                     f"{row['p99_ms']} |")
    return lines
