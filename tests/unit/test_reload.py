"""reload.py's logic without a server: the config fingerprint, what a worker takes, what the parent logs.

The worker side runs the real Watch, Channel and RSGIEndpoint on files in tmp_path; only the runtime
behind an Application is a stand-in that records what was done to it. tests/test_reload.py is the same
under load against slapd.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from dataclasses import dataclass

import pytest

from ssobridge import reload
from ssobridge.logs import TEXT_LINE, JsonLines, reconfigure
from ssobridge.audit import LOGGER as AUDIT_LOGGER
from ssobridge.audit import AuditFile, decision
from ssobridge.config import load
from ssobridge.reload import Channel, Publisher, Watch, fingerprint
from ssobridge.wire.rsgi import Application, RSGIEndpoint


def write_config(path, message: str, password: str = "st-Passw0rd") -> None:
    path.write_text(f'[server]\ndata_dir = "{path.parent}"\n[smartertrack]\nweb_service_password = "{password}"\n'
                    f'[messages]\nwrong_credentials = "{message}"\n', encoding="utf-8")


class Runtime:
    def __init__(self, message: str):
        self.message, self.done = message, []

    def start(self):
        self.done.append("start")

    def retire(self):
        self.done.append("retire")

    def close(self):
        self.done.append("close")


def serving(config) -> Application:
    return Application(None, 1000, 1.0, 2, Runtime(config.messages["wrong_credentials"]))


def watch_for(tmp_path, build=serving):
    config_file = tmp_path / "ssobridge.toml"
    write_config(config_file, "First.")
    channel = Channel(str(tmp_path))
    channel.reset()
    channel.publish(0, load(config_file))
    first = serving(load(config_file))
    endpoint = RSGIEndpoint(first, lambda: None, lambda: None, lambda: None)
    return config_file, channel, first, endpoint, Watch(channel, str(config_file), 0, build, endpoint.replace,
                                                       lambda config: None)


def until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_fingerprint_is_the_same_for_the_same_file_and_changes_with_any_value_secrets_included(tmp_path):
    path = tmp_path / "ssobridge.toml"
    write_config(path, "Wrong.")
    same = fingerprint(load(path))
    assert fingerprint(load(path)) == same and len(same) == 64
    write_config(path, "Wrong!")
    assert fingerprint(load(path)) != same
    write_config(path, "Wrong.", password="another-Passw0rd")
    assert fingerprint(load(path)) != same


def test_the_fingerprint_refuses_a_value_it_could_not_compare_across_processes():
    @dataclass
    class Odd:
        thing: object

    with pytest.raises(TypeError, match="no fingerprint for a object in the config"):
        fingerprint(Odd(object()))


def test_a_worker_takes_the_newest_generation_swaps_it_in_and_closes_the_old_runtime_after_its_requests(tmp_path):
    config_file, channel, first, endpoint, watch = watch_for(tmp_path)
    write_config(config_file, "Second.")
    channel.publish(1, load(config_file))
    write_config(config_file, "Third.")
    channel.publish(2, load(config_file))  # both before the worker looks: it takes the newest only
    with endpoint._lock:
        first.in_flight = 1  # a request still running on the first config
    watch.start()
    try:
        until(lambda: channel.acknowledged(os.getpid()) == (2, None))
        assert watch.generation == 2
        assert endpoint._application.runtime.message == "Third."
        assert endpoint._application.runtime.done == ["start"]
        until(lambda: first.runtime.done == ["retire"])  # event delivery stops at once ...
        time.sleep(0.2)
        assert first.runtime.done == ["retire"] and not first.idle.is_set()
        with endpoint._lock:
            first.in_flight = 0
        first.idle.set()  # ... the rest once its last request is answered (as RSGIEndpoint does)
        until(lambda: first.runtime.done == ["retire", "close"])
    finally:
        watch.stop()


def test_a_file_changed_after_the_parent_checked_it_is_not_taken_and_the_worker_says_why(tmp_path, caplog):
    config_file, channel, first, endpoint, watch = watch_for(tmp_path)
    write_config(config_file, "Checked.")
    channel.publish(1, load(config_file))
    write_config(config_file, "Edited after the check.")  # and no signal follows
    watch.start()
    try:
        until(lambda: channel.acknowledged(os.getpid()) == (1, "the file changed after serve checked it"),
              seconds=reload.CHANGED_GRACE_SECONDS + 5)
    finally:
        watch.stop()
    assert endpoint._application is first and first.runtime.done == []
    assert "event=reload_not_taken generation=1" in caplog.text


def test_a_config_that_fails_to_build_leaves_the_old_one_serving(tmp_path):
    def failing(config):
        raise RuntimeError("keytab unreadable")

    config_file, channel, first, endpoint, watch = watch_for(tmp_path, build=failing)
    write_config(config_file, "Second.")
    channel.publish(1, load(config_file))
    watch.start()
    try:
        until(lambda: channel.acknowledged(os.getpid()) == (1, "building it failed: RuntimeError"))
    finally:
        watch.stop()
    assert endpoint._application is first


def test_the_parent_logs_reload_done_once_every_worker_serves_the_generation_and_incomplete_when_one_refused(
        tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ssobridge")
    config_file = tmp_path / "ssobridge.toml"
    write_config(config_file, "First.")
    channel = Channel(str(tmp_path))
    publisher = Publisher(channel, lambda: [101, 102])
    publisher.start(load(config_file))
    try:
        assert publisher.publish(load(config_file), time.monotonic()) == 1
        channel.acknowledge(101, 1)
        time.sleep(0.2)
        assert "reload_done" not in caplog.text  # 102 does not serve it yet
        channel.acknowledge(102, 1)
        until(lambda: "event=reload_done generation=1 workers=2 seconds=" in caplog.text)
        assert publisher.publish(load(config_file), time.monotonic()) == 2
        channel.acknowledge(101, 2)
        channel.acknowledge(102, 2, "the file changed after serve checked it")
        until(lambda: "event=reload_incomplete generation=2 worker_pid=102" in caplog.text)
        time.sleep(0.2)
    finally:
        publisher.stop()
    assert caplog.text.count("event=reload_done") == 1 and caplog.text.count("event=reload_incomplete") == 1


def test_a_reloaded_logging_config_changes_level_format_and_audit_file_in_place(tmp_path):
    """No handler is removed and added again (dictConfig would, losing lines logged in between): the stderr
    handler stays and gets the new format, the audit logger's handler list is swapped in one assignment."""
    root, audit, granian = logging.getLogger(), logging.getLogger(AUDIT_LOGGER), logging.getLogger("_granian")
    saved = [(logger, logger.level, list(logger.handlers), logger.propagate) for logger in (root, audit, granian)]
    stderr, first = logging.StreamHandler(io.StringIO()), AuditFile(str(tmp_path / "first.jsonl"))
    stderr.setFormatter(logging.Formatter(TEXT_LINE))
    root.handlers, audit.handlers, audit.propagate = [stderr], [first], False
    audit.setLevel(logging.INFO)
    path = tmp_path / "ssobridge.toml"
    write_config(path, "Wrong.")
    path.write_text(path.read_text().replace("[server]\n", '[server]\nlog_format = "json"\n')
                    + '[logging]\nlevel = "WARNING"\n[audit]\nfile = "second.jsonl"\n')
    second = kept = None
    try:
        decision("Authenticate", "before", "OK", None)
        reconfigure(load(path))
        [second] = audit.handlers
        decision("Authenticate", "after", "OK", None)
        reconfigure(load(path))  # the same again: the handler is kept, the file stays open
        kept = audit.handlers
        moved = (root.handlers, type(stderr.formatter), root.level, granian.level, first._descriptor)
    finally:
        for logger, level, handlers, propagate in saved:
            logger.setLevel(level)
            logger.handlers, logger.propagate = handlers, propagate
        for handler in (first, second):
            if handler is not None:
                handler.close()
    assert moved == ([stderr], JsonLines, logging.WARNING, logging.WARNING, None)  # the first file closed
    assert second.path == str(tmp_path / "second.jsonl") and kept == [second]
    assert [json.loads(line)["username"] for line in (tmp_path / "first.jsonl").read_text().splitlines()] == ["before"]
    assert [json.loads(line)["username"] for line in (tmp_path / "second.jsonl").read_text().splitlines()] == ["after"]
