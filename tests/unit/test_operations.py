"""The table of the seven operations: every layer reads the same names, and every handler exists."""

from ssobridge.operations import OPERATIONS, PASSWORD_KEYS
from ssobridge.providers.events import EventProvider
from ssobridge.providers.login import LoginProvider
from ssobridge.providers.requests import RequestProvider
from ssobridge.providers.userinfo import UserInfoProvider
from ssobridge.wire.soap import OPERATION_TYPES

PROVIDER_MODULES = {"login": LoginProvider, "requests": RequestProvider, "userinfo": UserInfoProvider,
                    "events": EventProvider}


def test_every_operation_names_a_provider_method():
    for op in OPERATIONS.values():
        module, _, method = op.handler.partition(".")
        assert callable(getattr(PROVIDER_MODULES[module], method)), op.name


def test_the_wire_serves_exactly_the_operations_of_the_table():
    assert list(OPERATION_TYPES) == list(OPERATIONS)


def test_password_keys_are_one_per_provider_tab():
    assert PASSWORD_KEYS == ("login", "custom_fields", "ticket", "chat", "user_info", "events")
