"""The lockout shield: decide before a bind whether the password may go to the directory, record after.

    with shield.attempt(account, password) as attempt:
        if attempt.refused: answer attempt.message_key, no bind
        ... bind ...
        attempt.record(ok=..., wrong=...)

The rules are in rules.py, the state (and every SQL statement) in store.py; docs/security.md explains the
choices.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from ..config import LockoutSettings
from . import rules
from .rules import Facts, Verdict
from .store import Statements, Store

log = logging.getLogger("ssobridge.lockout")

LOCKOUT = "lockout"  # the message key of a soft-locked refusal (the others answer wrong_credentials)
WRONG = "wrong_credentials"
SCRYPT = dict(n=2 ** 14, r=8, p=1, dklen=32)  # ~50 ms and 16 MB: the cost of one known_password check
SCRYPT_PER_SECOND, SCRYPT_BURST = 4, 8
LEASE_SECONDS = 60.0  # longer than any bind (connect_timeout + timeout); a crashed holder frees it then


@dataclass(frozen=True)
class Account:
    """One account as the shield sees it, built by the login provider from the directory's answers."""

    key: str  # rules.account_key: the entry DN, or directory + typed name for nobody
    label: str  # shown by `ssobridge lockouts`: the DN, or the typed name
    name: str  # the username as typed (`ssobridge unlock` finds the account by it, or by the label)
    threshold: int | None  # the directory's T for this account (None: policy not readable)
    observation_seconds: int = 0  # the directory's observation window
    # Wrong passwords the directory counted since an epoch time; None: not readable (counted locally).
    directory_failures: Callable[[float], int | None] = field(default=lambda since: None)


@dataclass(frozen=True)
class Lockout:
    label: str
    failures: int
    until: float


@dataclass(frozen=True)
class _Seen:
    """What _decide read about the account, so that a success with nothing to undo writes nothing."""

    failures: int  # counted within the window, by the directory or locally
    clean: bool  # its lockout_accounts row exists and is not soft-locked
    verifier_at: float | None  # when its known_password verifier was written


class Attempt:
    def __init__(self, shield: Shield, account: Account, password: str, verdict: Verdict, locked: bool,
                 seen: _Seen, lease: str):
        self.shield, self.account, self.password, self.verdict = shield, account, password, verdict
        self.locked = locked  # soft-locked when it began (a known_password bind does not lift that)
        self.seen = seen
        self.lease = lease  # its owner id; given back with the last write (or alone, in attempt())

    @property
    def refused(self) -> bool:
        return self.verdict not in (Verdict.BIND, Verdict.BIND_KNOWN)

    @property
    def message_key(self) -> str:
        return LOCKOUT if self.verdict is Verdict.REFUSE_LOCKED else WRONG

    def record(self, ok: bool, wrong: bool) -> None:
        """The bind's outcome: ok (the password was right), wrong (wrong credentials), or neither."""
        if ok:
            self.shield._succeeded(self)
        elif wrong:
            self.shield._failed(self)


class Shield:
    def __init__(self, settings: LockoutSettings, store: Store, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.store = store
        self.clock = clock
        self.budget = rules.TokenBucket(SCRYPT_PER_SECOND, SCRYPT_BURST)

    def threshold(self, account: Account) -> int:
        return rules.soft_threshold(account.threshold, self.settings.threshold)

    def window(self, account: Account) -> int:
        return rules.window_seconds(account.observation_seconds, self.settings.window_seconds)

    @contextlib.contextmanager
    def attempt(self, account: Account, password: str) -> Iterator[Attempt]:
        lease = self.store.take_lease(account.key, LEASE_SECONDS)
        attempt = None
        try:
            attempt = self._decide(account, password, lease)
            yield attempt
        finally:
            if attempt is None or attempt.lease is not None:  # not given back by a write of record()
                self.store.reads().release_lease(account.key, lease)

    def _decide(self, account: Account, password: str, lease: str) -> Attempt:
        now = self.clock()
        recorded = self.store.reads().recorded(account.key, now - self.window(account),
                                               self.store.digest("wrong", account.key, password),
                                               self.store.digest("spray", password), now)
        failures = max(account.directory_failures(recorded.since) or 0, recorded.failures)
        threshold = self.threshold(account)
        locked = failures >= threshold
        facts = Facts(failures=failures, threshold=threshold, repeated=bool(recorded.repeated),
                      sprayed=bool(recorded.sprayed), known_password=locked and self._is_known(account.key, password))
        verdict = rules.decide(facts)
        if locked:
            with self.store.transaction() as state:
                _lock(state, account, now + self.window(account))
        seen = _Seen(failures, recorded.reset_at is not None and recorded.locked_until == 0, recorded.verifier_at)
        return Attempt(self, account, password, verdict, locked, seen, lease)

    # --- state --------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _last_write(self, attempt: Attempt) -> Iterator[Statements]:
        """One transaction for the outcome's writes and the lease's release."""
        with self.store.transaction() as state:
            yield state
            state.release_lease(attempt.account.key, attempt.lease)
        attempt.lease = None

    def _failed(self, attempt: Attempt) -> None:
        account, now = attempt.account, self.clock()
        spray = self.store.digest("spray", attempt.password)
        with self._last_write(attempt) as state:
            state.add_failure(account.key, now, forget_before=now - 2 * self.window(account))
            state.add_wrong_password(account.key, self.store.digest("wrong", account.key, attempt.password), now,
                                     kept=rules.WRONG_PASSWORDS_KEPT)
            if attempt.verdict is Verdict.BIND_KNOWN:  # the directory refused it: no longer the password
                state.forget_verifier(account.key)
            accounts = state.add_spray(spray, account.key, now, forget_before=now - rules.SPRAY_SECONDS)
            newly_sprayed = accounts > rules.SPRAY_ACCOUNTS and state.block_spray(
                spray, now + rules.SPRAY_BLOCK_SECONDS)
            state.forget_sprays_until(now)
            if state.failures(account.key, now - self.window(account)) >= self.threshold(account):
                _lock(state, account, now + self.window(account))
        if newly_sprayed:
            log.warning("event=password_spray accounts=%d within_s=%d blocked_s=%d "
                        "(one wrong password tried for many accounts; refused for every account now)",
                        accounts, rules.SPRAY_SECONDS, rules.SPRAY_BLOCK_SECONDS)

    def _succeeded(self, attempt: Attempt) -> None:
        account, now, seen = attempt.account, self.clock(), attempt.seen
        # As the directory does: a good password starts the count again. While soft-locked (the attacker
        # is still there) the lock stays; the real user got in through known_password. With no failure
        # to forget and a clean row, there is nothing to start again (the common case writes nothing).
        reset = not attempt.locked and (seen.failures > 0 or not seen.clean)
        verify = self.settings.known_password and (
            seen.verifier_at is None or now - seen.verifier_at >= rules.VERIFIER_REFRESH_SECONDS)
        if not (reset or verify):
            return
        with self._last_write(attempt) as state:
            if reset:
                state.reset(account.key, account.label, account.name, now)
            if not verify:
                return
            salt = secrets.token_bytes(16)
            state.write_verifier(account.key, self._prefilter(account.key, attempt.password), salt,
                                 hashlib.scrypt(attempt.password.encode("utf-8", "surrogatepass"), salt=salt,
                                                **SCRYPT), now)

    def _prefilter(self, key: str, password: str) -> int:
        """16 bits of a keyed hash: a wrong password passes it once in 65,536 tries, so a flood of wrong
        passwords almost never costs an scrypt."""
        return int.from_bytes(self.store.digest("prefilter", key, password)[:2], "big")

    def _is_known(self, key: str, password: str) -> bool:
        if not self.settings.known_password:
            return False
        row = self.store.reads().verifier(key)
        if row is None or row[0] != self._prefilter(key, password) or not self.budget.take():
            return False
        computed = hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=row[1], **SCRYPT)
        return hmac.compare_digest(computed, row[2])

    # --- for the commands ---------------------------------------------------------------------------

    def lockouts(self) -> list[Lockout]:
        """Accounts soft-locked now (by failures this host counted or saw counted by the directory)."""
        now = self.clock()
        return [Lockout(label, failures, until) for label, until, failures in self.store.reads().locked(now)]

    def unlock(self, user: str) -> list[str]:
        """Lift the soft lock of the accounts whose DN or typed name is `user`; their labels."""
        wanted = _bare(user)
        now = self.clock()
        with self.store.transaction() as state:
            found = [(key, label) for key, label, name in state.accounts()
                     if wanted in (_bare(name), rules.normalise_name(label)) or key == rules.account_key("", user, "")]
            for key, _ in found:
                state.unlock(key, now)
        return [label for _, label in found]


def _lock(state: Statements, account: Account, until: float) -> None:
    state.lock(account.key, account.label, account.name, until)


def _bare(name: str) -> str:
    """The user part of DOMAIN\\user or user@suffix, normalised, so `unlock jdoe` finds EXAMPLE\\jdoe."""
    name = rules.normalise_name(name)
    return name.rpartition("\\")[2].rpartition("@")[0] or name.rpartition("\\")[2]
