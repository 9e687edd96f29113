"""Moved to tests/support/services.py; kept so that `from tests.service import ...` (bench/run.py) still works.
Tests import from tests.support.services."""

from tests.support.services import (NS, SOAP11, SOAP12, WEB_SERVICE_PASSWORD, Service, call,  # noqa: F401
                                    directory_toml, envelope, fault_text, free_port, post, start_service,
                                    toml_string)
