"""Reload: a config checked by the serve parent, taken by every worker in place, without a restart.

The parent checks the file (checked_reload: a refused one changes nothing) and publishes it as the next
generation in data_dir/reload/generation.json: its number and the config's fingerprint. Each worker
looks at that file ten times a second (one stat), reads the config file itself, and takes it only if
its fingerprint is the one the parent checked (the file may have changed since; then the worker keeps
what it serves and says why). Taking it means building a new runtime beside the one serving, swapping
it into the endpoint in one assignment (requests already running finish on the old one; the next
request on any connection, keep-alive ones included, gets the new one) and closing the old runtime
once its last request is answered. No process restarts, so no connection is dropped or reset.

Each worker acknowledges the generation it serves in data_dir/reload/worker-<pid>.json; the parent logs
event=reload_done when every worker does. Signals that arrive while workers are still building are
coalesced: a worker takes the newest generation it finds, skipping those published in between. Files,
not pipes or signals, because they work the same with fork and spawn (Windows) and need no handle
passed through granian; stat-ing one small file ten times a second costs nothing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import time
from dataclasses import fields, is_dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any, Callable, Mapping

from .app import require_installed
from .config import Config, ConfigError, load

log = logging.getLogger("ssobridge")

FOLDER = "reload"  # in data_dir
POLL_SECONDS = 0.1  # how often a worker looks for a new generation (one stat)
DONE_WITHIN_SECONDS = 30.0  # the parent says event=reload_incomplete when a worker has not taken it by then
# A file that differs from the one the parent checked is usually the next edit, whose signal is on its way.
CHANGED_GRACE_SECONDS = 1.0
RETIRE_WITHIN_SECONDS = 60.0  # a replaced runtime is closed by then even if a request still holds it
# Changed in a reloaded config, these take effect only at the next start (the parent holds them).
RESTART_KEYS = {"listen": ("host", "port"), "workers": ("workers",), "tls_cert": ("tls_cert",),
                "tls_key": ("tls_key",), "request_timeout": ("request_timeout",)}


def checked_reload(path: str, running: Config) -> Config | None:
    """The config at `path` read again for a reload, or None (every problem logged): the old one stays."""
    log.info("event=reload_requested config=%s", path)
    try:
        config = load(path)
        require_installed(config)
    except ConfigError as e:
        for problem in e.problems:
            log.error("event=reload_problem config=%s problem=%s", path, problem)
        log.error("event=reload_refused config=%s problems=%d note=%r", path, len(e.problems),
                  "the running config goes on serving; fix the file and reload again")
        return None
    changed = [key for key, names in RESTART_KEYS.items()
               if any(getattr(config.server, n) != getattr(running.server, n) for n in names)]
    if changed:
        log.warning("event=reload_needs_restart keys=%s note=%r", ",".join(changed),
                    "these [server] keys take effect at the next start; the rest is reloaded now")
    return config


def fingerprint(config: Config) -> str:
    """A digest of everything in the config, secrets included (they change what a worker does too), the
    same in every process for the same settings: worker and parent compare them, never the values."""
    return sha256(json.dumps(_plain(config), sort_keys=True).encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    if is_dataclass(value):
        return [type(value).__name__, {f.name: _plain(getattr(value, f.name)) for f in fields(value)}]
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    if isinstance(value, re.Pattern):
        return ["re", value.pattern, value.flags]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"no fingerprint for a {type(value).__name__} in the config")


class Channel:
    """The files in data_dir/reload: generation.json (the parent writes it) and worker-<pid>.json (each
    worker writes its own). Every write is a whole new file renamed into place, so a reader sees the old
    content or the new, never half."""

    def __init__(self, data_dir: str):
        self.folder = Path(data_dir or ".") / FOLDER
        self.generation_file = self.folder / "generation.json"

    def reset(self) -> None:
        """At the parent's start: nothing of an earlier run is left to be mistaken for this one's."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def publish(self, generation: int, config: Config) -> None:
        _write(self.generation_file, {"generation": generation, "config": fingerprint(config)})

    def acknowledge(self, pid: int, generation: int, refused: str | None = None) -> None:
        """The worker `pid` serves `generation` (or refused it); a failure to say so is logged, not raised:
        the worker goes on serving, and the parent reports the reload incomplete."""
        try:
            _write(self.folder / f"worker-{pid}.json", {"generation": generation, "refused": refused})
        except OSError as e:
            log.error("event=reload_ack_failed folder=%s error=%r", self.folder, e.strerror or str(e))

    def stamp(self) -> tuple[int, int, int] | None:
        """What changes when generation.json is replaced (inode, size, time); None without one."""
        try:
            found = os.stat(self.generation_file)
        except OSError:
            return None
        return found.st_ino, found.st_size, found.st_mtime_ns

    def current(self) -> tuple[int, str] | None:
        """(generation, fingerprint) published last, or None (no reload channel: the demo)."""
        data = _read(self.generation_file)
        return (data["generation"], data["config"]) if data else None

    def acknowledged(self, pid: int) -> tuple[int, str | None] | None:
        data = _read(self.folder / f"worker-{pid}.json")
        return (data["generation"], data["refused"]) if data else None


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # again, should someone have removed it
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data), encoding="utf-8")
    for attempt in range(20):  # Windows refuses to replace a file a reader has open at that instant
        try:
            os.replace(temporary, path)
            return
        except PermissionError:
            if attempt == 19:
                raise
            time.sleep(0.01)


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class Publisher:
    """In the serve parent: each checked config becomes the next generation, and event=reload_done is
    logged once every worker (`pids()`: those alive now) says it serves it."""

    def __init__(self, channel: Channel, pids: Callable[[], list[int]]):
        self._channel = channel
        self._pids = pids
        self._generation = 0
        self._pending: tuple[int, float] | None = None  # (generation, time.monotonic() of its signal)
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self, config: Config) -> None:
        """Before the workers start: generation 0 is the config they start with."""
        self._channel.reset()
        self._channel.publish(0, config)
        threading.Thread(target=self._watch, name="reload-acks", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()

    def publish(self, config: Config, signalled: float) -> int | None:
        """The checked config as the next generation; None (logged) when it cannot be written."""
        with self._lock:
            try:
                self._channel.publish(self._generation + 1, config)
            except OSError as e:
                log.error("event=reload_failed folder=%s error=%r note=%r", self._channel.folder,
                          e.strerror or str(e), "the workers go on with the config they have")
                return None
            self._generation += 1
            self._pending = (self._generation, signalled)
            return self._generation

    def _watch(self) -> None:
        while not self._stopping.wait(0.05):
            with self._lock:
                pending = self._pending
            if pending is not None and self._settled(*pending):
                with self._lock:
                    if self._pending == pending:
                        self._pending = None

    def _settled(self, generation: int, signalled: float) -> bool:
        """True when the generation is done (logged), refused by a worker or overdue (logged)."""
        pids = self._pids()
        answers = {pid: self._channel.acknowledged(pid) for pid in pids}
        refused = {pid: answer[1] for pid, answer in answers.items() if answer and answer[0] == generation
                   and answer[1]}
        waiting = [pid for pid, answer in answers.items() if not answer or answer[0] != generation]
        seconds = time.monotonic() - signalled
        if refused:
            for pid, reason in refused.items():
                log.error("event=reload_incomplete generation=%d worker_pid=%d reason=%r note=%r", generation, pid,
                          reason, "that worker goes on with the config it had; fix the file and reload again")
            return True
        if pids and not waiting:
            log.info("event=reload_done generation=%d workers=%d seconds=%.2f", generation, len(pids), seconds)
            return True
        if seconds > DONE_WITHIN_SECONDS:
            log.error("event=reload_incomplete generation=%d waiting=%s note=%r", generation,
                      ",".join(map(str, waiting)), f"not taken by these workers within {DONE_WITHIN_SECONDS:g} s")
            return True
        return False


class Watch:
    """In a worker: takes each new generation the parent publishes. `serving(config)` builds what serves a
    config (an rsgi.Application), `replace(application)` swaps it in and returns the one it replaced,
    `reconfigure(config)` applies its logging; `generation` is the one this worker serves now."""

    def __init__(self, channel: Channel, path: str, generation: int, serving: Callable, replace: Callable,
                 reconfigure: Callable[[Config], None]):
        self._channel, self._path, self.generation = channel, path, generation
        self._serving, self._replace, self._reconfigure = serving, replace, reconfigure
        self._stopping = threading.Event()
        self._changed_since: tuple[int, float] | None = None  # (generation, when) its file was seen changed
        self._retiring: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._run, name="reload-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No more generations; replaced runtimes still draining are closed first (within a bound)."""
        self._stopping.set()
        self._thread.join(timeout=10)
        for thread in self._retiring:
            thread.join(timeout=5)

    def _run(self) -> None:
        seen = None
        while not self._stopping.wait(POLL_SECONDS):
            stamp = self._channel.stamp()
            if stamp == seen and self._changed_since is None:
                continue
            seen = stamp
            published = self._channel.current()
            if published is not None and published[0] > self.generation:
                self._take(*published)

    def _take(self, generation: int, expected: str) -> None:
        config, reason = self._checked(expected)
        if reason is not None:
            if self._changed_since is None or self._changed_since[0] != generation:
                self._changed_since = (generation, time.monotonic())
            if time.monotonic() - self._changed_since[1] < CHANGED_GRACE_SECONDS:
                return None  # looked at again at the next poll: an edit in progress, or its signal on the way
            return self._refuse(generation, reason)
        self._changed_since = None
        try:
            application = self._serving(config)
        except Exception as e:  # noqa: BLE001 - anything that stops the build leaves the old config serving
            return self._refuse(generation, f"building it failed: {type(e).__name__}")
        self._reconfigure(config)
        application.runtime.start()
        old = self._replace(application)
        self.generation = generation
        self._channel.acknowledge(os.getpid(), generation)
        log.info("event=config_reloaded generation=%d config=%s", generation, self._path)
        retiring = threading.Thread(target=_retire, args=(old,), name="reload-retire", daemon=True)
        retiring.start()
        self._retiring = [t for t in self._retiring if t.is_alive()] + [retiring]

    def _checked(self, expected: str) -> tuple[Config | None, str | None]:
        """The config file as it is now if it is the one the parent checked, else why not."""
        try:
            config = load(self._path)
        except ConfigError as e:
            return None, f"the file no longer loads: {e.problems[0]}"
        if fingerprint(config) != expected:
            return None, "the file changed after serve checked it"
        return config, None

    def _refuse(self, generation: int, reason: str) -> None:
        log.error("event=reload_not_taken generation=%d config=%s reason=%r note=%r", generation, self._path, reason,
                  "this worker goes on with the config it had")
        self.generation = generation  # the same file is not tried again; the next signal is
        self._changed_since = None
        self._channel.acknowledge(os.getpid(), generation, reason)


def _retire(old) -> None:
    """The replaced Application: its event delivery stops now (the new runtime, or another worker, takes
    the leader lock), the rest once its last request is answered."""
    old.runtime.retire()
    if not old.idle.wait(RETIRE_WITHIN_SECONDS):
        log.warning("event=runtime_still_busy requests=%d note=%r", old.in_flight,
                    f"closed after {RETIRE_WITHIN_SECONDS:g} s although requests still ran on it")
    old.close()
