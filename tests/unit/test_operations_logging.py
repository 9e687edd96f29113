"""The audit line of each policy decision (providers/requests.py through ssobridge/audit.py) and the JSON log
format (logs.JsonLines), table-driven without servers. tests/test_operations.py proves both on slapd."""

from __future__ import annotations

import json
import logging

import pytest

from ssobridge.logs import JsonLines, RequestValues
from ssobridge.audit import LOGGER, AuditFile
from ssobridge.providers.base import Variables
from tests.support.fake_directory import chat, options, provider, ticket

DN = "uid={},ou=people,dc=example,dc=org"


@pytest.fixture
def audit_lines(tmp_path):
    """The audit logger writing to a file; returns a function reading its lines (time and ms left out)."""
    logger, handler = logging.getLogger(LOGGER), AuditFile(str(tmp_path / "audit.jsonl"))
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    def read() -> list[dict]:
        lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
        for line in lines:
            assert isinstance(line.pop("time"), str) and isinstance(line.pop("ms"), int)
        return lines

    yield read
    logger.removeHandler(handler)
    handler.close()
    logger.setLevel(level)
    logger.propagate = propagate


POLICY_CASES = [
    ("the department refuses", "start_ticket", ticket("jdoejr", "Premium Support", "Help"), {},
     {"operation": "StartTicket", "username": "jdoejr", "dn": DN.format("jdoejr"), "directory": "fake",
      "server": "ldaps://fake", "outcome": "refused", "reason": "department Premium Support",
      "outputs": ["TicketCreation=FALSE"]}),
    ("no rule matches", "start_ticket", ticket("x@elsewhere.test", "Sales", "A question"), {},
     {"operation": "StartTicket", "username": "x@elsewhere.test", "dn": None, "directory": None, "server": None,
      "outcome": "allowed", "reason": "no rule", "outputs": ["TicketCreation=TRUE"]}),
    ("outage, allow", "start_chat", chat("outage", "Support"), {"on_directory_unavailable": "allow"},
     {"operation": "StartChat", "username": "outage", "dn": None, "directory": None, "server": None,
      "outcome": "allowed", "reason": "outage", "outputs": ["ChatCreation=TRUE"]}),
    ("unknown refused", "custom_field_options", options("ghost", "Support"), {"unknown_users": "refuse"},
     {"operation": "GetCustomFieldOptions", "username": "ghost", "dn": None, "directory": None, "server": None,
      "outcome": "refused", "reason": "not found", "outputs": ["CanStartTickets=False", "CanStartChats=False"]}),
]


@pytest.mark.parametrize("name, operation, variables, policy, expected", POLICY_CASES, ids=[c[0] for c in POLICY_CASES])
def test_each_policy_decision_is_one_audit_line(audit_lines, name, operation, variables, policy, expected):
    getattr(provider(**policy), operation)(Variables.from_pairs(list(variables.items())))
    assert audit_lines() == [expected]


def record(msg: str, *args, name: str = "ssobridge.login") -> logging.LogRecord:
    made = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args or None, None)
    RequestValues().filter(made)
    return made


JSON_CASES = [
    ("fields and literals", record("event=login operation=%s outcome=OK user=%r ms=%d", "Authenticate", "jdoe", 41.7),
     {"event": "login", "operation": "Authenticate", "outcome": "OK", "user": "jdoe", "ms": 41}),
    ("a newline stays inside the value", record("event=login user=%r", "a\nb"), {"event": "login", "user": "a\nb"}),
    ("a long value is cut", record("event=login user=%r", "y" * 300),
     {"event": "login", "user": "y" * 256 + "...(300 characters)"}),
    ("none stays null", record("event=login directory=%s", None), {"event": "login", "directory": None}),
    ("words around the fields", record("event=inactive_account user=%r: treated as unknown", "jo"),
     {"event": "inactive_account", "user": "jo", "message": "event=inactive_account user='jo': treated as unknown"}),
    ("granian's own line", record("Listening at: http://127.0.0.1:8290", name="_granian"),
     {"message": "Listening at: http://127.0.0.1:8290"}),
]


@pytest.mark.parametrize("name, made, fields", JSON_CASES, ids=[c[0] for c in JSON_CASES])
def test_json_log_lines_carry_the_event_and_its_fields(name, made, fields):
    line = JsonLines().format(made)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed.pop("time").endswith("Z")
    assert parsed == {"level": "INFO", "logger": made.name, "process": made.process, **fields}
