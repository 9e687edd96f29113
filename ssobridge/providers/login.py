"""The login provider: Authenticate and GetSignInCookieInfo.

Authentication=OK or FAIL is a decision about the user (Success=true); Success=false is only for a
refused call (wrong authPW, missing input). An outage is never reported as a wrong password.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Mapping

from ..config import LoginSettings
from ..directory import (AccountState, AmbiguousUser, Directory, DirectorySet, DirectoryUnavailable, UserEntry,
                         parse_login_name)
from .base import ProviderResult, Variables, refused

log = logging.getLogger("ssobridge.login")

UNAVAILABLE = "directory_unavailable"


def identity(directory: Directory, entry: UserEntry) -> list[tuple[str, str]]:
    """EmailAddress, DisplayName and cf_ fields by the directory's [attributes]; absent values left out."""
    outputs = []
    for mapping in directory.settings.attributes:
        value = mapping.value(entry.texts)
        if value is not None:
            outputs.append((mapping.name, value))
    return outputs


class LoginProvider:
    def __init__(self, directories: DirectorySet, messages: Mapping[str, str], settings: LoginSettings):
        self.directories = directories
        self.messages = messages
        self.settings = settings

    def authenticate(self, variables: Variables) -> ProviderResult:
        username, password = variables.get("loginUsername"), variables.get("loginPassword")
        missing = [name for name, value in (("loginUsername", username), ("loginPassword", password)) if not value]
        if missing:
            return refused(f"Required Input Missing: {', '.join(missing)}")
        if not password.strip() or "\x00" in password:
            # Refused here: an empty password is an anonymous bind to many directories, and AD
            # counts it toward lockout.
            return self._fail("Authenticate", username, AccountState.WRONG_CREDENTIALS.value, "blank password")
        return self._login("Authenticate", username,
                           lambda directory, entry: directory.verify_password(entry, password.encode("utf-8")))

    def sign_in_cookie(self, variables: Variables) -> ProviderResult:
        username = variables.get("loginUsername")
        if not username:
            return refused("Required Input Missing: loginUsername")
        return self._login("GetSignInCookieInfo", username, self._sso_state)

    def _sso_state(self, directory: Directory, entry: UserEntry) -> AccountState:
        state = directory.account_state(entry)
        if state is AccountState.MUST_CHANGE and self.settings.sso_allow_must_change:
            return AccountState.OK
        if state is AccountState.PASSWORD_EXPIRED and self.settings.sso_allow_password_expired:
            return AccountState.OK
        return state

    def _login(self, operation: str, username: str,
               check: Callable[[Directory, UserEntry], AccountState]) -> ProviderResult:
        started = time.monotonic()
        name = parse_login_name(username)
        if name is None:
            return self._fail(operation, username, AccountState.WRONG_CREDENTIALS.value, "unusable username")
        directory = self.directories.route(name)
        if directory is None:
            return self._fail(operation, username, AccountState.WRONG_CREDENTIALS.value,
                              "no directory claims this domain or UPN suffix")
        try:
            entry = directory.find_user(name)
            if entry is None:
                return self._fail(operation, username, AccountState.WRONG_CREDENTIALS.value,
                                  "no such user", directory)
            state = check(directory, entry)
        except DirectoryUnavailable as e:
            log.error("event=directory_unavailable operation=%s directory=%s error=%r",
                      operation, directory.name, str(e))
            return self._fail(operation, username, UNAVAILABLE, "directory unavailable", directory)
        except AmbiguousUser as e:
            log.error("event=ambiguous_user operation=%s directory=%s error=%r", operation, directory.name, str(e))
            return self._fail(operation, username, AccountState.WRONG_CREDENTIALS.value,
                              "user_filter matched several entries", directory)
        if state is not AccountState.OK:
            return self._fail(operation, username, state.value, state.name.lower(), directory, entry.dn)
        log.info("event=login operation=%s outcome=OK user=%r directory=%s dn=%r ms=%d", operation, username,
                 directory.name, entry.dn, (time.monotonic() - started) * 1000)
        return ProviderResult(True, self.messages[AccountState.OK.value],
                              (("Authentication", "OK"), *identity(directory, entry)))

    def _fail(self, operation: str, username: str, message_key: str, reason: str,
              directory: Directory | None = None, dn: str | None = None) -> ProviderResult:
        log.info("event=login operation=%s outcome=FAIL reason=%r user=%r directory=%s dn=%r", operation, reason,
                 username, directory.name if directory else None, dn)
        return ProviderResult(True, self.messages[message_key], (("Authentication", "FAIL"),))
