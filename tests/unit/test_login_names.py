"""Username forms and RFC 4515 escaping: pure logic."""

import pytest

from ldap3.utils.conv import escape_filter_chars

from ssobridge.directory.ber import encode_filter
from ssobridge.directory.names import LoginName, parse_login_name, user_search_filter

AD_FILTER = "(&(objectCategory=person)(objectClass=user)(|(sAMAccountName={user})(userPrincipalName={upn})))"


@pytest.mark.parametrize("typed, expected", [
    ("EXAMPLE\\jdoe", LoginName("EXAMPLE\\jdoe", "jdoe", domain="EXAMPLE")),
    ("example/jdoe", LoginName("example/jdoe", "jdoe", domain="example")),
    ("jdoe@Example.Test", LoginName("jdoe@Example.Test", "jdoe", suffix="Example.Test")),
    ("  jdoe  ", LoginName("jdoe", "jdoe")),
    ("jörg", LoginName("jörg", "jörg")),
])
def test_username_forms_are_split(typed, expected):
    assert parse_login_name(typed) == expected


@pytest.mark.parametrize("typed", ["", "   ", "EXAMPLE\\", "\\jdoe", "@example.test", "jdoe@", "a" * 1025,
                                   "jdoe\x00", "jd\noe"])
def test_unusable_usernames_name_nobody(typed):
    assert parse_login_name(typed) is None


def test_filter_values_are_escaped_per_rfc_4515():
    """ldap3's escape_filter_chars escapes exactly what RFC 4515 requires (backslash first, then * ( ) NUL) and
    leaves the rest as text, non-ASCII too: the filter carries it as UTF-8 (UTFMB), as the BER shows."""
    assert escape_filter_chars("*)(uid=*)\\\x00") == "\\2a\\29\\28uid=\\2a\\29\\5c\\00"
    assert escape_filter_chars("\\2a") == "\\5c2a"  # an escape typed by the user stays text
    assert escape_filter_chars("Jörg 日本 😀 =&|!~<>:,;\"'") == "Jörg 日本 😀 =&|!~<>:,;\"'"
    assert encode_filter(f"(cn={escape_filter_chars('ö*')})") == b"\xa3\x09\x04\x02cn\x04\x03\xc3\xb6*"


def test_user_filter_gets_user_and_upn_escaped_once():
    name = parse_login_name("EXAMPLE\\a*b")
    assert user_search_filter(AD_FILTER, name, "example.test") == (
        "(&(objectCategory=person)(objectClass=user)"
        "(|(sAMAccountName=a\\2ab)(userPrincipalName=a\\2ab@example.test)))")


def test_upn_keeps_the_suffix_as_typed():
    name = parse_login_name("Max.Mustermann@EXAMPLE.TEST")
    assert user_search_filter("(userPrincipalName={upn})", name, "other.test") == \
        "(userPrincipalName=Max.Mustermann@EXAMPLE.TEST)"


def test_placeholder_text_inside_a_username_stays_text():
    name = parse_login_name("{upn}")
    assert user_search_filter("(|(uid={user})(mail={upn}))", name, None) == "(|(uid={upn})(mail={upn}))"


def test_group_dns_are_compared_as_data_not_text():
    from ssobridge.directory.dn import normalize_dn
    from ssobridge.directory.groups import Group
    assert normalize_dn('CN=Doe\\, "J",OU=Sales,DC=x') == normalize_dn('cn=doe\\2c \\22j\\22, ou=sales,dc=X')
    group = Group("CN=Sales Team,OU=Groups,DC=example,DC=test", ("Sales-Team", "Sales Team"), "S-1-5-21-1-2-3-1105")
    assert group.is_named("cn=sales team,ou=groups,dc=EXAMPLE,dc=test")
    assert group.is_named("sales-team") and group.is_named("SALES TEAM") and group.is_named("s-1-5-21-1-2-3-1105")
    assert not group.is_named("CN=Sales Team,OU=Other,DC=example,DC=test") and not group.is_named("Sales")
    assert not Group("", ("x",)).is_named("CN=a, b") and not group.is_named("CN=Sales Team,OU=Groups,DC=example,DC=")
