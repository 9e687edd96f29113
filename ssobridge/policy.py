"""Directory groups decide who may contact which department, what they are asked, and where tickets land.

The rules are data, read from the config file and checked at start (parsed in
ssobridge/config/policy_tables.py); this module says whether a rule applies to someone (pure logic,
no LDAP). The providers in ssobridge/providers/requests.py apply
them. Written in the config as:

    [policy]                     unknown users, inactive accounts, directory outages
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
from enum import StrEnum
from typing import Callable, Iterable

from .mapping import OutputMapping

EVERYONE = "everyone"
DIRECTORY_USERS = "directory-users"
NOT_IN_DIRECTORY = "not-in-directory"
KEYWORDS = (EVERYONE, DIRECTORY_USERS, NOT_IN_DIRECTORY)
LOCATIONS = ("PRE", "REGULAR")
# How the config may name the two pages: the vendor's document calls the compose page both REGULAR and NORMAL.
LOCATION_NAMES = {"PRE": "PRE", "REGULAR": "REGULAR", "NORMAL": "REGULAR"}
ANY_DEPARTMENT = "*"


class UnknownUsers(StrEnum):
    """[policy] unknown_users: what the rules do for someone no directory knows."""

    APPLY_RULES = "apply_rules"  # the rules decide (not-in-directory names them)
    REFUSE = "refuse"  # nobody outside the directory may start anything


class InactiveAccounts(StrEnum):
    """[policy] inactive_accounts: a disabled, locked or expired account."""

    AS_UNKNOWN = "as_unknown"  # not in the directory: its groups do not count
    AS_MEMBER = "as_member"  # its groups count, as for anyone else


class OnDirectoryUnavailable(StrEnum):
    """[policy] on_directory_unavailable: what StartTicket and StartChat do in an outage."""

    REFUSE = "refuse"  # fail closed
    ALLOW = "allow"  # fail open



def page(location: str | None) -> str:
    """The page SmarterTrack asks about: PRE (the first step), else the compose page (REGULAR, NORMAL, or
    anything else: the vendor names it both ways, and a field rule must not silently match nothing)."""
    return "PRE" if (location or "").strip().upper() == "PRE" else "REGULAR"


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
    subject_words: tuple[str, ...] = ()  # any of these whole words in the ticket subject
    subject_contains: tuple[str, ...] = ()  # any of these texts anywhere in the subject (e.g. "passw")
    fields: tuple[tuple[str, str], ...] = ()  # cf_ values already chosen: (field, value)
    locations: tuple[str, ...] = LOCATIONS

    def check(self, person: Person, department: str, subject: str = "", custom_fields: dict | None = None,
              location: str = "REGULAR") -> str | None:
        """None when the conditions hold; else the first that does not, in words (for `explain`)."""
        if self.departments and department.strip().lower() not in {d.lower() for d in self.departments}:
            return f"department is not {' or '.join(self.departments)}"
        if page(location) not in self.locations:
            return f"location is not {' or '.join(self.locations)}"
        if not self.groups.permits(person):
            return f"groups: {self.groups.describe()}"
        if self.subject_words:
            words = set(re.findall(r"\w+", subject.lower()))
            if not words & {w.lower() for w in self.subject_words}:
                return f"subject has none of the words {', '.join(self.subject_words)}"
        if self.subject_contains and not any(text.casefold() in subject.casefold() for text in self.subject_contains):
            return f"subject contains none of {', '.join(repr(text) for text in self.subject_contains)}"
        chosen = {k.lower(): v for k, v in (custom_fields or {}).items()}
        for name, value in self.fields:
            if chosen.get(name.lower(), "").strip().lower() != value.strip().lower():
                return f"custom field {name!r} is not {value!r}"
        return None

    @property
    def unconditional(self) -> bool:
        return not (self.departments or self.subject_words or self.subject_contains or self.fields) and \
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
    unknown_users: UnknownUsers = UnknownUsers.APPLY_RULES  # or "refuse": nobody outside the directory may start
    unknown_message: str = "We could not find you in our directory. Please contact us by phone."
    # A disabled, locked or expired account: "as_unknown" (not in the directory: its groups do not count)
    # or "as_member" (its groups count, as for anyone else).
    inactive_accounts: InactiveAccounts = InactiveAccounts.AS_UNKNOWN
    on_directory_unavailable: OnDirectoryUnavailable = OnDirectoryUnavailable.REFUSE  # or "allow": in an outage
    unavailable_message: str = "The directory is unavailable, so we cannot check your request. Please try again."
    departments: tuple[DepartmentRule, ...] = ()
    fields: tuple[FieldRule, ...] = ()
    ticket_rules: tuple[RequestRule, ...] = ()
    chat_rules: tuple[RequestRule, ...] = ()
    refused_message: str = "You are not permitted to contact this department."

    def __post_init__(self) -> None:
        # Members, also when code or a test gave the text; a value that is none of them is a ValueError.
        object.__setattr__(self, "unknown_users", UnknownUsers(self.unknown_users))
        object.__setattr__(self, "inactive_accounts", InactiveAccounts(self.inactive_accounts))
        object.__setattr__(self, "on_directory_unavailable", OnDirectoryUnavailable(self.on_directory_unavailable))

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
