"""The bench's comparison of Pythons (bench/interpreters.py, issue 17), its pure parts: the order of the rounds,
the medians and ratios taken from them, and the two verdicts. The measuring is the bench's own
(`bench/run.py --pythons ... --pythons-only`), not a test: no timed tests.
"""

from __future__ import annotations

import pytest

from bench.interpreters import RAW, Interpreter, round_orders, summarize
from bench.targets import verdicts

OLD = Interpreter("/venvs/3.11/bin/python", "3.11.7", "CPython", {})
NEW = Interpreter("/venvs/3.13/bin/python", "3.13.0", "CPython", {})


def test_every_other_round_runs_in_reverse_order():
    assert round_orders(2, 4) == [[RAW, 0, 1], [1, 0, RAW], [RAW, 0, 1], [1, 0, RAW]]
    assert round_orders(3, 1) == [[RAW, 0, 1, 2]]


def one_round(process: str, one_client: tuple, sixteen_clients: tuple) -> dict:
    """What measure() returns for 1 and 16 clients, the figures that matter here: calls/s, p50, p99, CPU."""
    def load(per_second, p50, p99, cpu):
        return {"per_second": per_second, "p50_ms": p50, "p99_ms": p99,
                "cpu_per_call": {f"{process}_ms": cpu, "slapd_ms": 0.35}}
    return {"1_clients": load(*one_client), "16_clients": load(*sixteen_clients)}


def three_rounds(new_per_second_at_16: float) -> dict:
    """A comparison of OLD and NEW in 3 rounds; OLD's second round was slowed by another job."""
    measured = {
        RAW: [one_round("bench", (1100, 0.88, 1.4, 0.64), (1000, 13.4, 35.0, 0.88)),
              one_round("bench", (1000, 0.95, 1.6, 0.66), (1250, 13.0, 30.0, 0.86)),
              one_round("bench", (1050, 0.90, 1.5, 0.65), (1200, 13.2, 33.0, 0.87))],
        0: [one_round("ssobridge", (540, 1.80, 2.6, 1.20), (1200, 12.8, 26.0, 1.05)),
            one_round("ssobridge", (300, 3.10, 9.0, 1.40), (600, 25.0, 90.0, 1.30)),
            one_round("ssobridge", (530, 1.85, 2.7, 1.25), (1100, 13.0, 27.0, 1.06))],
        1: [one_round("ssobridge", (500, 1.90, 2.8, 1.30), (new_per_second_at_16, 14.0, 28.0, 1.10)),
            one_round("ssobridge", (520, 1.88, 2.7, 1.28), (new_per_second_at_16 + 50, 13.5, 27.0, 1.08)),
            one_round("ssobridge", (510, 1.89, 2.9, 1.32), (new_per_second_at_16 - 50, 14.5, 29.0, 1.12))],
    }
    return summarize([OLD, NEW], [2, 2], round_orders(2, 3), measured)


def test_figures_are_medians_over_the_rounds_with_each_rounds_calls_per_second():
    comparison = three_rounds(1000)
    old, new = comparison["interpreters"]
    assert old["16_clients"] == {"per_second": 1100, "p50_ms": 13.0, "p99_ms": 27.0, "cpu_ms_per_call": 1.06,
                                 "per_second_by_round": [1200, 600, 1100],
                                 "to_first": {"per_second": 1.0, "p50_ms": 1.0, "p99_ms": 1.0, "cpu_ms_per_call": 1.0},
                                 "to_ceiling": 0.917}
    assert new["1_clients"] == {"per_second": 510, "p50_ms": 1.89, "p99_ms": 2.8, "cpu_ms_per_call": 1.3,
                                "per_second_by_round": [500, 520, 510],
                                "to_first": {"per_second": 0.962, "p50_ms": 1.022, "p99_ms": 1.037,
                                             "cpu_ms_per_call": 1.04},
                                "to_ceiling": 0.486}
    assert comparison["ceiling"]["16_clients"]["per_second"] == 1200
    assert comparison["ceiling"]["16_clients"]["cpu_ms_per_call"] == 0.87  # the loop's own CPU (bench process)
    assert (old["label"], old["workers"], new["label"], old["path"]) == (
        "CPython 3.11.7", 2, "CPython 3.13.0", "/venvs/3.11/bin/python")
    assert comparison["rounds"] == 3
    assert comparison["order"] == [["raw ldap3", "CPython 3.11.7", "CPython 3.13.0"],
                                   ["CPython 3.13.0", "CPython 3.11.7", "raw ldap3"],
                                   ["raw ldap3", "CPython 3.11.7", "CPython 3.13.0"]]


def test_one_version_twice_is_numbered():
    measured = {key: [one_round("bench" if key == RAW else "ssobridge", (500, 2, 3, 1), (1000, 13, 30, 1))]
                for key in (RAW, 0, 1, 2)}
    comparison = summarize([OLD, OLD, NEW], [2, 2, 2], round_orders(3, 1), measured)
    assert [row["label"] for row in comparison["interpreters"]] == ["CPython 3.11.7 #1", "CPython 3.11.7 #2",
                                                                    "CPython 3.13.0"]
    assert comparison["order"] == [["raw ldap3", "CPython 3.11.7 #1", "CPython 3.11.7 #2", "CPython 3.13.0"]]


@pytest.mark.parametrize("new_per_second, within, at_ceiling", [
    (990, "PASS", "FAIL"),   # exactly 10 % slower than the oldest (1100): still within
    (989, "FAIL", "FAIL"),
    (1100, "PASS", "FAIL"),  # as fast as the oldest, 0.917 x the ceiling (1200)
    (1200, "PASS", "PASS"),  # exactly at the ceiling
    (1300, "PASS", "PASS"),  # faster is within too
])
def test_issue_17_verdicts_at_16_clients(new_per_second, within, at_ceiling):
    rows = verdicts({"python_comparison": three_rounds(new_per_second)}, "bench/run.py --pythons A B")
    ratio_to_old, ratio_to_raw = round(new_per_second / 1100, 3), round(new_per_second / 1200, 3)
    assert rows == [
        {"target": "CPython 3.13.0 within 10 % of CPython 3.11.7 in calls/s at 16 clients",
         "measured": f"{ratio_to_old} ({new_per_second} / 1100 calls/s, median of 3 rounds)", "verdict": within,
         "command": "bench/run.py --pythons A B  (Authenticate on each Python)"},
        {"target": "CPython 3.13.0 >= 1.0x the raw ldap3 ceiling at 16 clients",
         "measured": f"{ratio_to_raw} ({new_per_second} / 1200 calls/s, median of 3 rounds)", "verdict": at_ceiling,
         "command": "bench/run.py --pythons A B  (Authenticate on each Python)"}]
