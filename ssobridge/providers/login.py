"""The login provider: Authenticate and GetSignInCookieInfo.

Authentication=OK or FAIL is a decision about the user (Success=true); Success=false is only for a
refused call (wrong authPW, missing input). An outage is never reported as a wrong password.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Mapping

from .. import audit, metrics
from ..config import LoginSettings
from ..directory import (AccountState, Directory, DirectorySet, DirectoryUnavailable, LoginName, Outcome,
                         ServiceAccountRefused, UserEntry, parse_login_name)
from ..lockout import LOCKOUT, Account, LeaseTimeout, Shield, is_blank_password
from ..lockout.rules import account_key
from .base import ProviderResult, Variables, refused

log = logging.getLogger("ssobridge.login")

UNAVAILABLE = "directory_unavailable"
WRONG = AccountState.WRONG_CREDENTIALS.message_key
LOCKED = AccountState.LOCKED


def identity(directory: Directory, entry: UserEntry) -> list[tuple[str, str]]:
    """EmailAddress, DisplayName and cf_ fields by the directory's [attributes]; absent values left out."""
    outputs = []
    for mapping in directory.settings.attributes:
        value = mapping.value(entry.texts)
        if value is not None:
            outputs.append((mapping.name, value))
    return outputs


@dataclass
class LoginTrace:
    """What one login did, step by step: for the log line and for `ssobridge test-login`."""

    operation: str
    username: str
    directory: Directory | None = None
    search_filter: str | None = None
    entry: UserEntry | None = None
    state: AccountState | None = None
    reason: str | None = None  # why it failed, in words
    error: str | None = None  # the directory problem, when it was unavailable
    service_refused: bool = False  # unavailable because the service account is refused (the guard logged it)
    started: float = field(default_factory=time.monotonic)


class LoginProvider:
    def __init__(self, directories: DirectorySet, messages: Mapping[str, str], settings: LoginSettings,
                 shield: Shield | None = None):
        self.directories = directories
        self.messages = {**messages, "lockout": shield.settings.message} if shield else messages
        self.settings = settings
        self.shield = shield

    def authenticate(self, variables: Variables, trace: LoginTrace | None = None) -> ProviderResult:
        username, password = variables.get("loginUsername"), variables.get("loginPassword")
        missing = [name for name, value in (("loginUsername", username), ("loginPassword", password)) if not value]
        if missing:
            return refused(f"Required Input Missing: {', '.join(missing)}")
        trace = trace or LoginTrace("Authenticate", username)
        if is_blank_password(password) or "\x00" in password:
            # Refused here: an empty password is an anonymous bind to many directories, and AD
            # counts it toward lockout; one of only spaces or invisible characters is nobody's.
            trace.reason = "blank password"
            return self._finish(trace, WRONG)
        return self._login(trace, lambda directory, entry: directory.verify_password(entry, password.encode("utf-8")),
                           password)

    def sign_in_cookie(self, variables: Variables, trace: LoginTrace | None = None) -> ProviderResult:
        username = variables.get("loginUsername")
        if not username:
            return refused("Required Input Missing: loginUsername")
        return self._login(trace or LoginTrace("GetSignInCookieInfo", username), self._sso_state)

    def _sso_state(self, directory: Directory, entry: UserEntry) -> AccountState:
        state = directory.account_state(entry)
        if state is AccountState.MUST_CHANGE and self.settings.sso_allow_must_change:
            return AccountState.OK
        if state is AccountState.PASSWORD_EXPIRED and self.settings.sso_allow_password_expired:
            return AccountState.OK
        return state

    def _login(self, trace: LoginTrace, check: Callable[[Directory, UserEntry], AccountState],
               password: str | None = None) -> ProviderResult:
        started = time.monotonic()
        name = parse_login_name(trace.username)
        if name is None:
            trace.reason = "unusable username"
            return self._finish(trace, WRONG)
        trace.directory = directory = self.directories.route(name)
        if directory is None:
            trace.reason = "no directory claims this domain or UPN suffix"
            return self._finish(trace, WRONG)
        trace.search_filter = directory.user_filter(name)
        found = directory.find(name)
        if found.outcome is Outcome.UNAVAILABLE:
            return self._unavailable(trace, found.error, found.service_refused)
        if found.outcome is Outcome.AMBIGUOUS:  # the rule: see directory.directory
            trace.reason, trace.error = "user_filter matched several entries", found.error
            return self._finish(trace, WRONG)
        trace.entry = entry = found.entry
        try:
            if password is not None and self.shield is not None:
                return self._shielded(trace, directory, name, password, check, started)
            if entry is None:
                trace.reason = "no such user"
                return self._finish(trace, WRONG)
            trace.state = state = check(directory, entry)
        except DirectoryUnavailable as e:  # a later question (the bind, the lockout policy) found it down
            return self._unavailable(trace, str(e), isinstance(e, ServiceAccountRefused))
        return self._outcome(trace, state, started)

    def _unavailable(self, trace: LoginTrace, error: str, service_refused: bool) -> ProviderResult:
        trace.reason, trace.error, trace.service_refused = "directory unavailable", error, service_refused
        return self._finish(trace, UNAVAILABLE)

    def _shielded(self, trace: LoginTrace, directory: Directory, name: LoginName, password: str,
                  check: Callable[[Directory, UserEntry], AccountState], started: float) -> ProviderResult:
        """The lockout shield around the bind (see ssobridge/lockout): the same steps for nobody as for
        somebody, so its answers reveal no account."""
        entry = trace.entry
        policy = directory.lockout_policy(entry)
        account = Account(
            key=account_key(directory.name, entry.dn if entry else None, name.user),
            label=entry.dn if entry else f"{directory.name}: {trace.username}", name=trace.username,
            threshold=policy.threshold if policy.known else None, observation_seconds=policy.observation_seconds,
            directory_failures=lambda since: (
                directory.failures_since(entry, datetime.fromtimestamp(since, timezone.utc)) if entry else None))
        try:
            with self.shield.attempt(account, password) as attempt:
                if attempt.refused:
                    trace.reason = attempt.verdict.value
                    metrics.LOCKOUT_REFUSALS.labels(attempt.verdict.name.lower().removeprefix("refuse_")).inc()
                    # Locked in the directory itself: say so, as a bind would have (AD 775, ppolicy accountLocked).
                    locked = attempt.message_key == LOCKOUT and entry and directory.account_state(entry) is LOCKED
                    return self._finish(trace, LOCKED.message_key if locked else attempt.message_key)
                trace.state = state = check(directory, entry) if entry else AccountState.WRONG_CREDENTIALS
                attempt.record(ok=state is AccountState.OK, wrong=state is AccountState.WRONG_CREDENTIALS)
        except LeaseTimeout:
            return self._unavailable(trace, "another attempt for this account is still running", False)
        if entry is None:
            trace.reason = "no such user"
            return self._finish(trace, WRONG)
        return self._outcome(trace, state, started)

    def _outcome(self, trace: LoginTrace, state: AccountState, started: float) -> ProviderResult:
        directory, entry = trace.directory, trace.entry
        if state is not AccountState.OK:
            trace.reason = state.name.lower()
            return self._finish(trace, state.message_key)
        metrics.login(trace.operation, "ok", state.message_key)
        log.info("event=login operation=%s outcome=OK user=%r directory=%s server=%s dn=%r ms=%d",
                 trace.operation, trace.username, directory.name, entry.server, entry.dn,
                 (time.monotonic() - started) * 1000)
        audit.decision(trace.operation, trace.username, "OK", None, directory, entry, trace.started)
        return ProviderResult(True, self.messages[state.message_key],
                              (("Authentication", "OK"), *identity(directory, entry)))

    def _finish(self, trace: LoginTrace, message_key: str) -> ProviderResult:
        """Authentication=FAIL with the Message of `message_key`, and one log line saying why."""
        if trace.error:
            # A refused service account is one ERROR line, the guard's; the calls it blocks are WARNINGs.
            log.log(logging.WARNING if trace.service_refused else logging.ERROR,
                    "event=%s operation=%s directory=%s error=%r",
                    "directory_unavailable" if message_key == UNAVAILABLE else "ambiguous_user",
                    trace.operation, trace.directory.name if trace.directory else None, trace.error)
        metrics.login(trace.operation, "fail", message_key)
        log.info("event=login operation=%s outcome=FAIL reason=%r user=%r directory=%s server=%s dn=%r",
                 trace.operation, trace.reason, trace.username, trace.directory.name if trace.directory else None,
                 trace.entry.server if trace.entry else None, trace.entry.dn if trace.entry else None)
        audit.decision(trace.operation, trace.username, "FAIL", trace.reason, trace.directory, trace.entry,
                       trace.started)
        return ProviderResult(True, self.messages[message_key], (("Authentication", "FAIL"),))
