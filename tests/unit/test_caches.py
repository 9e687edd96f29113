"""The caches are cachetools' (cachedmethod on a TTLCache): a counted cache counts each lookup once, a failure is
not cached, and /readyz's answer is computed by one thread while the others wait for it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from cachetools import cachedmethod
from prometheus_client import REGISTRY

from ssobridge.directory import DirectoryUnavailable
from ssobridge.directory.directory import CountedCache
from ssobridge.health import Readiness


def counted(cache: str, result: str) -> float:
    return REGISTRY.get_sample_value("ssobridge_cache_requests_total", {"cache": cache, "result": result}) or 0.0


class Names:
    def __init__(self, fail: bool = False):
        self.cache = CountedCache("test_names", maxsize=10, ttl=60)
        self.lock = threading.Lock()
        self.looked_up: list[str] = []
        self.fail = fail

    @cachedmethod(lambda self: self.cache, key=lambda self, dn: dn.lower(), lock=lambda self: self.lock)
    def name_of(self, dn: str) -> str:
        self.looked_up.append(dn)
        if self.fail:
            raise DirectoryUnavailable("down")
        return dn.partition(",")[0].upper()


def test_a_counted_cache_counts_one_miss_then_hits_and_its_own_store_not_at_all():
    names, hits, misses = Names(), counted("test_names", "hit"), counted("test_names", "miss")
    assert [names.name_of(dn) for dn in ("cn=a,dc=x", "CN=A,DC=X", "cn=a,dc=x", "cn=b,dc=x")] == \
        ["CN=A", "CN=A", "CN=A", "CN=B"]
    assert names.looked_up == ["cn=a,dc=x", "cn=b,dc=x"]
    assert (counted("test_names", "hit") - hits, counted("test_names", "miss") - misses) == (2, 2)


def test_a_failure_is_not_cached():
    names = Names(fail=True)
    for _ in range(2):
        with pytest.raises(DirectoryUnavailable):
            names.name_of("cn=a,dc=x")
    assert names.looked_up == ["cn=a,dc=x", "cn=a,dc=x"] and len(names.cache) == 0


@dataclass
class SlowDirectory:
    name: str
    started: threading.Event
    release: threading.Event
    checks: list[str]

    def check_service(self) -> None:
        self.checks.append(self.name)
        self.started.set()
        self.release.wait(10)
        raise DirectoryUnavailable("no server answered")


def test_readiness_is_checked_by_one_probe_while_the_others_wait_for_its_answer():
    directory = SlowDirectory("corp", threading.Event(), threading.Event(), [])
    readiness = Readiness(type("Directories", (), {"directories": [directory]})())
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(readiness.states)
        directory.started.wait(10)
        others = [pool.submit(readiness.states) for _ in range(7)]
        directory.release.set()
        answers = [first.result(), *(other.result() for other in others)]
    assert directory.checks == ["corp"]
    assert answers == [{"corp": "no server answered"}] * 8
