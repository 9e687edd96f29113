"""Directory groups decide who may contact which department, what they are asked, and where tickets land.

The rules are data, read from the config file and checked at start; this module also says whether a
rule applies to someone (pure logic, no LDAP). The providers in ssobridge/providers/requests.py apply
them. Written in the config as:

    [policy]                     unknown users, directory outages
    [[department]]               who may start tickets and chats in a department ("*" = any other)
    [[field]]                    custom fields: visible, required, list options, first step
    [[ticket_rule]]              StartTicket: refuse, re-route, set cf_ fields; first match wins
    [[chat_rule]]                StartChat: the same for chats

Group names: a group's DN, its name (cn or sAMAccountName) or its SID; case-insensitive, DNs compared
as data. Three words stand for people rather than groups: "everyone", "directory-users" (anyone found in
a directory) and "not-in-directory" (a sender or username no directory knows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .mapping import Candidate, OutputMapping

EVERYONE = "everyone"
DIRECTORY_USERS = "directory-users"
NOT_IN_DIRECTORY = "not-in-directory"
KEYWORDS = (EVERYONE, DIRECTORY_USERS, NOT_IN_DIRECTORY)
LOCATIONS = ("PRE", "REGULAR")
ANY_DEPARTMENT = "*"


@dataclass(frozen=True)
class Person:
    """Who is asking, as the rules see them."""

    known: bool  # found in a directory
    is_member: Callable[[str], bool] = lambda group: False  # is this person in the named group?
    label: str = ""


def names_match(person: Person, names: Iterable[str]) -> bool:
    for name in names:
        lowered = name.lower()
        if lowered == EVERYONE or (lowered == DIRECTORY_USERS and person.known) or \
                (lowered == NOT_IN_DIRECTORY and not person.known) or person.is_member(name):
            return True
    return False


@dataclass(frozen=True)
class Access:
    """Who may: members of any `allow` group, unless they are in a `deny` group (deny wins)."""

    allow: tuple[str, ...] = (EVERYONE,)
    deny: tuple[str, ...] = ()

    def permits(self, person: Person) -> bool:
        return names_match(person, self.allow) and not names_match(person, self.deny)

    def describe(self) -> str:
        text = f"allow {', '.join(self.allow) or 'nobody'}"
        return text + (f", deny {', '.join(self.deny)}" if self.deny else "")


@dataclass(frozen=True)
class DepartmentRule:
    name: str  # a SmarterTrack department name, or "*" for every department not listed
    tickets: Access
    chats: Access
    message: str  # shown when refused

    def applies_to(self, department: str) -> bool:
        return self.name == ANY_DEPARTMENT or self.name.lower() == department.strip().lower()


@dataclass(frozen=True)
class Conditions:
    """When a field rule or a ticket/chat rule applies; every given condition must hold."""

    departments: tuple[str, ...] = ()  # empty: any
    groups: Access = Access()
    subject_words: tuple[str, ...] = ()  # any of these words in the ticket subject
    fields: tuple[tuple[str, str], ...] = ()  # cf_ values already chosen: (field, value)
    locations: tuple[str, ...] = LOCATIONS

    def check(self, person: Person, department: str, subject: str = "", custom_fields: dict | None = None,
              location: str = "REGULAR") -> str | None:
        """None when the conditions hold; else the first that does not, in words (for `explain`)."""
        if self.departments and department.strip().lower() not in {d.lower() for d in self.departments}:
            return f"department is not {' or '.join(self.departments)}"
        if location not in self.locations:
            return f"location is not {' or '.join(self.locations)}"
        if not self.groups.permits(person):
            return f"groups: {self.groups.describe()}"
        if self.subject_words:
            words = set(re.findall(r"\w+", subject.lower()))
            if not words & {w.lower() for w in self.subject_words}:
                return f"subject has none of the words {', '.join(self.subject_words)}"
        chosen = {k.lower(): v for k, v in (custom_fields or {}).items()}
        for name, value in self.fields:
            if chosen.get(name.lower(), "").strip().lower() != value.strip().lower():
                return f"custom field {name!r} is not {value!r}"
        return None

    @property
    def unconditional(self) -> bool:
        return not (self.departments or self.subject_words or self.fields) and \
            self.groups == Access() and self.locations == LOCATIONS


@dataclass(frozen=True)
class FieldRule:
    field: str  # the SmarterTrack custom field name
    when: Conditions
    visible: bool | None = None
    required: bool | None = None
    first_step: bool | None = None  # DisplayWithInformationLookup: shown on the first step (PRE)
    options: tuple[str, ...] | None = None  # a static list
    options_from_groups: re.Pattern | None = None  # names of the user's groups matching; group 1 if any
    options_from_attribute: str | None = None  # a (multi-valued) attribute of the user
    label: str = ""

    @property
    def changes_options(self) -> bool:
        return self.options is not None or self.options_from_groups is not None or \
            self.options_from_attribute is not None


@dataclass(frozen=True)
class RequestRule:
    """A [[ticket_rule]] or [[chat_rule]]: if `when` holds, do this (first match wins)."""

    when: Conditions
    refuse: bool = False
    message: str | None = None
    department: str | None = None  # re-route: departmentName
    group: str | None = None  # re-route: groupName (tickets only)
    set_fields: tuple[OutputMapping, ...] = ()  # cf_<Field> from directory attributes
    label: str = ""


@dataclass(frozen=True)
class Policy:
    unknown_users: str = "apply_rules"  # or "refuse": nobody outside the directory may start anything
    unknown_message: str = "We could not find you in our directory. Please contact us by phone."
    on_directory_unavailable: str = "refuse"  # or "allow": what StartTicket/StartChat do in an outage
    unavailable_message: str = "The directory is unavailable, so we cannot check your request. Please try again."
    departments: tuple[DepartmentRule, ...] = ()
    fields: tuple[FieldRule, ...] = ()
    ticket_rules: tuple[RequestRule, ...] = ()
    chat_rules: tuple[RequestRule, ...] = ()
    refused_message: str = "You are not permitted to contact this department."

    @property
    def enabled(self) -> bool:
        return bool(self.departments or self.fields or self.ticket_rules or self.chat_rules)

    def department(self, name: str) -> DepartmentRule:
        exact = next((d for d in self.departments if d.name != ANY_DEPARTMENT and d.applies_to(name)), None)
        return exact or next((d for d in self.departments if d.name == ANY_DEPARTMENT),
                             DepartmentRule(ANY_DEPARTMENT, Access(), Access(), self.refused_message))

    def attributes(self) -> tuple[str, ...]:
        """The user attributes the rules read: list options and cf_ values set by ticket/chat rules."""
        names = [r.options_from_attribute for r in self.fields if r.options_from_attribute]
        names += [a for r in (*self.ticket_rules, *self.chat_rules) for m in r.set_fields for a in m.attributes]
        return tuple(dict.fromkeys(names))

    def group_names(self) -> set[str]:
        """Every group the rules name (not the keywords): `ssobridge check` looks each one up."""
        accesses = [a for d in self.departments for a in (d.tickets, d.chats)]
        accesses += [r.when.groups for r in (*self.fields, *self.ticket_rules, *self.chat_rules)]
        return {n for a in accesses for n in (*a.allow, *a.deny) if n.lower() not in KEYWORDS}


# --- parsing ------------------------------------------------------------------------------------------

class _Reader:
    """Typed reads from one rule table; problems collected as 'key: what is wrong'."""

    def __init__(self, data: Any, key: str, problems: list[str]):
        self.key, self.problems = key, problems
        self.data = data if isinstance(data, dict) else {}
        if not isinstance(data, dict):
            problems.append(f"{key}: must be a table")
        self.used: set[str] = set()

    def problem(self, name: str, text: str) -> None:
        self.problems.append(f"{self.key}.{name}: {text}")

    def get(self, name: str, kind, default=None):
        self.used.add(name)
        value = self.data.get(name, default)
        if value is not default and not isinstance(value, kind):
            self.problem(name, f"has the wrong type ({type(value).__name__})")
            return default
        return value

    def names(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.get(name, (list, str), None)
        if value is None:
            return default
        value = [value] if isinstance(value, str) else value
        if not all(isinstance(v, str) and v.strip() for v in value):
            self.problem(name, "must be a list of names")
            return default
        return tuple(v.strip() for v in value)

    def done(self) -> None:
        for name in self.data:
            if name not in self.used:
                self.problem(name, "unknown key (misspelt?)")


def parse_policy(raw: dict, problems: list[str]) -> Policy:
    settings = _Reader(raw.get("policy", {}), "policy", problems)
    unknown = settings.get("unknown_users", str, "apply_rules")
    if unknown not in ("apply_rules", "refuse"):
        settings.problem("unknown_users", 'must be "apply_rules" or "refuse"')
    outage = settings.get("on_directory_unavailable", str, "refuse")
    if outage not in ("refuse", "allow"):
        settings.problem("on_directory_unavailable", 'must be "refuse" (fail closed) or "allow" (fail open)')
    defaults = Policy()
    policy = Policy(
        unknown_users=unknown,
        unknown_message=settings.get("unknown_message", str, defaults.unknown_message),
        on_directory_unavailable=outage,
        unavailable_message=settings.get("unavailable_message", str, defaults.unavailable_message),
        refused_message=settings.get("refused_message", str, defaults.refused_message),
        departments=tuple(_department(_Reader(d, f"department[{i}]", problems), defaults.refused_message)
                          for i, d in enumerate(_list(raw, "department", problems))),
        fields=tuple(_field(_Reader(d, f"field[{i}]", problems)) for i, d in enumerate(_list(raw, "field", problems))),
        ticket_rules=tuple(_request_rule(_Reader(d, f"ticket_rule[{i}]", problems), tickets=True)
                           for i, d in enumerate(_list(raw, "ticket_rule", problems))),
        chat_rules=tuple(_request_rule(_Reader(d, f"chat_rule[{i}]", problems), tickets=False)
                         for i, d in enumerate(_list(raw, "chat_rule", problems))),
    )
    settings.done()
    problems.extend(policy_contradictions(policy))
    return policy


def _list(raw: dict, name: str, problems: list[str]) -> list:
    value = raw.get(name, [])
    if not isinstance(value, list):
        problems.append(f"{name}: write it as [[{name}]] tables")
        return []
    return value


def _access(r: _Reader, allow_key: str, deny_key: str) -> Access:
    return Access(allow=r.names(allow_key, (EVERYONE,)), deny=r.names(deny_key))


def _department(r: _Reader, default_message: str) -> DepartmentRule:
    name = r.get("name", str, "")
    if not name.strip():
        r.problem("name", 'is required: a SmarterTrack department name, or "*" for all others')
    rule = DepartmentRule(name=name.strip(), tickets=_access(r, "tickets", "tickets_deny"),
                          chats=_access(r, "chats", "chats_deny"), message=r.get("message", str, default_message))
    r.done()
    return rule


def _conditions(r: _Reader, subject_allowed: bool = True) -> Conditions:
    locations = tuple(location.upper() for location in r.names("locations", LOCATIONS))
    for location in locations:
        if location not in LOCATIONS:
            r.problem("locations", f"{location!r} is not PRE or REGULAR")
    fields = r.get("when_fields", dict, {})
    if not all(isinstance(v, str) for v in fields.values()):
        r.problem("when_fields", 'must be a table of field = "value"')
        fields = {}
    words = r.names("subject_words") if subject_allowed else ()
    return Conditions(departments=r.names("departments"), groups=_access(r, "groups", "groups_deny"),
                      subject_words=words, fields=tuple(fields.items()), locations=locations)


def _field(r: _Reader) -> FieldRule:
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
    options = r.names("options", None) if "options" in r.data else None
    rule = FieldRule(field=name.strip(), when=_conditions(r, subject_allowed=False),
                     visible=r.get("visible", bool), required=r.get("required", bool),
                     first_step=r.get("first_step", bool), options=options, options_from_groups=compiled,
                     options_from_attribute=r.get("options_from_attribute", str), label=r.key)
    if sum(x is not None for x in (options, compiled, rule.options_from_attribute)) > 1:
        r.problem("options", "give only one of options, options_from_groups, options_from_attribute")
    r.done()
    return rule


def _request_rule(r: _Reader, tickets: bool) -> RequestRule:
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
    r.done()
    return rule


def policy_contradictions(policy: Policy) -> list[str]:
    """Rules that contradict themselves or can never apply (first match wins)."""
    problems = []
    seen = set()
    for index, department in enumerate(policy.departments):
        key = department.name.lower()
        if key in seen:
            problems.append(f"department[{index}]: {department.name!r} is listed twice; only the first applies")
        seen.add(key)
        for kind, access in (("tickets", department.tickets), ("chats", department.chats)):
            both = {a.lower() for a in access.allow} & {d.lower() for d in access.deny}
            if both:
                problems.append(f"department[{index}]: {', '.join(sorted(both))} is both allowed and denied "
                                f"{kind} (deny wins, so the allow is dead)")
    for kind, rules in (("ticket_rule", policy.ticket_rules), ("chat_rule", policy.chat_rules)):
        for index, rule in enumerate(rules):
            if rule.when.unconditional and index < len(rules) - 1:
                problems.append(f"{kind}[{index + 1}]: can never apply: {kind}[{index}] has no conditions and "
                                f"matches everything first (first match wins)")
                break
    for index, rule in enumerate(policy.fields):
        earlier = next((j for j, other in enumerate(policy.fields[:index])
                        if other.field.lower() == rule.field.lower() and other.when.unconditional), None)
        if earlier is not None:
            problems.append(f"field[{index}]: can never apply: field[{earlier}] for {rule.field!r} has no conditions "
                            f"and matches first")
    return problems


@dataclass
class Decision:
    """One rule considered, for `ssobridge explain`."""

    rule: str
    applied: bool
    why: str


@dataclass
class Explanation:
    decisions: list[Decision] = field(default_factory=list)

    def note(self, rule: str, applied: bool, why: str) -> None:
        self.decisions.append(Decision(rule, applied, why))
