"""The README's first command on a given Python, as a new administrator runs it, checked from outside:
`python -m venv && pip install . && ssobridge demo`, then SOAP 1.1 and 1.2 Authenticate and ?wsdl.

    python -m tests.support.install_smoke /path/to/python3.12      (.ci/run runs it on 3.12)

Exit 0 when all three answer as they should; otherwise 1 with what went wrong. The venv is a new one in a
temporary folder and ssobridge is installed from this checkout, not editable: exactly the README's way.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.support.services import call, free_port

ROOT = Path(__file__).resolve().parents[2]
BANNER_END = "Stop with Ctrl+C"
VERSION = "import platform; print(platform.python_version())"


def main(python: str) -> int:
    with tempfile.TemporaryDirectory(prefix="ssobridge-smoke-") as folder:
        venv = Path(folder) / "venv"
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        started = time.monotonic()
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(ROOT)],
                       check=True)
        version = subprocess.run([str(venv / "bin" / "python"), "-c", VERSION], capture_output=True, text=True,
                                 check=True).stdout.strip()
        print(f"install-smoke: Python {version}: pip install . took {time.monotonic() - started:.0f} s")
        port = free_port()
        demo = subprocess.Popen([str(venv / "bin" / "ssobridge"), "demo", "--listen", f"127.0.0.1:{port}"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=folder)
        try:
            return check(read_banner(demo), f"http://127.0.0.1:{port}/ExternalProvider.asmx", version)
        finally:
            demo.terminate()
            demo.wait(30)


def read_banner(demo: subprocess.Popen) -> str:
    banner, deadline = "", time.monotonic() + 60
    while BANNER_END not in banner and time.monotonic() < deadline:
        line = demo.stdout.readline()
        if not line:
            break
        banner += line
    return banner


def check(banner: str, url: str, version: str) -> int:
    password = re.search(r"Web Service Password: (\S+)", banner)
    if BANNER_END not in banner or password is None:
        print(f"install-smoke: Python {version}: the demo did not start:\n{banner}", file=sys.stderr)
        return 1
    problems = []
    for soap12 in (False, True):
        result = call(url, "Authenticate", [f"authPW={password.group(1)}", "loginUsername=alice",
                                            "loginPassword=Alice-Passw0rd"], soap12=soap12)
        if "Authentication=OK" not in result.get("OutputVariables", []):
            problems.append(f"SOAP {'1.2' if soap12 else '1.1'} Authenticate: {result}")
    with urllib.request.urlopen(url + "?wsdl", timeout=30) as response:
        wsdl = response.read().decode("utf-8")
    if 'name="Authenticate"' not in wsdl or f'location="{url}"' not in wsdl:
        problems.append(f"?wsdl: no Authenticate operation at {url}: {wsdl[:300]}")
    for problem in problems:
        print(f"install-smoke: Python {version}: {problem}", file=sys.stderr)
    if not problems:
        print(f"install-smoke: Python {version}: SOAP 1.1 and 1.2 Authenticate OK, ?wsdl served")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
