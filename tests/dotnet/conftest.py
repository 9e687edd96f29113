"""The `dotnet` fixture for these tests; tests/conftest.py may import it too for the whole suite."""

from tests.dotnet_client import dotnet  # noqa: F401
