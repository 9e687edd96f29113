"""The policy engine (ssobridge/policy.py) and its parser (config/policy_tables.py), case by case.

Table-driven, as Dex's ldap_test.go: each table is a list of cases and one runner, so a rule change is
checked in milliseconds. The end-to-end tests (tests/test_policy.py) then only prove the wire.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ssobridge.config.policy_tables import parse_policy
from ssobridge.policy import Access, Conditions, Person, Policy, page, policy_contradictions


def person(*groups: str, known: bool = True) -> Person:
    return Person(known=known, is_member=lambda name: name.lower() in {g.lower() for g in groups})


STAFF = person("Staff", "Site-Berlin")
CONTRACTOR = person("Staff", "Contractors")
NOBODY_KNOWS = person(known=False)


@dataclass(frozen=True)
class AccessCase:
    name: str
    access: Access
    who: Person
    permits: bool


ACCESS_CASES = [
    AccessCase("everyone by default", Access(), NOBODY_KNOWS, True),
    AccessCase("a member of an allowed group", Access(allow=("staff",)), STAFF, True),
    AccessCase("not a member", Access(allow=("Sales",)), STAFF, False),
    AccessCase("deny wins over allow", Access(allow=("Staff",), deny=("Contractors",)), CONTRACTOR, False),
    AccessCase("directory-users: anyone found", Access(allow=("directory-users",)), person(), True),
    AccessCase("directory-users: not the unknown", Access(allow=("Directory-Users",)), NOBODY_KNOWS, False),
    AccessCase("not-in-directory: the unknown", Access(allow=("not-in-directory",)), NOBODY_KNOWS, True),
    AccessCase("not-in-directory: not a known user", Access(allow=("not-in-directory",)), STAFF, False),
    AccessCase("deny everyone", Access(deny=("everyone",)), STAFF, False),
    AccessCase("an empty allow list: nobody", Access(allow=()), STAFF, False),
]


@pytest.mark.parametrize("case", ACCESS_CASES, ids=lambda c: c.name)
def test_access(case: AccessCase):
    assert case.access.permits(case.who) is case.permits


@dataclass(frozen=True)
class ConditionsCase:
    name: str
    when: Conditions
    department: str = "Support"
    subject: str = ""
    fields: dict | None = None
    location: str = "REGULAR"
    who: Person = STAFF
    why_not: str | None = None  # None: the conditions hold


CONDITIONS_CASES = [
    ConditionsCase("no conditions hold for anyone", Conditions(), who=NOBODY_KNOWS),
    ConditionsCase("department, any case and spaces", Conditions(departments=("support",)), department=" SUPPORT "),
    ConditionsCase("another department", Conditions(departments=("Sales", "Billing")),
                   why_not="department is not Sales or Billing"),
    ConditionsCase("PRE only, at PRE", Conditions(locations=("PRE",)), location="pre"),
    ConditionsCase("PRE only, on the compose page", Conditions(locations=("PRE",)), location="REGULAR",
                   why_not="location is not PRE"),
    ConditionsCase("REGULAR only, asked as NORMAL", Conditions(locations=("REGULAR",)), location="NORMAL"),
    ConditionsCase("REGULAR only, asked with an unknown location", Conditions(locations=("REGULAR",)),
                   location="COMPOSE"),
    ConditionsCase("REGULAR only, no location sent", Conditions(locations=("REGULAR",)), location=""),
    ConditionsCase("REGULAR only, at PRE", Conditions(locations=("REGULAR",)), location="PRE",
                   why_not="location is not REGULAR"),
    ConditionsCase("groups", Conditions(groups=Access(allow=("Sales",))), why_not="groups: allow Sales"),
    ConditionsCase("a whole subject word, any case", Conditions(subject_words=("down",)), subject="Server DOWN!"),
    ConditionsCase("a subject word is not part of a word", Conditions(subject_words=("down",)),
                   subject="Downtime planned", why_not="subject has none of the words down"),
    ConditionsCase("subject_contains: part of a word", Conditions(subject_contains=("passw",)),
                   subject="Forgot my PASSWORD"),
    ConditionsCase("subject_contains: across words", Conditions(subject_contains=("mail server",)),
                   subject="The Mail Server is slow"),
    ConditionsCase("subject_contains: case-folded", Conditions(subject_contains=("strasse",)),
                   subject="Neue Straße"),
    ConditionsCase("subject_contains: absent", Conditions(subject_contains=("passw", "kennwort")),
                   subject="Printer", why_not="subject contains none of 'passw', 'kennwort'"),
    ConditionsCase("both subject conditions must hold", Conditions(subject_words=("down",),
                                                                   subject_contains=("mail",)),
                   subject="Server down", why_not="subject contains none of 'mail'"),
    ConditionsCase("a chosen field value, any case", Conditions(fields=(("Issue Type", "Server Down"),)),
                   fields={"issue type": " server down"}),
    ConditionsCase("another field value", Conditions(fields=(("Issue Type", "Server Down"),)),
                   fields={"Issue Type": "Billing"}, why_not="custom field 'Issue Type' is not 'Server Down'"),
]


@pytest.mark.parametrize("case", CONDITIONS_CASES, ids=lambda c: c.name)
def test_conditions(case: ConditionsCase):
    assert case.when.check(case.who, case.department, case.subject, case.fields, case.location) == case.why_not


@pytest.mark.parametrize("location, expected", [("PRE", "PRE"), (" pre ", "PRE"), ("REGULAR", "REGULAR"),
                                                ("NORMAL", "REGULAR"), ("", "REGULAR"), (None, "REGULAR"),
                                                ("anything", "REGULAR")])
def test_any_location_but_pre_is_the_compose_page(location, expected):
    assert page(location) == expected


RULES = """
[[department]]
name = "Premium Support"
tickets = ["Premium"]
message = "premium only"
[[department]]
name = "*"
chats = ["directory-users"]
message = "sign in"
"""


@pytest.mark.parametrize("department, name, message", [
    ("Premium Support", "Premium Support", "premium only"),
    ("premium support ", "Premium Support", "premium only"),
    ("Sales", "*", "sign in"),
    ("", "*", "sign in"),
])
def test_department_rule_by_name_else_the_star(department, name, message):
    policy = parse(RULES)
    rule = policy.department(department)
    assert (rule.name, rule.message) == (name, message)


def test_without_department_rules_everyone_may_everything():
    rule = Policy().department("Sales")
    assert (rule.name, rule.tickets, rule.chats) == ("*", Access(), Access())


def parse(text: str) -> Policy:
    import tomllib
    problems: list[str] = []
    policy = parse_policy(tomllib.loads(text), problems)
    assert problems == []
    return policy


@dataclass(frozen=True)
class ParseCase:
    name: str
    toml: str
    problems: list[str]


PARSE_CASES = [
    ParseCase("NORMAL is REGULAR", '[[field]]\nname = "X"\nlocations = ["normal"]\nvisible = true\n', []),
    ParseCase("an unknown location", '[[field]]\nname = "X"\nlocations = ["COMPOSE"]\nvisible = true\n',
              ["field[0].locations: 'COMPOSE' is not PRE, or REGULAR (also called NORMAL: the compose page)"]),
    ParseCase("inactive_accounts", '[policy]\ninactive_accounts = "as_nobody"\n',
              ['policy.inactive_accounts: must be "as_unknown" (not in the directory) or "as_member"']),
    ParseCase("subject conditions are for tickets only",
              '[[chat_rule]]\nsubject_contains = ["x"]\ndepartment = "A"\n'
              '[[field]]\nname = "X"\nsubject_words = ["x"]\nvisible = true\n',
              ["field[0].subject_words: only a [[ticket_rule]] can test the subject (StartTicket is the one call "
               "that has one)",
               "chat_rule[0].subject_contains: only a [[ticket_rule]] can test the subject (StartTicket is the one "
               "call that has one)"]),
    ParseCase("an empty subject_contains text would match everything",
              '[[ticket_rule]]\nsubject_contains = [""]\ndepartment = "A"\n',
              ["ticket_rule[0].subject_contains: must be a list of names"]),
    ParseCase("a subject condition makes a rule conditional",
              '[[ticket_rule]]\nsubject_contains = ["x"]\ndepartment = "A"\n[[ticket_rule]]\ndepartment = "B"\n', []),
    ParseCase("a group both allowed and denied",
              '[[department]]\nname = "S"\nchats = ["Staff"]\nchats_deny = ["STAFF"]\n',
              ["department[0]: staff is both allowed and denied chats (deny wins, so the allow is dead)"]),
    ParseCase("a department listed twice", '[[department]]\nname = "S"\n[[department]]\nname = "s"\n',
              ["department[1]: 's' is listed twice; only the first applies"]),
    ParseCase("a rule after an unconditional one",
              '[[chat_rule]]\ndepartment = "A"\n[[chat_rule]]\ngroups = ["X"]\ndepartment = "B"\n',
              ["chat_rule[1]: can never apply: chat_rule[0] has no conditions and matches everything first "
               "(first match wins)"]),
    ParseCase("a field rule after an unconditional one for the same field",
              '[[field]]\nname = "X"\nvisible = true\n[[field]]\nname = "x"\nlocations = ["PRE"]\nvisible = false\n',
              ["field[1]: can never apply: field[0] for 'x' has no conditions and matches first"]),
    ParseCase("PRE and NORMAL together are every location, so unconditional",
              '[[field]]\nname = "X"\nlocations = ["NORMAL", "PRE"]\nvisible = true\n'
              '[[field]]\nname = "X"\nvisible = false\n',
              ["field[1]: can never apply: field[0] for 'X' has no conditions and matches first"]),
]


@pytest.mark.parametrize("case", PARSE_CASES, ids=lambda c: c.name)
def test_parsing_and_contradictions(case: ParseCase):
    import tomllib
    problems: list[str] = []
    parse_policy(tomllib.loads(case.toml), problems)
    assert problems == case.problems


def test_parsed_conditions():
    policy = parse('[policy]\ninactive_accounts = "as_member"\n'
                   '[[field]]\nname = "X"\nlocations = ["Normal", "regular"]\nvisible = true\n'
                   '[[ticket_rule]]\nsubject_words = ["down"]\nsubject_contains = ["passw"]\ndepartment = "A"\n')
    assert policy.inactive_accounts == "as_member"
    assert policy.fields[0].when.locations == ("REGULAR",)
    assert policy.ticket_rules[0].when == Conditions(subject_words=("down",), subject_contains=("passw",))
    assert policy_contradictions(policy) == []
    assert Policy().inactive_accounts == "as_unknown"
