"""Shared fixtures, all from tests/support: real directory servers and network edge cases (documented in
tests/support/fixtures.py), ssobridge running on them (tests/support/services.py) and the .NET client."""

pytest_plugins = ["tests.support.strict"]  # a skip fails when CI=true or SSOBRIDGE_STRICT=1

from tests.support.dotnet_client import dotnet  # noqa: F401
from tests.support.events import receiver  # noqa: F401
from tests.support.fixtures import *  # noqa: F401,F403
from tests.support.services import ad_service, ldap_service, site  # noqa: F401
