"""Instructions per Authenticate on each Python, counted by valgrind (issue 17): the same figure on a busy
machine as on a quiet one, and where the difference between two interpreters lies.

Timed loads on a shared 2-core machine move by 10 % from one run to the next; valgrind's instruction count
(cachegrind, no cache simulation) does not move with other work. Each interpreter runs ssobridge's RSGI
endpoint in-process (wire/rsgi.py: the body read on a uvloop loop, the hand-off to a request thread, the
WSGI endpoint, the lockout shield, ldap3 over TLS to the bench slapd), CALLS Authenticate calls from
CLIENTS coroutines at once, twice: once with no measured calls, once with CALLS; the difference over CALLS
is the cost of one call, start-up and warm-up left out. Not counted: granian's own HTTP side (Rust), and
the kernel (system calls, thread switches); valgrind runs one thread at a time, so lock and GIL contention
are not what a real 16-client load sees either.

    .venv/bin/python bench/instructions.py --pythons .venv/bin/python .venv-3.13/bin/python

About 2 minutes per interpreter and client count on 2 cores. Needs valgrind (apt-get install valgrind).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: bench.*, tests.*

WARM_CALLS = 32  # before the measured calls (both runs): the pools' connections, the code paths
WARM_ROUNDS = 4  # then rounds of one call from each client at once
# Where an instruction is spent, by the source file (CPython is built with line info) or, for libraries
# without it, by the function's name; the first match wins.
AREAS = (("thread-local storage (__tls_get_addr)", r"tls_get_addr"),
         ("CPython", r"(^|/)(Objects|Python|Include|Modules|Parser)/"),
         ("sqlite", r"sqlite3"),
         ("lxml/libxml2", r"__pyx|lxml|\bxml|\?\?\? xml|\?\?\? __pyx|htmlParse"),
         ("OpenSSL", r"\?\?\? (SSL_|ssl3_|tls1?_|EVP_|OPENSSL_|CRYPTO_|BN_|ossl_|ASN1_|BIO_|X509|ERR_|sha|aes|gcm)"),
         ("libc (malloc, strings, locks)", r"(^|/)(malloc|string|nptl|libio|stdio-common)/"))
TOP_FUNCTIONS = 15


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pythons", nargs="+", metavar="PYTHON", required=True,
                        help="interpreters with this checkout installed; differences are to the first")
    parser.add_argument("--calls", type=int, default=320, help="measured Authenticate calls (default 320)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16],
                        help="concurrent clients, one count per run (default 1 16)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    return parser.parse_args()


def main() -> int:
    arguments = parse_arguments()
    from bench.load import add_bench_users
    from tests.support.pki import create_test_pki
    from tests.support.slapd import start_openldap
    work = Path(tempfile.mkdtemp(prefix="ssobridge-instructions-"))
    directory, slapd = start_openldap(work / "slapd", create_test_pki(work / "pki"))
    try:
        logins = add_bench_users(directory)
        config = write_config(work, directory)
        (work / "logins.json").write_text(json.dumps(logins), encoding="utf-8")
        # Every bench user's first good login writes the shield's verifier (an scrypt, ~50 ms): natively, once.
        child(arguments.pythons[0], config, 0, 1, len(logins), work / "sign-in.log")
        figures = {python: {clients: count(python, config, arguments.calls, clients, work)
                            for clients in arguments.clients} for python in arguments.pythons}
    finally:
        slapd.stop()
    print(report(figures, arguments.pythons, arguments.clients))
    if arguments.json:
        arguments.json.write_text(json.dumps({p: {str(c): f for c, f in by.items()} for p, by in figures.items()},
                                             indent=2), encoding="utf-8")
    return 0


def write_config(work: Path, directory) -> Path:
    from bench.bridge import _string, directory_table, toml_document
    from tests.support.services import WEB_SERVICE_PASSWORD
    config = work / "ssobridge.toml"  # [server] listen is never bound: the endpoint is called in-process
    config.write_text(f'[server]\nlisten = "127.0.0.1:1"\ndata_dir = {_string(str(work / "data"))}\n'
                      f'public_url = "http://sso.example.test/ExternalProvider.asmx"\n'
                      f'[smartertrack]\nweb_service_password = {_string(WEB_SERVICE_PASSWORD)}\n'
                      f'[logging]\nlevel = "INFO"\n' + toml_document({"directory": [directory_table(directory)]}),
                      encoding="utf-8")
    return config


def child(python: str, config: Path, calls: int, clients: int, warm: int, log: Path, valgrind: Path | None = None):
    command = [os.path.abspath(python), os.path.abspath(__file__), "--child", str(config), str(calls), str(clients),
               str(warm)]
    if valgrind is not None:
        command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={valgrind}", *command]
    with log.open("wb") as output:
        subprocess.run(command, check=True, stdout=output, stderr=subprocess.STDOUT, cwd=config.parent)


def count(python: str, config: Path, calls: int, clients: int, work: Path) -> dict:
    """Instructions per call: in all, by area and by function (the run with `calls` minus the one without)."""
    runs, opened = [], []
    for measured in (0, calls):
        name = f"{Path(python).parent.parent.name}-{clients}-{measured}"
        out = work / f"cachegrind-{name}.out"
        log = work / f"{name}.log"
        child(python, config, measured, clients, WARM_CALLS, log, out)
        runs.append(functions(out))
        opened.append(next(json.loads(line)["connections_opened"] for line in log.read_text(encoding="utf-8")
                           .splitlines() if line.startswith('{"connections_opened"')))
    per_call = {key: (runs[1][key] - runs[0].get(key, 0)) / calls for key in runs[1]}
    areas, by_function = collections.Counter(), collections.Counter()
    for (file, function), instructions in per_call.items():
        areas[area(file, function)] += instructions
        by_function[function] += instructions
    return {"per_call": round(sum(per_call.values())), "connections_opened": opened[1] - opened[0],
            "areas": {k: round(v) for k, v in areas.items()},
            "functions": {k: round(v) for k, v in by_function.items() if abs(v) >= 100}}


def functions(path: Path) -> collections.Counter:
    """Instructions (Ir) per (source file, function) of a cachegrind output file."""
    counts, file, function = collections.Counter(), None, None
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if line.startswith("fl="):
                file = line[3:].strip()
            elif line.startswith("fn="):
                function = line[3:].strip()
            elif line[:1].isdigit():
                fields = line.split()
                if len(fields) > 1:
                    counts[(file, function)] += int(fields[1])
    return counts


def area(file: str | None, function: str | None) -> str:
    where = f"{file or '???'} {function or '???'}"
    return next((name for name, pattern in AREAS if re.search(pattern, where)), "other")


def report(figures: dict, pythons: list[str], client_counts: list[int]) -> str:
    base = pythons[0]
    lines = []
    for clients in client_counts:
        lines += [f"\n## {clients} client(s): thousands of instructions per Authenticate", "",
                  "| area | " + " | ".join(pythons) + " |", "|---" * (len(pythons) + 1) + "|"]
        names = sorted({a for p in pythons for a in figures[p][clients]["areas"]},
                       key=lambda a: -figures[base][clients]["areas"].get(a, 0))
        lines.insert(len(lines) - 2, "LDAP connections the run with calls opened more than the one without: "
                     + ", ".join(f"{p} {figures[p][clients]['connections_opened']}" for p in pythons)
                     + " (each a TLS handshake, several calls' worth: a figure is clean only with 0)\n")
        for name in ["all", *names]:
            cells = [(figures[p][clients]["per_call"] if name == "all" else figures[p][clients]["areas"].get(name, 0))
                     for p in pythons]
            lines.append(f"| {name} | " + " | ".join(_cell(c, cells[0], i) for i, c in enumerate(cells)) + " |")
        for other in pythons[1:]:
            mine, theirs = figures[base][clients]["functions"], figures[other][clients]["functions"]
            changed = sorted(set(mine) | set(theirs), key=lambda f: -abs(theirs.get(f, 0) - mine.get(f, 0)))
            lines += ["", f"Functions that differ most, {other} - {base} (thousands per call): " + ", ".join(
                f"{f} {(theirs.get(f, 0) - mine.get(f, 0)) / 1000:+.1f}" for f in changed[:TOP_FUNCTIONS])]
    return "\n".join(lines)


def _cell(value: int, base: int, index: int) -> str:
    text = f"{value / 1000:,.1f}"
    return text if index == 0 or not base else f"{text} ({value / base:.3f}x)"


# --- the child: one interpreter, in-process -------------------------------------------------------------

def run_child(config_path: str, calls: int, clients: int, warm: int) -> None:
    import uvloop

    from ssobridge import logs
    from ssobridge.app import build
    from ssobridge.config import load
    from ssobridge.directory.connections import Connector
    from ssobridge.wire.rsgi import Application, RSGIEndpoint
    # A new LDAP connection (a TLS handshake) costs several calls' worth: counted, so that a run that
    # opened more than the run it is subtracted from is seen as such (the pools grow with the load).
    Connector.opened, open_connection = 0, Connector.open

    def counted_open(self, *args, **kwargs):
        Connector.opened += 1
        return open_connection(self, *args, **kwargs)

    Connector.open = counted_open
    from tests.support.services import WEB_SERVICE_PASSWORD, envelope
    config = load(Path(config_path))
    logs.configure(config)
    runtime = build(config)
    application = Application(runtime.endpoint, config.server.max_body_bytes, 10.0, config.server.threads, runtime)
    endpoint = RSGIEndpoint(application, runtime.start, lambda: None, lambda: None)
    logins = json.loads((Path(config_path).parent / "logins.json").read_text(encoding="utf-8"))
    bodies = [envelope("Authenticate", [f"authPW={WEB_SERVICE_PASSWORD}", f"loginUsername={login}",
                                        "loginPassword=Bench-Passw0rd!"]) for login in logins]

    async def client(count: int, rng: random.Random, order: bool = False) -> None:
        for index in range(count):
            body = bodies[index % len(bodies)] if order else rng.choice(bodies)
            protocol = _Protocol(body)
            await endpoint.__rsgi__(_Scope(body), protocol)
            if protocol.status != 200 or b"Authentication=OK" not in protocol.data:
                raise AssertionError(f"HTTP {protocol.status}: {protocol.data[:300]!r}")

    async def serve() -> None:
        endpoint.__rsgi_init__(asyncio.get_running_loop())
        await client(warm, random.Random(0), order=True)
        for _ in range(WARM_ROUNDS):  # every request thread started, the pools as full as the load makes them
            await asyncio.gather(*(client(1, random.Random(i)) for i in range(clients)))
        await asyncio.gather(*(client(calls // clients + (i < calls % clients), random.Random(i))
                               for i in range(clients)))
        print(json.dumps({"connections_opened": Connector.opened}))
        application.close()

    uvloop.run(serve())


class _Scope:
    """What granian's RSGI scope gives the endpoint, for a SOAP 1.1 POST."""
    proto, method, path, query_string = "http", "POST", "/ExternalProvider.asmx", ""
    http_version, scheme = "1.1", "http"
    server, client = "127.0.0.1:8080", "127.0.0.1:40000"

    def __init__(self, body: bytes):
        self.headers = {"host": "127.0.0.1", "content-type": "text/xml; charset=utf-8",
                        "content-length": str(len(body)), "soapaction": '"http://tempuri.org/Authenticate"'}


class _Protocol:
    """granian's RSGI protocol object, as far as the endpoint uses it: the whole body, then one answer."""

    def __init__(self, body: bytes):
        self.body, self.status, self.data = body, None, b""

    async def __call__(self) -> bytes:
        return self.body

    def response_bytes(self, status: int, headers: list, data: bytes) -> None:
        self.status, self.data = status, data


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        run_child(sys.argv[2], *(int(a) for a in sys.argv[3:6]))
        sys.exit(0)
    sys.exit(main())
