"""`ssobridge serve` (and the demo): the endpoint on granian until SIGTERM or Ctrl+C.

granian (Rust, hyper) parses HTTP and TLS and bounds slow clients; the endpoint runs in [server] workers
granian worker processes sharing the listening socket, and granian starts a new one in place of one that
dies. Each worker builds everything itself (worker_app, named by import path, so it works
with Windows' spawn too): the parent process only checks the config, opens the listening socket and
passes what the workers need in environment variables. Nothing is shared in memory between them: what
must be shared or done once goes through data_dir (the lockout shield, the service account guard, the user
card store) or the event outbox (events/leader.py: one worker delivers).

Operations (docs/operations.md): the parent writes its pid to data_dir/ssobridge.pid while it serves. SIGHUP
(`ssobridge reload`) reads the config again in the parent: a valid one is published to the workers, which
each take it in place without a restart (reload.py); an invalid one is refused with every problem logged,
and the workers go on with the old one. granian's own reload (a rolling restart of the workers) is not
used: an old worker with a busy keep-alive connection never finished it. The first SIGTERM or Ctrl+C stops
gracefully (requests in flight finish, for up to STOP_GRACE_SECONDS); a second one during that stop cuts it
to FORCED_STOP_SECONDS.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import socket
import sqlite3
import sys
import threading
import time
from pathlib import Path

from . import logs, metrics
from .app import build, card_store
from .config import Config, load
from .events.store import EventStore
from .lockout.store import Store
from .reload import Channel, Publisher, Watch, checked_reload, fingerprint

log = logging.getLogger("ssobridge")

WORKER_ENV = "SSOBRIDGE_WORKER"  # JSON: {"config": path, "reload": data_dir} or {"demo": listen, "password": ...}
PARENT_CHECK_SECONDS = 1.0
STOP_GRACE_SECONDS = 20  # after the graceful stop was asked for, the worker ends regardless
HEADER_SHARE = 1 / 3  # of request_timeout for the headers (granian's timer); the rest is the body's
FORCED_STOP_SECONDS = 4.0  # after a second SIGTERM or Ctrl+C, workers still running are killed this soon
PID_FILE = "ssobridge.pid"  # in data_dir, while serve runs: `ssobridge reload` signals it


def run_server(config: Config, worker: dict, banner: str | None = None) -> int:
    """Serve `config`; `worker` tells the worker process how to build it again (see worker_app)."""
    from granian.constants import Interfaces, SSLProtocols
    from granian.http import HTTP1Settings
    from granian.server import Server

    log_dictconfig = logs.configure(config)
    settings = config.server
    problem = _check_event_database(config) or _check_card_store(config) or _check_lockout_store(config)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    problem = listen_problem(settings.host, settings.port)
    if problem:
        print(f"ssobridge: {problem}", file=sys.stderr)
        return 1
    tls = {}
    if settings.tls_cert:
        try:
            key = pkcs8_key(settings.tls_key, settings.data_dir)
        except (ValueError, TypeError) as e:
            log.error("event=tls_key_unreadable file=%s error=%s note=%r", settings.tls_key, type(e).__name__,
                      "an unencrypted PEM private key is needed (PKCS#8, PKCS#1 or EC)")
            return 2
        except OSError as e:
            log.error("event=tls_key_unreadable file=%s error=%r note=%r", settings.tls_key, e.strerror,
                      f"reading it, or writing its PKCS#8 copy into data_dir {settings.data_dir}")
            return 2
        # TLS 1.2 stays accepted: Mono and .NET Framework on Windows Server 2016/2019 speak no 1.3.
        tls = dict(ssl_cert=Path(settings.tls_cert), ssl_key=key, ssl_protocol_min=SSLProtocols.tls12)
    elif not settings.is_loopback:
        log.warning("event=plaintext_http listen=%s:%s note=%r", settings.host, settings.port,
                    "passwords from SmarterTrack cross the network unencrypted unless a TLS proxy is in front")
    if "config" in worker:  # the workers' side of reload.py (the demo has no file to read again)
        worker = {**worker, "reload": settings.data_dir}
    os.environ[WORKER_ENV] = json.dumps({**worker, "banner": banner})
    if settings.metrics and settings.data_dir:  # the demo (no data_dir) serves one worker: its own counts
        try:
            metrics.prepare_directory(settings.data_dir)
        except OSError as e:
            print(f"ssobridge: [server] data_dir: cannot prepare its metrics folder: {e}", file=sys.stderr)
            return 2
    workers = settings.workers
    if sys.platform == "win32" and workers > 1:  # granian itself falls back to one worker there
        log.info("event=one_worker workers=%d note=%r", workers, "granian serves one worker process on Windows")
        workers = 1
    server = _bridge_server(Server)(
        "ssobridge.serve:worker_app", address=settings.host, port=settings.port, interface=Interfaces.RSGI,
        factory=True, workers=workers, respawn_failed_workers=True, http="1", websockets=False,
        http1_settings=HTTP1Settings(header_read_timeout=int(settings.request_timeout * HEADER_SHARE * 1000)),
        log_level=config.log_level.lower(), log_dictconfig=log_dictconfig, **tls)
    server.running = config
    server.config_path = worker.get("config")
    publisher = None
    if server.config_path is not None:
        publisher = server.publisher = Publisher(Channel(settings.data_dir), server.worker_pids)
        try:
            publisher.start(config)
        except OSError as e:
            print(f"ssobridge: [server] data_dir: cannot prepare its reload folder: {e}", file=sys.stderr)
            return 2
    pid_file = Path(settings.data_dir or ".") / PID_FILE
    try:
        write_pid_file(pid_file)
    except OSError as e:
        log.warning("event=pid_file_unwritable file=%s error=%r note=%r", pid_file, e.strerror,
                    "`ssobridge reload` cannot find this process; SIGHUP still reloads")
    try:
        server.serve()
    except OSError as e:
        log.error("event=listen_failed listen=%s:%s error=%r", settings.host, settings.port, str(e))
        return 1
    except SystemExit as e:  # granian exits 1 when a worker died; the worker logged why
        return e.code if isinstance(e.code, int) else 1
    finally:
        remove_pid_file(pid_file)
        if publisher is not None:
            publisher.stop()
    log.info("event=stopped")
    return 0


def _bridge_server(granian_server: type) -> type:
    """granian's Server with ssobridge's reload (the config checked first) and stop (bounded)."""

    class BridgeServer(granian_server):
        running: Config  # the config the workers serve
        config_path: str | None  # None: the demo, which has no file to read again
        publisher: Publisher | None = None
        stop_deadline = float("inf")
        signalled = 0.0  # time.monotonic() of the last SIGHUP

        def signal_handler_reload(self, *args, **kwargs):
            self.signalled = time.monotonic()
            super().signal_handler_reload(*args, **kwargs)

        def _reload(self, spawn_target, target_loader):
            """Check the file and publish it to the workers, which take it in place (reload.py); never
            granian's rolling restart. Returns at once: signals that come meanwhile are the next reload."""
            # In this order: a SIGHUP after these lines is the next reload, one before them is read below.
            self.main_loop_interrupt.clear()
            self.reload_signal = False
            if self.publisher is None:
                log.warning("event=reload_ignored note=%r", "the demo has no config file to read again")
                return
            config = checked_reload(self.config_path, self.running)
            if config is None:
                return
            self.running = config
            # for a worker granian starts again after a crash (it reads the file itself)
            self.log_level = type(self.log_level)(config.log_level.lower())
            self.log_config = logs.configure(config)
            self.publisher.publish(config, self.signalled)

        def worker_pids(self) -> list[int]:
            return [worker.inner.pid for worker in list(self.wrks) if worker.is_alive()]

        def signal_handler_interrupt(self, *args, **kwargs):
            now = time.monotonic()
            if self.interrupt_signal:  # a second SIGTERM or Ctrl+C while stopping: stop soon
                self.stop_deadline = min(self.stop_deadline, now + FORCED_STOP_SECONDS)
            else:
                self.stop_deadline = now + STOP_GRACE_SECONDS
            super().signal_handler_interrupt(*args, **kwargs)

        def _stop_workers(self):
            """Each worker stops gracefully (its requests in flight finish) until stop_deadline, then is killed:
            granian's own join waits without a bound."""
            for worker in self.wrks:
                worker.terminate()
            for worker in self.wrks:
                while worker.is_alive() and time.monotonic() < self.stop_deadline:
                    worker.join(0.05)
                if worker.is_alive():
                    log.warning("event=worker_killed worker=%d note=%r", worker.idx + 1,
                                "still busy when the stop's time was up")
                    worker.kill()
                    worker.join()
            self.wrks.clear()

    return BridgeServer


def write_pid_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n", encoding="ascii")


def remove_pid_file(path: Path) -> None:
    """Only our own: a second serve that failed to start must not remove the running one's."""
    try:
        if path.read_text(encoding="ascii").strip() == str(os.getpid()):
            path.unlink()
    except (OSError, ValueError):
        pass


def worker_app():
    """granian's factory target, called in the worker process: the endpoint and its runtime."""
    from .wire.rsgi import Application, RSGIEndpoint
    worker = json.loads(os.environ[WORKER_ENV])
    if "demo" in worker:
        from .demo import demo_config, sample_directories
        config = demo_config(worker["demo"], worker["password"])
        directories = sample_directories(config)
    else:
        config, directories = load(worker["config"]), None
    logs.configure(config)
    metrics.use_directory()
    threading.Thread(target=_exit_with_parent, name="parent-watch", daemon=True).start()
    settings = config.server
    body_seconds = settings.request_timeout * (1 - HEADER_SHARE)  # the start's: granian holds the header share

    def serving(config: Config, directories=None) -> Application:
        runtime = build(config, directories)
        return Application(runtime.endpoint, config.server.max_body_bytes, body_seconds, config.server.threads,
                           runtime)

    application = serving(config, directories)
    watch = None

    def start():
        application.runtime.start()
        if watch is not None:
            watch.start()

    def ready():
        log.info("event=started listen=%s:%s public_url=%s directories=%s events=%s", settings.host, settings.port,
                 settings.public_url, ",".join(d.name for d in application.runtime.directories.directories) or "none",
                 config.events.database if config.events else "off")
        if worker.get("banner"):
            print(worker["banner"], flush=True)

    def stop():
        if watch is not None:
            watch.stop()

    endpoint = RSGIEndpoint(application, start, ready, stop)
    if "reload" in worker:
        watch = _reload_watch(Channel(worker["reload"]), worker["config"], config, serving, endpoint)
    return endpoint


def _reload_watch(channel: Channel, path: str, config: Config, serving, endpoint) -> Watch | None:
    """The worker's side of reload.py, after it says which generation it starts with."""
    published = channel.current()
    if published is None:  # the parent made it: gone or unreadable since
        log.error("event=reload_unavailable file=%s note=%r", channel.generation_file,
                  "this worker serves on, but cannot take a reloaded config; restart the service")
        return None
    generation, expected = published
    if fingerprint(config) == expected:
        channel.acknowledge(os.getpid(), generation)
    else:
        log.warning("event=config_differs generation=%d config=%s note=%r", generation, path,
                    "this worker started from the file as it is now, not the config serve checked last; "
                    "reload to make every worker serve the same")
        channel.acknowledge(os.getpid(), generation, "started from a file that differs from the one serve checked")
    return Watch(channel, path, generation, serving, endpoint.replace, logs.reconfigure)


def listen_problem(host: str, port: int) -> str | None:
    """Why the listen address cannot be bound, in words, or None. granian's own bind failure is a bare
    RuntimeError from its Rust side, so the address is tried here briefly first (and closed again)."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, kind, protocol, _, where = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                              flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, protocol) as probe:
            if os.name != "nt":  # as granian does; on Windows SO_REUSEADDR would let a taken port be bound
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(where)
    except socket.gaierror as e:
        return f"cannot listen on {address}: cannot resolve {host} ({e.strerror}): change [server] listen"
    except OSError as e:
        if e.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", None)):
            return f"{address} is already in use by another program: stop it, or change [server] listen"
        if e.errno in (errno.EADDRNOTAVAIL, getattr(errno, "WSAEADDRNOTAVAIL", None)):
            return f"cannot listen on {address}: {host} is not an address of this machine: change [server] listen"
        if e.errno == errno.EACCES:
            return (f"cannot listen on {address}: permission denied (ports below 1024 need privileges): "
                    "change [server] listen, or grant the service the right to bind it")
        return f"cannot listen on {address}: {e.strerror or e}: change [server] listen"
    return None


def _exit_with_parent() -> None:
    """A worker whose granian parent was killed (kill -9) stops too: an orphan would go on serving the
    old socket and hold the event leader lock, so a restarted service could never deliver."""
    if sys.platform == "win32":  # spawn: the parent's process handle, signalled when it ends
        import multiprocessing.connection
        parent = multiprocessing.parent_process()
        if parent is None:
            return
        multiprocessing.connection.wait([parent.sentinel])
    else:  # fork: a sibling may hold our end of the parent pipe, so watch for being re-parented instead
        parent = os.getppid()
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
    log.warning("event=parent_gone note=%r", "the granian main process ended; this worker stops")
    signal.raise_signal(signal.SIGTERM)  # granian's graceful stop: Runtime.close releases the leader lock
    time.sleep(STOP_GRACE_SECONDS)
    os._exit(1)


def _check_event_database(config: Config) -> str | None:
    """The outbox is opened in the worker; refuse to start here, with the key named, if it cannot be."""
    if config.events is None:
        return None
    try:
        EventStore(config.events.database).close()  # and migrated here, once, before the worker opens it
    except (sqlite3.Error, OSError) as e:
        return f"ssobridge: events.database: cannot open {config.events.database}: {e}"
    return None


def _check_card_store(config: Config) -> str | None:
    """The user card store too: created here (mode 0600) before the workers open it."""
    try:
        store = card_store(config)
    except (sqlite3.Error, OSError) as e:
        return f"ssobridge: [server] data_dir: cannot open the user card store in {config.server.data_dir}: {e}"
    if store is not None:
        store.close()
    return None


def _check_lockout_store(config: Config) -> str | None:
    """And the lockout shield's: made (WAL) here, once. Two workers switching a new database to WAL at the
    same moment got "database is locked" in one of them, which then died at start."""
    if not config.lockout.enabled or not config.directories:
        return None
    try:
        Store(config.server.data_dir).close()
    except (sqlite3.Error, OSError) as e:
        return f"ssobridge: [server] data_dir: cannot open the lockout shield's state in {config.server.data_dir}: {e}"
    return None


def pkcs8_key(tls_key: str, data_dir: str) -> Path:
    """granian reads PKCS#8 keys only; an admin's key may be PKCS#1 ("RSA PRIVATE KEY") or EC: write
    it as PKCS#8 into a private file in data_dir (mode 0600), or use the file as it is."""
    data = Path(tls_key).read_bytes()
    if b"-----BEGIN PRIVATE KEY-----" in data:
        return Path(tls_key)
    from cryptography.hazmat.primitives import serialization
    key = serialization.load_pem_private_key(data, password=None)
    converted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    target = Path(data_dir or ".") / "tls_key.pkcs8.pem"
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(converted)
    os.chmod(target, 0o600)
    return target


def signal_reload(config: Config) -> tuple[int, str]:
    """`ssobridge reload`: SIGHUP to the serve whose pid file is in the config's data_dir -> (exit code, text)."""
    if sys.platform != "win32" and hasattr(signal, "SIGHUP"):
        pid_file = Path(config.server.data_dir or ".") / PID_FILE
        try:
            pid = int(pid_file.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return 1, (f"no running serve found: {pid_file} is missing or unreadable (serve writes it there, "
                       "in [server] data_dir, while it runs)")
        command_line = Path(f"/proc/{pid}/cmdline")  # Linux: a stale file's pid may now be another program's
        if command_line.exists() and b"ssobridge" not in command_line.read_bytes():
            return 1, f"no running serve found: {pid_file} names process {pid}, which is not ssobridge"
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            return 1, f"no running serve found: {pid_file} names process {pid}, which is gone"
        except PermissionError:
            return 1, f"not allowed to signal process {pid}: run this as the user the service runs as"
        return 0, (f"asked serve (pid {pid}) to reload {config.source}; its log says event=reload_done when the "
                   "workers run the new config, or event=reload_refused with every problem")
    return 2, ("reload is not supported on Windows (there is no SIGHUP): restart the service to read the "
               "config again")
