"""Shared fixtures: real directory servers and network edge cases (documented in tests/support/fixtures.py)."""

from tests.support.fixtures import *  # noqa: F401,F403
from tests.dotnet_client import dotnet  # noqa: F401,E402
from tests.test_login import ad_service, ldap_service, site  # noqa: F401,E402
