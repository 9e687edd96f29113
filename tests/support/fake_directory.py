"""A fake directory set for fast provider tests: people are real UserEntry objects with their groups and
account states, on docs/examples/group-rules.toml's policy; and the request variables of the three policy operations."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from ssobridge.config.policy_tables import parse_policy
from ssobridge.directory import AccountState, Finding, Outcome, UserEntry
from ssobridge.directory.groups import Group
from ssobridge.providers.base import CustomFieldChange
from ssobridge.providers.requests import RequestProvider

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "group-rules.toml"


def example_policy():
    problems: list[str] = []
    policy = parse_policy(tomllib.loads(EXAMPLE.read_text(encoding="utf-8")), problems)
    assert problems == []
    return policy


def group(name: str) -> Group:
    return Group(dn=f"cn={name},ou=groups,dc=example,dc=org", names=(name,))


PREMIUM = ("Sales Team", "Key Accounts", "Premium Customers", "All Staff")


@dataclass(frozen=True)
class FakePerson:
    login: str
    groups: tuple[str, ...] = ()
    state: AccountState = AccountState.OK
    attributes: dict = field(default_factory=dict)

    @property
    def entry(self) -> UserEntry:
        raw = {name.lower(): tuple(v.encode() for v in values) for name, values in self.attributes.items()}
        return UserEntry(f"uid={self.login},ou=people,dc=example,dc=org", raw, "ldaps://fake")


PEOPLE = {p.login: p for p in [
    FakePerson("jdoe", (*PREMIUM, "Site-Berlin", "Site-Paris"),
               attributes={"o": ["Acme Corp", "Acme Labs"], "employeeNumber": ["E-1001"],
                           "mail": ["jdoe@example.test"]}),
    FakePerson("jdoejr", (*PREMIUM, "Contractors")),
    FakePerson("nmail"),
    FakePerson("disabled", ("Key Accounts", "Premium Customers", "Site-Berlin"), AccountState.DISABLED),
    FakePerson("locky", ("Premium Customers",), AccountState.LOCKED),
    FakePerson("expired", ("Premium Customers",), AccountState.ACCOUNT_EXPIRED),
    FakePerson("pwdexpired", ("Premium Customers",), AccountState.PASSWORD_EXPIRED),
    FakePerson("mustchange", ("Premium Customers",), AccountState.MUST_CHANGE),
]}


class FakeDirectory:
    """What the providers ask of a Directory: groups(entry) and account_state(entry)."""

    name = "fake"

    def groups(self, entry: UserEntry) -> frozenset[Group]:
        return frozenset(group(name) for name in self._person(entry).groups)

    def account_state(self, entry: UserEntry) -> AccountState:
        return self._person(entry).state

    @staticmethod
    def _person(entry: UserEntry) -> FakePerson:
        return PEOPLE[entry.dn.split(",")[0].split("=")[1]]


class FakeDirectorySet:
    """DirectorySet.find: by username, else by mail. "twin" is ambiguous; "outage" finds a directory down."""

    def __init__(self):
        self.directory = FakeDirectory()

    def find(self, username: str | None = None, email: str | None = None) -> Finding:
        if "outage" in (username, email):
            return Finding(Outcome.UNAVAILABLE, error="ldaps://dc1.example.test: timed out")
        if username == "twin":
            return Finding(Outcome.AMBIGUOUS, error="user_filter matches 2 entries: 'uid=twin,ou=a', 'uid=twin,ou=b'")
        person = PEOPLE.get(username or "") or next(
            (p for p in PEOPLE.values() if email and email.lower() in p.attributes.get("mail", [])), None)
        return Finding(Outcome.FOUND, self.directory, person.entry) if person else Finding(Outcome.NOT_FOUND)


def provider(**policy_changes) -> RequestProvider:
    return RequestProvider(FakeDirectorySet(), replace(example_policy(), **policy_changes))


def fields_(*changes: CustomFieldChange) -> tuple[CustomFieldChange, ...]:
    return changes


def options(user: str, department: str, location: str = "PRE", **custom: str) -> dict:
    return {"loginUsername": user, "departmentName": department, "location": location,
            **{f"cf_{k.replace('_', ' ')}": v for k, v in custom.items()}}


def ticket(who: str, department: str, subject: str, **custom: str) -> dict:
    sender = {"emailFrom": who} if "@" in who else {"loginUsername": who}
    return {**sender, "departmentName": department, "subject": subject, "ticketNumber": "T-1",
            **{f"cf_{k.replace('_', ' ')}": v for k, v in custom.items()}}


def chat(who: str, department: str) -> dict:
    return {"loginUsername": who, "departmentName": department}
