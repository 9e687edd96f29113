"""SmarterTrack decisions: one function per operation, plain Python, no SOAP and no LDAP.

Bridge.call is the single entry point of the wire layer: it checks the Web Service Password, then
hands the inputs to the provider of the operation, or says that provider is not enabled. Which
provider method answers which operation is said once, in ssobridge/operations.py.
"""

from __future__ import annotations

import hmac
from typing import Callable

from .. import metrics
from ..cards import CardStore
from ..config import Config
from ..directory import DirectorySet
from ..lockout import Shield
from ..operations import OPERATIONS
from .base import ProviderResult, Variables, refused
from .events import EventProvider
from .login import LoginProvider
from .requests import RequestProvider
from .userinfo import UserInfoProvider

PERMISSION_DENIED = "Permission Denied"


class Bridge:
    def __init__(self, config: Config, directories: DirectorySet, events: EventProvider | None = None,
                 shield: Shield | None = None, cards: CardStore | None = None):
        self._passwords = {
            name: config.provider_passwords.get(op.password_key, config.web_service_password).encode("utf-8")
            for name, op in OPERATIONS.items()
        }
        # Provider module name (as in the table's handler names) -> the provider, when it is enabled.
        providers: dict[str, object] = {}
        if directories.directories:
            providers["login"] = LoginProvider(directories, config.messages, config.login, shield)
        if directories.directories and config.policy.enabled:
            providers["requests"] = RequestProvider(directories, config.policy)
        if directories.directories and config.user_info is not None:
            providers["userinfo"] = UserInfoProvider(directories, config.user_info, cards)
        if events is not None:
            providers["events"] = events
        self._handlers: dict[str, Callable[[Variables], ProviderResult]] = {}
        for name, op in OPERATIONS.items():
            module, _, method = op.handler.partition(".")
            if module in providers:
                self._handlers[name] = getattr(providers[module], method)

    def call(self, operation: str, pairs: list[tuple[str, str]]) -> ProviderResult:
        return metrics.timed_request(operation, lambda: self._decide(operation, pairs), lambda result: result.success)

    def _decide(self, operation: str, pairs: list[tuple[str, str]]) -> ProviderResult:
        variables = Variables.from_pairs(pairs)
        if not self._authorised(operation, variables):
            return refused(PERMISSION_DENIED)
        if variables.repeated:
            return refused(f"Input given more than once: {', '.join(variables.repeated)}")
        handler = self._handlers.get(operation)
        if handler is None:
            return refused(f"The {OPERATIONS[operation].tab} provider is not enabled in ssobridge.")
        return handler(variables)

    def _authorised(self, operation: str, variables: Variables) -> bool:
        if any(name.lower() == "authpw" for name in variables.repeated):
            return False
        given = variables.get("authPW")
        # Constant time, so the password cannot be guessed byte by byte from response times.
        return given is not None and hmac.compare_digest(given.encode("utf-8"), self._passwords[operation])
