"""The directory flavours' pure logic: what each type asks for and how it reads the answers, without a server."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ssobridge.config import DEFAULT_ATTRIBUTES, DEFAULT_USER_FILTERS, DirectorySettings
from ssobridge.diagnose import lockout_counters_line
from ssobridge.directory import Directory, DirectorySet, DirectoryUnavailable, Finding, Outcome, UserEntry
from ssobridge.directory.activedirectory import ActiveDirectory
from ssobridge.directory.directory import FLAVOURS, AmbiguousUser
from ssobridge.directory.entries import generalized_time
from ssobridge.directory.guard import REFUSAL_WORDS
from ssobridge.directory.openldap import PPOLICY_OID, OpenLDAP

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def settings(kind: str, name: str = "d", **overrides) -> DirectorySettings:
    values = dict(name=name, type=kind, urls=("ldaps://127.0.0.1:1",), base_dn="dc=example,dc=test",
                  bind_dn="cn=svc", bind_password="x", ca_file=None, start_tls=False, allow_plaintext=False,
                  connect_timeout=1, timeout=1, netbios_domain=None, upn_suffixes=(),
                  user_filter=DEFAULT_USER_FILTERS[kind], default=False, retry_down_after=30,
                  ppolicy_default_dn=None, attributes=DEFAULT_ATTRIBUTES, group_base_dn=None,
                  membership_cache_seconds=60, group_name_cache_seconds=600)
    values.update(overrides)
    return DirectorySettings(**values)


def entry(**attributes) -> UserEntry:
    return UserEntry("cn=x", {k.lower(): (str(v).encode(),) for k, v in attributes.items()})


class Recorded:
    """A search that answers from a table and remembers what it was asked."""

    def __init__(self, answers=None):
        self.answers = answers or {}
        self.calls = []

    def __call__(self, base, scope, search_filter, attributes, size_limit=0):
        self.calls.append((base, scope, search_filter))
        return self.answers.get((base, search_filter), [])


def test_each_config_type_has_a_flavour_chosen_at_construction():
    assert FLAVOURS == {"active_directory": ActiveDirectory, "ldap": OpenLDAP}
    for kind, flavour in FLAVOURS.items():
        directory = Directory(settings(kind))
        assert type(directory.flavour) is flavour
        assert set(flavour.state_attributes) <= set(directory.search_attributes)


@pytest.mark.parametrize("kind, expected", [
    ("active_directory", "(&(objectCategory=person)(objectClass=user)"
                         "(|(mail=a\\2a@x)(proxyAddresses=smtp:a\\2a@x)))"),
    ("ldap", "(&(objectClass=inetOrgPerson)(mail=a\\2a@x))"),
])
def test_email_filter_by_directory_type(kind, expected):
    assert FLAVOURS[kind](settings(kind), Recorded()).email_filter("a\\2a@x") == expected


@pytest.mark.parametrize("kind, expected", [
    ("active_directory", "(&(objectClass=group)(|(cn=Sales)(sAMAccountName=Sales)))"),
    ("ldap", "(&(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))(cn=Sales))"),
])
def test_group_filter_by_directory_type(kind, expected):
    assert FLAVOURS[kind](settings(kind), Recorded()).group_filter("Sales") == expected


def test_only_openldap_asks_for_the_password_policy_control():
    assert ActiveDirectory(settings("active_directory"), Recorded()).bind_controls() is None
    assert OpenLDAP(settings("ldap"), Recorded()).bind_controls() == [(PPOLICY_OID, False, None)]


def test_ad_dates_come_from_filetime_and_never_is_none():
    flavour = ActiveDirectory(settings("active_directory"), Recorded())
    filetime = int((NOW.timestamp() + 11_644_473_600) * 10_000_000)
    assert flavour.password_expires(entry(**{"msDS-UserPasswordExpiryTimeComputed": filetime})) == NOW
    assert flavour.password_expires(entry(**{"msDS-UserPasswordExpiryTimeComputed": 0x7FFFFFFFFFFFFFFF})) is None
    assert flavour.last_logon(entry(lastLogonTimestamp=filetime)) == NOW
    assert flavour.last_logon(entry()) is None


def test_openldap_password_expiry_reads_the_policy_once():
    policy = "cn=default,ou=policies,dc=example,dc=test"
    search = Recorded({(policy, "(objectClass=*)"): [entry(pwdMaxAge=86400)]})
    flavour = OpenLDAP(settings("ldap", ppolicy_default_dn=policy), search)
    user = entry(pwdChangedTime="20261127120000Z", authTimestamp="20261126120000Z")
    assert flavour.password_expires(user) == NOW + timedelta(days=1)
    assert flavour.password_expires(user) == NOW + timedelta(days=1)
    assert len(search.calls) == 1
    assert flavour.last_logon(user) == NOW - timedelta(days=1) == generalized_time("20261126120000Z")


def test_openldap_nested_groups_are_expanded_level_by_level():
    base = "dc=example,dc=test"
    search = Recorded({
        (base, "(|(member=cn=x)(uniqueMember=cn=x)(&(objectClass=posixGroup)(memberUid=jdoe)))"):
            [UserEntry("cn=sales", {"cn": (b"Sales",)})],
        (base, "(|(member=cn=sales)(uniqueMember=cn=sales))"): [UserEntry("cn=staff", {"cn": (b"Staff",)})],
    })
    groups = OpenLDAP(settings("ldap"), search).groups(entry(uid="jdoe"))
    assert sorted(g.name for g in groups) == ["Sales", "Staff"]
    assert len(search.calls) == 3


class FakeDirectory:
    def __init__(self, name, users=(), emails=(), claims=(), default=False, down=False):
        self.name, self.users, self.emails, self.down = name, dict(users), dict(emails), down
        self.settings = settings("ldap", name=name, default=default, netbios_domain=claims[0] if claims else None)

    def claims(self, name):
        return Directory.claims(self, name)

    def find_user(self, name):
        if self.down:
            raise DirectoryUnavailable("down")
        found = self.users.get(name.user)
        if isinstance(found, Exception):
            raise found
        return found

    def find_user_by_email(self, email):
        if self.down:
            raise DirectoryUnavailable("down")
        return self.emails.get(email)


def test_find_routes_the_username_then_falls_back_to_email():
    jdoe, mail_only = entry(uid="jdoe"), entry(uid="m")
    first = FakeDirectory("first", users={"jdoe": jdoe}, default=True, claims=("FIRST",))
    second = FakeDirectory("second", emails={"m@x": mail_only}, claims=("SECOND",))
    directories = DirectorySet([first, second])
    nobody = Finding(Outcome.NOT_FOUND)
    assert directories.find(username="jdoe") == Finding(Outcome.FOUND, first, jdoe)
    assert directories.find(username="FIRST\\jdoe", email="m@x") == Finding(Outcome.FOUND, first, jdoe)
    assert directories.find(username="SECOND\\jdoe") == nobody
    assert directories.find(username="SECOND\\jdoe", email="m@x") == Finding(Outcome.FOUND, second, mail_only)
    assert directories.find(email="m@x") == Finding(Outcome.FOUND, second, mail_only)
    assert directories.find(username="OTHER\\jdoe") == nobody
    assert directories.find() == nobody


def test_find_never_reads_an_outage_or_an_ambiguity_as_nobody():
    ambiguous = FakeDirectory("a", users={"twin": AmbiguousUser("two entries")}, default=True)
    assert DirectorySet([ambiguous]).find(username="twin", email="t@x") == \
        Finding(Outcome.AMBIGUOUS, error="two entries")
    assert DirectorySet([FakeDirectory("b", default=True, down=True)]).find(username="jdoe") == \
        Finding(Outcome.UNAVAILABLE, error="down")


@pytest.mark.parametrize("flavour, result, code, words", [
    (ActiveDirectory, {"result": 49, "message": "80090308: LdapErr: DSID-0C09042A, data 52e, v3839"},
     "data 52e", "service account password is wrong"),
    (ActiveDirectory, {"result": 49, "message": "... data 775, v3839"}, "data 775", "service account is LOCKED"),
    (ActiveDirectory, {"result": 49, "message": "... data 533, v3839"}, "data 533", "service account is disabled"),
    (ActiveDirectory, {"result": 49, "message": "... data 532, v3839"}, "data 532",
     "service account password expired"),
    (ActiveDirectory, {"result": 49, "message": "... data 701, v3839"}, "data 701", "service account has expired"),
    (ActiveDirectory, {"result": 49, "message": "... data 773, v3839"}, "data 773",
     "service account must change its password"),
    (ActiveDirectory, {"result": 8, "message": "BindSimple: Transport encryption required."}, "result 8",
     "service account bind refused"),
    (OpenLDAP, {"result": 49}, "result 49", "service account password is wrong"),
    (OpenLDAP, {"result": 49, "controls": {PPOLICY_OID: {"value": b"0\x03\x81\x01\x01"}}},
     "result 49 accountLocked", "service account is LOCKED"),
    (OpenLDAP, {"result": 49, "controls": {PPOLICY_OID: {"value": b"0\x03\x81\x01\x00"}}},
     "result 49 passwordExpired", "service account password expired"),
])
def test_a_refused_service_bind_is_told_in_words(flavour, result, code, words):
    found_code, state = flavour.bind_refusal(result)
    assert (found_code, REFUSAL_WORDS.get(state, "service account bind refused")) == (code, words)


def test_the_lockout_counters_line_names_what_the_service_account_cannot_read():
    assert lockout_counters_line({}) is None  # not probed: no line
    assert lockout_counters_line({"pwdFailureTime": False, "lockout policy cn=default,ou=policies": True}) == (
        "lockout counters: NOT readable by the service account: pwdFailureTime; ssobridge counts wrong passwords "
        "itself instead (in data_dir: shared by this host's workers, not with other hosts), and an unreadable "
        "policy counts as the strictest. Grant the service account read access to them.")
    assert lockout_counters_line({"badPwdCount": True, "lockout policy DC=example,DC=test": True}) == (
        "lockout counters: read by the service account (badPwdCount, lockout policy DC=example,DC=test): "
        "the lockout shield follows the directory's own counts")
