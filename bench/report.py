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
    python_note = (" (the bench process, and ssobridge in every section but \"Authenticate on each Python\")"
                   if "python_comparison" in r else "")
    lines = [f"# ssobridge bench, {r['date']}", "",
             f"{machine['cpus']} CPUs ({machine.get('cpu_model')}), Python {machine['python']}{python_note}, "
             f"{machine['platform']}; {r['seconds_per_scenario']} s per load scenario; "
             f"{r['wrong_password_percent']} % wrong passwords; {r['directory']}. "
             f"ssobridge as `ssobridge serve` runs out of the box: {r.get('workers')} granian worker process(es), "
             f"lockout shield {r.get('lockout_shield')}. Whole run {r.get('total_seconds')} s.",
             "", f"Command: `{r.get('command')}`"]
    lines += _targets(r.get("targets", []))
    if "authenticate" in r:
        lines += _authenticate(r["authenticate"], r["ldap_operations_per_authenticate"])
    if "python_comparison" in r:
        lines += _python_comparison(r["python_comparison"])
    if "first_url_dead" in r:
        lines += _first_url_dead(r["first_url_dead"])
    if "profile" in r:
        lines += _profile(r["profile"])
    if "policy" in r:
        lines += _group_rules(r["policy"])
    if "user_details" in r:
        lines += _user_details(r["user_details"])
        lines += _notify_event_fired(r["notify_event_fired"])
    if "all_servers_down" in r:
        lines += _all_servers_down(r["all_servers_down"])
    if "server_comes_back" in r:
        lines += _server_comes_back(r["server_comes_back"])
    if "cached_user_details" in r:
        lines += _cached_user_details(r["cached_user_details"])
    if "mixed_load_memory" in r:
        lines += _mixed_load_memory(r["mixed_load_memory"])
    return "\n".join(lines) + "\n"


def _targets(rows: list[dict]) -> list[str]:
    passed = sum(row["verdict"] == "PASS" for row in rows)
    lines = ["", f"## Targets (issues 10 and 17): {passed} of {len(rows)} pass", "",
             "| target | measured | verdict | command (section below) |", "|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['target']} | {row['measured']} | **{row['verdict']}** | `{row['command']}` |")
    return lines


def _all_servers_down(cases: dict) -> list[str]:
    lines = ["", "## All servers down (the directory's only URL is dead; connect_timeout 1 s)", "",
             "A fresh ssobridge each time, one client: the first call (the failed probe), then one call after "
             "the other; every answer \"directory unavailable\". \"dead server tried\": "
             "`event=directory_server_down` log lines.", "",
             "| only URL | first call ms | calls after it | p50 / p95 / p99 / max ms | dead server tried |",
             "|---|---|---|---|---|"]
    for name, row in cases.items():
        lines.append(f"| {name} | {row['first_call_ms']} | {row['calls']} of {row['calls_planned']} | "
                     f"{row['p50_ms']} / {row['p95_ms']} / {row['p99_ms']} / {row['max_ms']} | "
                     f"{row['dead_server_tried']} |")
    return lines


def _server_comes_back(row: dict) -> list[str]:
    return ["", f"## A server that comes back (retry_down_after {row['retry_down_after_s']} s)", "",
            "The only URL is a TCP proxy in front of slapd. Logins work; the proxy refuses (its open connections "
            f"reset): \"directory unavailable\" after {row['calls_until_unavailable']} call(s), "
            f"{row['unavailable_after_ms']} ms. {row['outage_s']} s later the proxy accepts again; one "
            f"Authenticate every {row['poll_every_s']} s: the first OK {row['first_ok_after_back_s']} s after "
            f"the server came back ({row['first_ok_after_down_s']} s after it was found down; "
            f"{row['calls_unavailable_after_back']} calls answered \"unavailable\" in between)."]


def _cached_user_details(m: dict) -> list[str]:
    c = m.get("cpu_per_call") or {}
    ops = "n/a" if m["ldap_operations"] is None else m["ldap_operations"]
    return ["", f"## Cached GetUserDetails ({m['threads']} clients, cards in the shared card store)", "",
            "| calls/s | p50 ms | p95 ms | p99 ms | ssobridge CPU ms/call | LDAP operations (slapd, all kinds) |",
            "|---|---|---|---|---|---|",
            f"| {m['per_second']} | {m['p50_ms']} | {m['p95_ms']} | {m['p99_ms']} | {c.get('ssobridge_ms', '-')} | "
            f"{ops} in {m['calls']} calls |"]


def _mixed_load_memory(m: dict) -> list[str]:
    load = m["load"]
    mix = ", ".join(f"{kind} {count}" for kind, count in sorted(load["outcomes"].items()))
    lines = ["", f"## Memory after {load['seconds']} s of mixed load ({load['threads']} clients)", "",
             f"{load['calls']} calls ({load['per_second']}/s; {mix}), on the example group rules, user cards "
             "and events. Resident memory from /proc/PID/status (MB = 10^6 bytes).", "",
             "| process | RSS after warm-up MB | RSS at the end MB | peak RSS MB |", "|---|---|---|---|"]
    for worker in m["workers"]:
        lines.append(f"| worker {worker['pid']} | {worker['rss_mb_after_warm_up']} | {worker['rss_mb']} | "
                     f"{worker['peak_rss_mb']} |")
    serve = m["serve_process"]
    lines.append(f"| `ssobridge serve` (parent) | | {serve['rss_mb']} | {serve['peak_rss_mb']} |")
    return lines


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


def _python_comparison(c: dict) -> list[str]:
    rows, ceiling, first = c["interpreters"], c["ceiling"], c["interpreters"][0]["label"]
    order = "; ".join(", ".join(o) for o in c["order"])
    lines = ["", "## Authenticate on each Python", "",
             f"One `ssobridge serve` per interpreter, all running for the whole comparison: the same slapd, bench "
             f"users, config and default worker count. Rounds: {c['rounds']}, of {c['seconds_per_load']} s per load, "
             f"in this order (every other round reversed): {order}. Figures: the median over the rounds (calls/s of "
             f"each round in brackets). CPU ms/call: all of that ssobridge's processes (for raw ldap3: the loop, "
             f"in the bench process, {ceiling['python']}). \"to {first}\": calls/s, p50, p99, CPU, each divided by "
             f"{first}'s (calls/s above 1 is faster; the others above 1 are slower). \"to raw\": calls/s over the "
             "raw ldap3 ceiling's, measured in the same rounds.", "",
             f"| clients | Python | workers | calls/s | p50 ms | p99 ms | CPU ms/call | to {first}: calls/s, p50, "
             "p99, CPU | to raw |", "|---|---|---|---|---|---|---|---|---|"]
    for clients in (key for key in ceiling if key.endswith("_clients")):
        threads = clients.split("_")[0]
        for row in rows:
            m = row[clients]
            ratios = "baseline" if row is rows[0] else " / ".join(
                str(m["to_first"][name]) for name in ("per_second", "p50_ms", "p99_ms", "cpu_ms_per_call"))
            lines.append(f"| {threads} | {row['label']} | {row['workers']} | {_per_second(m)} | {m['p50_ms']} | "
                         f"{m['p99_ms']} | {m['cpu_ms_per_call']} | {ratios} | {m['to_ceiling']} |")
        m = ceiling[clients]
        lines.append(f"| {threads} | raw ldap3 ({ceiling['python']}) | | {_per_second(m)} | {m['p50_ms']} | "
                     f"{m['p99_ms']} | {m['cpu_ms_per_call']} | | |")
    return lines


def _per_second(m: dict) -> str:
    return f"{m['per_second']} ({', '.join(str(x) for x in m['per_second_by_round'])})"


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
    lines = ["", "## Group rules (docs/examples/group-rules.toml policy)", "",
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
