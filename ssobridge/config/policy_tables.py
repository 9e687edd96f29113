"""Parsing [policy], [[department]], [[field]], [[ticket_rule]] and [[chat_rule]] into a Policy.

The rules themselves, and whether one applies to someone, are in ssobridge/policy.py.
"""

from __future__ import annotations

import re

from ..mapping import Candidate, OutputMapping
from ..policy import (
    LOCATION_NAMES,
    LOCATIONS,
    Access,
    Conditions,
    DepartmentRule,
    FieldRule,
    InactiveAccounts,
    OnDirectoryUnavailable,
    Policy,
    RequestRule,
    UnknownUsers,
    policy_contradictions,
)
from .reader import Table

POLICY_TABLES = ("policy", "department", "field", "ticket_rule", "chat_rule")


def parse_policy(raw: dict, problems: list[str]) -> Policy:
    settings = Table(raw.get("policy", {}), "policy", problems, Policy)
    unknown = settings.member("unknown_users", UnknownUsers, settings.get("unknown_users", str),
                              'must be "apply_rules" or "refuse"')
    inactive = settings.member("inactive_accounts", InactiveAccounts, settings.get("inactive_accounts", str),
                               'must be "as_unknown" (not in the directory) or "as_member"')
    outage = settings.member("on_directory_unavailable", OnDirectoryUnavailable,
                             settings.get("on_directory_unavailable", str),
                             'must be "refuse" (fail closed) or "allow" (fail open)')
    policy = Policy(
        unknown_users=unknown,
        unknown_message=settings.get("unknown_message", str),
        inactive_accounts=inactive,
        on_directory_unavailable=outage,
        unavailable_message=settings.get("unavailable_message", str),
        refused_message=settings.get("refused_message", str),
        departments=tuple(_department(Table(d, f"department[{i}]", problems), settings.default("refused_message"))
                          for i, d in enumerate(_list(raw, "department", problems))),
        fields=tuple(_field(Table(d, f"field[{i}]", problems)) for i, d in enumerate(_list(raw, "field", problems))),
        ticket_rules=tuple(_request_rule(Table(d, f"ticket_rule[{i}]", problems), tickets=True)
                           for i, d in enumerate(_list(raw, "ticket_rule", problems))),
        chat_rules=tuple(_request_rule(Table(d, f"chat_rule[{i}]", problems), tickets=False)
                         for i, d in enumerate(_list(raw, "chat_rule", problems))),
    )
    settings.reject_unknown()
    problems.extend(policy_contradictions(policy))
    return policy


def _list(raw: dict, name: str, problems: list[str]) -> list:
    value = raw.get(name, [])
    if not isinstance(value, list):
        problems.append(f"{name}: write it as [[{name}]] tables")
        return []
    return value


def _access(r: Table, allow_key: str, deny_key: str) -> Access:
    return Access(allow=r.names(allow_key, Access().allow), deny=r.names(deny_key, Access().deny))


def _department(r: Table, default_message: str) -> DepartmentRule:
    name = r.get("name", str, "")
    if not name.strip():
        r.problem("name", 'is required: a SmarterTrack department name, or "*" for all others')
    rule = DepartmentRule(name=name.strip(), tickets=_access(r, "tickets", "tickets_deny"),
                          chats=_access(r, "chats", "chats_deny"), message=r.get("message", str, default_message))
    r.reject_unknown()
    return rule


def _conditions(r: Table, subject_allowed: bool = True) -> Conditions:
    locations = []
    for location in r.names("locations", LOCATIONS):
        if location.upper() not in LOCATION_NAMES:
            r.problem("locations", f"{location!r} is not PRE, or REGULAR (also called NORMAL: the compose page)")
        else:
            locations.append(LOCATION_NAMES[location.upper()])
    fields = r.get("when_fields", dict, {})
    if not all(isinstance(v, str) for v in fields.values()):
        r.problem("when_fields", 'must be a table of field = "value"')
        fields = {}
    words = r.names("subject_words") if subject_allowed else ()
    texts = r.names("subject_contains") if subject_allowed else ()
    for key in () if subject_allowed else ("subject_words", "subject_contains"):
        if key in r.data:
            r.knows(key)
            r.problem(key, "only a [[ticket_rule]] can test the subject (StartTicket is the one call that has one)")
    return Conditions(departments=r.names("departments"), groups=_access(r, "groups", "groups_deny"),
                      subject_words=words, subject_contains=texts, fields=tuple(fields.items()),
                      locations=tuple(sorted(set(locations), key=LOCATIONS.index)))


def _field(r: Table) -> FieldRule:
    name = r.get("name", str, "")
    if not name.strip():
        r.problem("name", "is required: the SmarterTrack custom field name")
    pattern = r.get("options_from_groups", str)
    compiled = None
    if pattern is not None:
        try:
            compiled = re.compile(pattern, re.IGNORECASE)
        except re.error as e:
            r.problem("options_from_groups", f"is not a valid regular expression: {e}")
    options = r.names("options", None)
    rule = FieldRule(field=name.strip(), when=_conditions(r, subject_allowed=False),
                     visible=r.get("visible", bool), required=r.get("required", bool),
                     first_step=r.get("first_step", bool), options=options, options_from_groups=compiled,
                     options_from_attribute=r.get("options_from_attribute", str), label=r.key)
    if sum(x is not None for x in (options, compiled, rule.options_from_attribute)) > 1:
        r.problem("options", "give only one of options, options_from_groups, options_from_attribute")
    r.reject_unknown()
    return rule


def _request_rule(r: Table, tickets: bool) -> RequestRule:
    when = _conditions(r, subject_allowed=tickets)
    set_fields = []
    for name, value in r.get("set", dict, {}).items():
        candidates = [value] if isinstance(value, str) else value
        if not name.startswith("cf_") or not isinstance(candidates, list) or not candidates:
            r.problem("set", f'{name!r}: use "cf_<Field>" = "attribute" (or a list, or a "{{template}}")')
            continue
        mapping = OutputMapping(name, tuple(Candidate(c) for c in candidates))
        for candidate in mapping.candidates:
            if candidate.problem():
                r.problem("set", candidate.problem())
        set_fields.append(mapping)
    rule = RequestRule(when=when, refuse=r.get("refuse", bool, False), message=r.get("message", str),
                       department=r.get("department", str), group=r.get("group", str) if tickets else None,
                       set_fields=tuple(set_fields), label=r.key)
    if rule.refuse and (rule.department or rule.group or rule.set_fields):
        r.problem("refuse", "a refusing rule cannot also re-route or set fields")
    if not (rule.refuse or rule.department or rule.group or rule.set_fields):
        r.problem("refuse", "the rule does nothing: give refuse, department, group or set")
    r.reject_unknown()
    return rule
