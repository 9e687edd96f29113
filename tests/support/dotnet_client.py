"""SmarterTrack's side of the wire in tests: the .NET client in tests/dotnet/, run under Mono. Fixture `dotnet`
(session-scoped; tests/conftest.py imports it), a DotNetClient:

    def test_login(dotnet, server_url):
        result = dotnet.call(server_url, "Authenticate", ["authPW=s", "loginUsername=jdoe", "loginPassword=pw"])
        assert result["Success"] is True
        assert outputs(result)["Authentication"] == "OK"

A result is the .NET result object as a dict: its public fields in declaration order (Success, Message,
OutputVariables, and UserInfoHtml or CustomFieldDataItems where the type has them). As in SmarterTrack, an
omitted string is None, an omitted boolean False, and an omitted list [] (XmlSerializer creates every List<T>
member up front, so omitted and empty lists look the same); a nil list item is None. A response without the
<OpResult> element gives {"Result": None, "HttpStatus": n}. A SOAP fault, an HTTP error or a transport error
is {"Fault": message, "HttpStatus": n or None,
"ExceptionType": ..., and FaultCode "{namespace}Name", FaultSubCode, FaultDetail, ResponseBody, Inner when
known}; call() and batch() return it rather than raise.

The C# is compiled once per source hash into a cache directory (pytest's cache by default), in under a
second. call() and batch() talk to a `client.exe --batch` process kept for the session: a Mono process costs
about 0.3 s to start and warm up, a call on a warm one about a millisecond against a local server.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pytest

DOTNET_DIR = Path(__file__).parent.parent / "dotnet"
SOURCES = ("SmarterTrackClient.cs", "ClientProgram.cs")
REFERENCES = ("System.Web.Services.dll", "System.Xml.dll", "Mono.Security.dll")
INSTALL_HINT = "apt-get install -y --no-install-recommends mono-mcs libmono-system-web-services4.0-cil"


class DotNetUnavailable(RuntimeError):
    """Mono, mcs or a referenced assembly is missing on this machine."""


class DotNetClientError(RuntimeError):
    """The client process failed without producing a result (a bug or a usage error, not a fault)."""


def outputs(result: dict) -> dict[str, str]:
    """OutputVariables as a dict, each "name=value" split on the first "=" (a later name wins)."""
    pairs = (item.split("=", 1) for item in result.get("OutputVariables") or [] if item is not None)
    return {pair[0]: pair[1] if len(pair) > 1 else "" for pair in pairs}


class DotNetClient:
    """Compiles tests/dotnet/*.cs once, then runs `mono client.exe`; see the module docstring."""

    def __init__(self, cache_dir: Path | str | None = None, mono: str = "mono", mcs: str = "mcs"):
        self.cache_dir = Path(cache_dir or os.environ.get("SSOBRIDGE_DOTNET_CACHE") or
                              Path(tempfile.gettempdir()) / "ssobridge-dotnet-client")
        self.mono = mono
        self.mcs = mcs
        self._exe: Path | None = None
        self._workers: dict[tuple[str, ...], _Worker] = {}
        self._lock = threading.Lock()

    @property
    def source_hash(self) -> str:
        digest = hashlib.sha256()
        for name in SOURCES:
            digest.update(name.encode() + b"\0" + (DOTNET_DIR / name).read_bytes() + b"\0")
        digest.update(" ".join(REFERENCES).encode())
        return digest.hexdigest()[:16]

    @property
    def exe(self) -> Path:
        """The compiled client, built now if this source has not been built before."""
        if self._exe is None:
            self._exe = self.build()
        return self._exe

    def build(self) -> Path:
        exe = self.cache_dir / f"smartertrack-client-{self.source_hash}.exe"
        for tool in (self.mono,) if exe.exists() else (self.mcs, self.mono):
            if shutil.which(tool) is None:
                raise DotNetUnavailable(f"{tool} not found ({INSTALL_HINT})")
        if exe.exists():
            return exe
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        # Compile beside the target and rename: parallel sessions never see a half-written exe.
        partial = exe.with_name(f"{exe.stem}.{os.getpid()}.partial.exe")
        command = [self.mcs, "-nologo", "-target:exe", f"-out:{partial}",
                   *(f"-r:{ref}" for ref in REFERENCES), *(str(DOTNET_DIR / name) for name in SOURCES)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            partial.unlink(missing_ok=True)
            message = (done.stdout + done.stderr).strip()
            if "CS0006" in message:  # a referenced assembly is not installed
                raise DotNetUnavailable(f"{message} ({INSTALL_HINT})")
            raise DotNetClientError(f"mcs failed:\n{message}")
        os.replace(partial, exe)
        return exe

    def run(self, *args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        """`mono client.exe ARGS...`, stdin as UTF-8 text; for tests of the command line itself."""
        return subprocess.run([self.mono, str(self.exe), *args], input=input, capture_output=True,
                              encoding="utf-8", timeout=timeout, check=False)

    def call(self, url: str, op: str, variables: Sequence[str | None] | None = (), soap: str = "11",
             **options) -> dict:
        """One call; `variables` items are "name=value", None for a null item, None for no list at all.

        Options as for batch(); null_inputs=True sends the operation element without <inputs>.
        """
        request = {"op": op, "soap": soap, "vars": None if variables is None else list(variables)}
        if options.pop("null_inputs", False):
            request["nullInputs"] = True
        if "repeat" in options:
            request["repeat"] = options.pop("repeat")
        return self.batch(url, [request], **options)[0]

    def batch(self, url: str, requests: Iterable[dict], *, ca_file: Path | str | None = None,
              trust_all: bool = False, timeout_ms: int | None = None, timing: bool = False,
              fresh_process: bool = False, process_timeout: float = 300) -> list[dict]:
        """Many calls, one result per request, in order.

        A request is {"op": "Authenticate", "soap": "11" or "12", "vars": [...] or None, optionally "url"
        (default `url`), "nullInputs": True, "repeat": n (the result is the last call's)}. timing=True adds
        "ElapsedMs" (a list, one per repeat) to each result. ca_file: the HTTPS server must present a
        certificate from this CA; trust_all: accept any certificate; timeout_ms: the proxy's Timeout.

        The calls go to a Mono process kept for the session (one per set of options), so they cost
        milliseconds and reuse keep-alive connections like SmarterTrack does; fresh_process=True runs them in
        a new process instead (no pooled connections, XmlSerializer cold again).
        """
        options = []
        if ca_file is not None:
            options += ["--ca-file", str(ca_file)]
        if trust_all:
            options.append("--trust-all")
        if timeout_ms is not None:
            options += ["--timeout", str(timeout_ms)]
        if timing:
            options.append("--timing")
        lines = [json.dumps({"url": url, **request}, ensure_ascii=False) for request in requests]
        if fresh_process:
            done = self.run("--batch", *options, input="".join(line + "\n" for line in lines),
                            timeout=process_timeout)
            if done.returncode != 0:
                raise DotNetClientError(f"client exited {done.returncode}:\n{done.stderr}")
            replies = [line for line in done.stdout.splitlines() if line.strip()]
        else:
            replies = self._worker(tuple(options)).exchange(lines, process_timeout)
        results = [json.loads(reply) for reply in replies]
        if len(results) != len(lines):
            raise DotNetClientError(f"{len(results)} results for {len(lines)} requests")
        for result in results:
            if "UsageError" in result:
                raise DotNetClientError(result["UsageError"])
        return results

    def _worker(self, options: tuple[str, ...]) -> _Worker:
        with self._lock:
            worker = self._workers.get(options)
            if worker is None or not worker.alive:
                worker = self._workers[options] = _Worker([self.mono, str(self.exe), "--batch", *options])
            return worker

    def close(self) -> None:
        """End the Mono processes kept for batch()."""
        with self._lock:
            for worker in self._workers.values():
                worker.close()
            self._workers.clear()


class _Worker:
    """A `client.exe --batch` process answering one JSON line per request line."""

    def __init__(self, command: list[str]):
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the process; closed in close())
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._stderr, encoding="utf-8")
        self._replies: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        threading.Thread(target=self._read, name="dotnet-client-reader", daemon=True).start()

    def _read(self) -> None:
        for line in self._process.stdout:
            self._replies.put(line)
        self._replies.put(None)  # end of output: the process is gone

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def exchange(self, lines: list[str], timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        with self._lock:
            try:
                self._process.stdin.write("".join(line + "\n" for line in lines))
                self._process.stdin.flush()
            except BrokenPipeError:
                raise DotNetClientError(f"client process ended:\n{self._error_output()}") from None
            replies = []
            for _ in lines:
                try:
                    reply = self._replies.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    self.close()
                    raise DotNetClientError(f"no answer from the client within {timeout} s") from None
                if reply is None:
                    raise DotNetClientError(f"client process ended:\n{self._error_output()}")
                replies.append(reply)
            return replies

    def _error_output(self) -> str:
        self._process.wait(5)
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def close(self) -> None:
        try:
            self._process.stdin.close()  # the client ends at end of input
        except BrokenPipeError:
            pass
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process.stdout.close()
        self._stderr.close()


def expect_100_continue_answered(url: str, timeout: float = 1.0) -> bool:
    """Whether the server answers "Expect: 100-continue" with "100 Continue" before the body is sent.

    .NET Framework waits up to 350 ms per call for it; Mono's client sends the body at once, so the .NET
    client under Mono cannot notice a server that never answers. Plain HTTP only.
    """
    parts = urllib.parse.urlsplit(url)
    body = b'<?xml version="1.0" encoding="utf-8"?>'
    head = (f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            'Content-Type: text/xml; charset=utf-8\r\nSOAPAction: "http://tempuri.org/Authenticate"\r\n'
            f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout) as sock:
        sock.sendall(head.encode("ascii"))
        try:
            first = sock.recv(64)
        except TimeoutError:
            return False
    return first.startswith(b"HTTP/1.1 100")


@pytest.fixture(scope="session")
def dotnet(request) -> Iterator[DotNetClient]:
    """The .NET SmarterTrack client, compiled; skips the test when Mono is not installed."""
    try:
        cache_dir = request.config.cache.mkdir("dotnet-client")
    except AttributeError:  # pytest's cache plugin disabled
        cache_dir = None
    client = DotNetClient(cache_dir)
    try:
        client.build()
    except DotNetUnavailable as missing:
        pytest.skip(f".NET client unavailable: {missing}")
    yield client
    client.close()
