"""A login's search and bind, with directory/ber.py writing the requests or with ldap3's public API: CPU per login.

    .venv/bin/python bench/ber_or_ldap3.py [--logins N] [--rounds R]     # ~30 s on 2 cores

directory/ber.py writes the login search and bind itself and sets ldap3's private state (see its docstring);
this answers whether ldap3's public path (Connection.search, Connection.bind) would be as cheap. One process,
one thread, against the test suite's private slapd: Directory.find_user then verify_password (the very calls
Authenticate makes, on warm pooled TLS connections), N logins per round, the two paths in alternate rounds so a
busy machine slows both alike. CPU time of this process per login (time.process_time), median over rounds.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: tests.*

from ssobridge.directory import ber  # noqa: E402
from ssobridge.directory.directory import Directory  # noqa: E402
from ssobridge.directory.names import parse_login_name  # noqa: E402
from tests.support.pki import create_test_pki  # noqa: E402
from tests.support.services import settings_for  # noqa: E402
from tests.support.slapd import start_openldap  # noqa: E402

PUBLIC = {"search": lambda *arguments: False, "simple_bind": lambda *arguments: None}  # ber declines: ldap3 sends


def logins(directory: Directory, user, count: int) -> float:
    """CPU seconds of `count` logins (find the entry, bind as it), all of which must succeed."""
    name, password = parse_login_name(user.login), user.password.encode("utf-8")
    started = time.process_time()
    for _ in range(count):
        entry = directory.find_user(name)
        assert directory.verify_password(entry, password).name == "OK"
    return time.process_time() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=500, help="logins per round (default 500)")
    parser.add_argument("--rounds", type=int, default=10, help="rounds of each path (default 10)")
    arguments = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ssobridge-ber-"))
    fixture, slapd = start_openldap(work / "slapd", create_test_pki(work / "pki"))
    try:
        directory = Directory(settings_for(fixture))
        user = fixture.users["jdoe"]
        logins(directory, user, 50)  # warm: pools filled, policy cached
        own = {name: getattr(ber, name) for name in PUBLIC}
        spent: dict[str, list[float]] = {"ber.py": [], "ldap3 public API": []}
        for _ in range(arguments.rounds):
            spent["ber.py"].append(logins(directory, user, arguments.logins))
            for name, replacement in PUBLIC.items():
                setattr(ber, name, replacement)
            try:
                spent["ldap3 public API"].append(logins(directory, user, arguments.logins))
            finally:
                for name, function in own.items():
                    setattr(ber, name, function)
        directory.close()
    finally:
        slapd.stop()
        shutil.rmtree(work, ignore_errors=True)
    per_login = {path: statistics.median(values) / arguments.logins * 1000 for path, values in spent.items()}
    for path, ms in per_login.items():
        print(f"{path:<18} {ms:.3f} ms CPU per login (search + bind), median of {arguments.rounds} rounds "
              f"of {arguments.logins}")
    print(f"ldap3's public API costs {per_login['ldap3 public API'] - per_login['ber.py']:.3f} ms more per login "
          f"({per_login['ldap3 public API'] / per_login['ber.py']:.2f} x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
