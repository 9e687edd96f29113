"""Strict mode: a test that would be skipped fails instead, with the skip's reason.

The real servers (Samba AD, slapd, Mono, Chromium) are installed by tests/support/install-deps.sh; where
they are missing their tests skip, which is right on a developer's machine without root but would let a
broken install step pass CI as a row of skips. Strict when CI=true (as CI services set it) or
SSOBRIDGE_STRICT=1 (tests/run.sh sets it when it ran as root and so installed everything itself).
"""

from __future__ import annotations

import os

import pytest


def strict() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("SSOBRIDGE_STRICT") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if strict() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"skipped, which strict mode (CI=true or SSOBRIDGE_STRICT=1) does not allow: {reason}"
