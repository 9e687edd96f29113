"""The shield's rules as pure functions: thresholds, windows, account keys, what to do with one attempt.

No clock, no storage and no directory call here: every input is given, so the rules are tested in milliseconds
(tests/unit/test_lockout_rules.py) and read like the policy in docs/security.md.
"""

from __future__ import annotations

import enum
import threading
import time
import unicodedata
from dataclasses import dataclass

from ..directory.dn import dn_key

MAX_SOFT_THRESHOLD = 5  # AD FS Extranet Lockout's advice: well below the directory's own threshold
LOCAL_THRESHOLD = 10  # when the directory never locks (T = 0): still no unlimited guessing
UNKNOWN_POLICY_THRESHOLD = 3  # the policy could not be read (e.g. a PSO the service account may not see)
MIN_WINDOW_SECONDS = 30 * 60
WRONG_PASSWORDS_KEPT = 3  # per account: the same wrong password again is answered without a bind
SPRAY_ACCOUNTS = 10  # one wrong password seen for MORE accounts than this ...
SPRAY_SECONDS = 10 * 60  # ... within this time ...
SPRAY_BLOCK_SECONDS = 60 * 60  # ... is refused for every account this long
VERIFIER_REFRESH_SECONDS = 24 * 3600  # a known_password verifier is rewritten at most once a day


def soft_threshold(directory_threshold: int | None, configured: int | None = None) -> int:
    """T_ext: failures within the window after which passwords are refused without a bind.

    T (the directory's threshold) = 0 means the directory never locks: LOCAL_THRESHOLD (or the configured
    number). Otherwise min(5, floor(T/2)) by default, never above T - 2, and at least 1: for T <= 2 the
    directory would lock at once anyway, and refusing the first password too would lock out the user.
    None (the policy could not be read) is taken as T = 3, the strictest common policy.
    """
    threshold = UNKNOWN_POLICY_THRESHOLD if directory_threshold is None else directory_threshold
    if threshold <= 0:
        return configured or LOCAL_THRESHOLD
    chosen = configured or min(MAX_SOFT_THRESHOLD, threshold // 2)
    return max(1, min(chosen, threshold - 2))


def window_seconds(observation_seconds: int, configured: int | None = None) -> int:
    """W: how long a failure counts. Longer than the directory's observation window, so the shield never
    forgets a failure the directory still counts."""
    return configured or max(MIN_WINDOW_SECONDS, observation_seconds + 60)


def normalise_name(text: str) -> str:
    """A typed name as one key: NFKC and casefolded, so "ｚｏｅ" and "Zoe" are the same person."""
    return unicodedata.normalize("NFKC", text).casefold().strip()


def account_key(directory: str, dn: str | None, typed_name: str) -> str:
    """The key of an account's counters: its entry DN, one text however it is written (`ssobridge unlock` may
    be given it in another case or escaping); for nobody, the directory and the typed name."""
    if dn is not None:
        return "dn:" + (dn_key(dn) or dn.strip().casefold())  # text that is no DN (typed to unlock) as it is
    return f"name:{normalise_name(directory)}:{normalise_name(typed_name)}"


INVISIBLE_CATEGORIES = ("Zs", "Cc", "Cf")


def is_blank_password(password: str) -> bool:
    """Only whitespace, control or invisible format characters: no directory should ever see it."""
    return all(unicodedata.category(c) in INVISIBLE_CATEGORIES or c.isspace() for c in password)


class Verdict(enum.Enum):
    BIND = "bind"  # send the password to the directory
    BIND_KNOWN = "bind known password"  # soft-locked, but it is the password of the last good login
    REFUSE_LOCKED = "soft-locked"  # the lockout message, no bind
    REFUSE_REPEATED = "same wrong password again"  # wrong credentials, no bind, not counted
    REFUSE_SPRAYED = "password sprayed across accounts"  # wrong credentials, no bind, not counted


@dataclass(frozen=True)
class Facts:
    """What is known about one attempt before the bind."""

    failures: int  # max(the directory's count, the local count) within the window
    threshold: int  # T_ext
    repeated: bool  # the password is one of the account's last wrong ones
    sprayed: bool  # the password is blocked as sprayed
    known_password: bool  # the password matches the account's known_password verifier


def decide(facts: Facts) -> Verdict:
    if facts.sprayed:
        return Verdict.REFUSE_SPRAYED
    if facts.failures >= facts.threshold:
        return Verdict.BIND_KNOWN if facts.known_password else Verdict.REFUSE_LOCKED
    if facts.repeated:
        return Verdict.REFUSE_REPEATED
    return Verdict.BIND


class TokenBucket:
    """A global budget (per process): scrypt runs at most `rate` times a second, `burst` at once."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic):
        self.rate, self.burst, self._clock = rate, burst, clock
        self._tokens, self._at = float(burst), clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True
