"""The login provider: Authenticate and GetSignInCookieInfo.

Authentication=OK or FAIL is a decision about the user (Success=true); Success=false is only for a
refused call (wrong authPW, missing input). An outage is never reported as a wrong password.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from ..config import LoginSettings
from ..directory import (AccountState, AmbiguousUser, Directory, DirectorySet, DirectoryUnavailable, UserEntry,
                         parse_login_name)
from .base import ProviderResult, Variables, refused

log = logging.getLogger("ssobridge.login")

UNAVAILABLE = "directory_unavailable"
# The [messages] key for each account state: what SmarterTrack shows the user.
MESSAGE_KEYS = {
    AccountState.OK: "login_ok",
    AccountState.WRONG_CREDENTIALS: "wrong_credentials",
    AccountState.DISABLED: "account_disabled",
    AccountState.LOCKED: "account_locked",
    AccountState.ACCOUNT_EXPIRED: "account_expired",
    AccountState.PASSWORD_EXPIRED: "password_expired",
    AccountState.MUST_CHANGE: "must_change_password",
    AccountState.LOGON_RESTRICTED: "logon_restricted",
}
WRONG = MESSAGE_KEYS[AccountState.WRONG_CREDENTIALS]


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


class LoginProvider:
    def __init__(self, directories: DirectorySet, messages: Mapping[str, str], settings: LoginSettings):
        self.directories = directories
        self.messages = messages
        self.settings = settings

    def authenticate(self, variables: Variables, trace: LoginTrace | None = None) -> ProviderResult:
        username, password = variables.get("loginUsername"), variables.get("loginPassword")
        missing = [name for name, value in (("loginUsername", username), ("loginPassword", password)) if not value]
        if missing:
            return refused(f"Required Input Missing: {', '.join(missing)}")
        trace = trace or LoginTrace("Authenticate", username)
        if not password.strip() or "\x00" in password:
            # Refused here: an empty password is an anonymous bind to many directories, and AD
            # counts it toward lockout.
            trace.reason = "blank password"
            return self._finish(trace, WRONG)
        return self._login(trace, lambda directory, entry: directory.verify_password(entry, password.encode("utf-8")))

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

    def _login(self, trace: LoginTrace, check: Callable[[Directory, UserEntry], AccountState]) -> ProviderResult:
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
        try:
            trace.entry = entry = directory.find_user(name)
            if entry is None:
                trace.reason = "no such user"
                return self._finish(trace, WRONG)
            trace.state = state = check(directory, entry)
        except DirectoryUnavailable as e:
            trace.reason, trace.error = "directory unavailable", str(e)
            return self._finish(trace, UNAVAILABLE)
        except AmbiguousUser as e:  # the rule: see directory.directory
            trace.reason, trace.error = "user_filter matched several entries", str(e)
            return self._finish(trace, WRONG)
        if state is not AccountState.OK:
            trace.reason = state.name.lower()
            return self._finish(trace, MESSAGE_KEYS[state])
        log.info("event=login operation=%s outcome=OK user=%r directory=%s server=%s dn=%r ms=%d",
                 trace.operation, trace.username, directory.name, entry.server, entry.dn,
                 (time.monotonic() - started) * 1000)
        return ProviderResult(True, self.messages[MESSAGE_KEYS[AccountState.OK]],
                              (("Authentication", "OK"), *identity(directory, entry)))

    def _finish(self, trace: LoginTrace, message_key: str) -> ProviderResult:
        """Authentication=FAIL with the Message of `message_key`, and one log line saying why."""
        if trace.error:
            log.error("event=%s operation=%s directory=%s error=%r",
                      "directory_unavailable" if message_key == UNAVAILABLE else "ambiguous_user",
                      trace.operation, trace.directory.name if trace.directory else None, trace.error)
        log.info("event=login operation=%s outcome=FAIL reason=%r user=%r directory=%s server=%s dn=%r",
                 trace.operation, trace.reason, trace.username, trace.directory.name if trace.directory else None,
                 trace.entry.server if trace.entry else None, trace.entry.dn if trace.entry else None)
        return ProviderResult(True, self.messages[message_key], (("Authentication", "FAIL"),))
