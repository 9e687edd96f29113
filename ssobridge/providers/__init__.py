"""SmarterTrack decisions: one function per operation, plain Python, no SOAP and no LDAP.

Bridge.call is the single entry point of the wire layer: it checks the Web Service Password, then
hands the inputs to the provider of the operation, or says that provider is not enabled.
"""

from __future__ import annotations

import hmac
from typing import Callable

from ..config import Config
from ..directory import DirectorySet
from .base import ProviderResult, Variables, refused
from .events import EventProvider
from .login import LoginProvider
from .requests import RequestProvider
from .userinfo import UserInfoProvider

# Operation -> the provider tab of SmarterTrack's Settings > Tools > External Providers, as named in
# messages, and its key in [smartertrack.passwords].
OPERATIONS = {
    "Authenticate": "login",
    "GetSignInCookieInfo": "login",
    "GetCustomFieldOptions": "custom field",
    "StartTicket": "ticket",
    "StartChat": "live chat",
    "GetUserDetails": "user information",
    "NotifyEventFired": "event",
}
PASSWORD_KEYS = {
    "Authenticate": "login",
    "GetSignInCookieInfo": "login",
    "GetCustomFieldOptions": "custom_fields",
    "StartTicket": "ticket",
    "StartChat": "chat",
    "GetUserDetails": "user_info",
    "NotifyEventFired": "events",
}

PERMISSION_DENIED = "Permission Denied"


class Bridge:
    def __init__(self, config: Config, directories: DirectorySet, events: EventProvider | None = None):
        self._passwords = {
            operation: config.provider_passwords.get(key, config.web_service_password).encode("utf-8")
            for operation, key in PASSWORD_KEYS.items()
        }
        self._handlers: dict[str, Callable[[Variables], ProviderResult]] = {}
        if directories.directories:
            login = LoginProvider(directories, config.messages, config.login)
            self._handlers["Authenticate"] = login.authenticate
            self._handlers["GetSignInCookieInfo"] = login.sign_in_cookie
        if directories.directories and config.policy.enabled:
            requests = RequestProvider(directories, config.policy)
            self._handlers["GetCustomFieldOptions"] = requests.custom_field_options
            self._handlers["StartTicket"] = requests.start_ticket
            self._handlers["StartChat"] = requests.start_chat
        if directories.directories and config.user_info is not None:
            self._handlers["GetUserDetails"] = UserInfoProvider(directories, config.user_info).user_details
        if events is not None:
            self._handlers["NotifyEventFired"] = events.notify_event_fired

    def call(self, operation: str, pairs: list[tuple[str, str]]) -> ProviderResult:
        variables = Variables.from_pairs(pairs)
        if not self._authorised(operation, variables):
            return refused(PERMISSION_DENIED)
        if variables.repeated:
            return refused(f"Input given more than once: {', '.join(variables.repeated)}")
        handler = self._handlers.get(operation)
        if handler is None:
            return refused(f"The {OPERATIONS[operation]} provider is not enabled in ssobridge.")
        return handler(variables)

    def _authorised(self, operation: str, variables: Variables) -> bool:
        if any(name.lower() == "authpw" for name in variables.repeated):
            return False
        given = variables.get("authPW")
        # Constant time, so the password cannot be guessed byte by byte from response times.
        return given is not None and hmac.compare_digest(given.encode("utf-8"), self._passwords[operation])
