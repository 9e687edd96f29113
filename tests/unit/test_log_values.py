"""The log filter every line passes: values escaped (no forged lines) and cut to 256 characters."""

from __future__ import annotations

import io
import logging

import pytest

from ssobridge.logs import RequestValues


@pytest.fixture
def log():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestValues())
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("test-log-values")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


@pytest.mark.parametrize("message, args, line", [
    ("user=%r", ("a\nINFO forged",), "user='a\\nINFO forged'"),
    ("user=%s", ("a\r\nb\x00",), "user=a\\r\\nb\\x00"),
    ("user=%s n=%d ms=%.1f none=%s", ("jörg", 3, 2.25, None), "user=jörg n=3 ms=2.2 none=None"),
    ("user=%r", ("x" * 300,), "user='" + "x" * 256 + "'...(300 characters)"),
    ("a=%(user)s", ({"user": "q\nr"},), "a=q\\nr"),
    ("granian says\nTraceback ...", (), "granian says\\nTraceback ..."),
])
def test_values_are_escaped_and_cut(log, message, args, line):
    logger, stream = log
    logger.info(message, *args)
    assert stream.getvalue() == line + "\n"
