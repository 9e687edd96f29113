"""Strict mode (tests/support/strict.py): in CI a missing server fails its tests instead of skipping them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NEEDS_A_SERVER = '''
import pytest

def test_needs_a_server():
    pytest.skip("slapd is not installed")
'''


def run_pytest(tmp_path: Path, **environment: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_needs_a_server.py").write_text(NEEDS_A_SERVER)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "SSOBRIDGE_STRICT")} | environment
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.support.strict", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)


def test_a_skip_stays_a_skip_outside_ci(tmp_path):
    done = run_pytest(tmp_path)
    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout


def test_a_skip_fails_with_its_reason_when_ci_is_true(tmp_path):
    done = run_pytest(tmp_path, CI="true")
    assert done.returncode == 1, done.stdout
    assert "1 failed" in done.stdout
    assert "strict mode (CI=true or SSOBRIDGE_STRICT=1) does not allow: slapd is not installed" in done.stdout


def test_a_skip_fails_when_tests_run_sh_asks_for_strict_mode(tmp_path):
    done = run_pytest(tmp_path, SSOBRIDGE_STRICT="1")
    assert done.returncode == 1, done.stdout
    assert "1 failed" in done.stdout
