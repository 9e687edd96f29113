"""DNs as data (directory/dn.py, on ldap3's parse_dn): one table of DNs as directories write them and as
operators type them, and what each function makes of them."""

from __future__ import annotations

import pytest

from ssobridge.directory.dn import dn_key, first_value, naming_context, normalize_dn, parent_dn

AD_USER = "CN=Doe\\, John,OU=People,DC=example,DC=test"


@pytest.mark.parametrize("dn, key, parent, first, context", [
    (AD_USER, "cn=doe\\, john,ou=people,dc=example,dc=test", "OU=People,DC=example,DC=test", "Doe, John",
     "DC=example,DC=test"),
    # The same entry as an operator might type it: case, "\2c" for the comma, spaces after commas.
    ("cn=doe\\2c john, ou=people, dc=example, dc=test", "cn=doe\\, john,ou=people,dc=example,dc=test",
     "ou=people,dc=example,dc=test", "doe, john", "dc=example,dc=test"),
    ('CN=\\"Q\\" \\+ \\#1\\;x,OU=a', 'cn=\\"q\\" \\+ #1\\;x,ou=a', "OU=a", '"Q" + #1;x', ""),
    ("CN=x\\ ,OU=y", "cn=x\\ ,ou=y", "OU=y", "x ", ""),  # a value ending in an escaped space keeps it
    ("cn=M\\C3\\BCller,dc=org", "cn=müller,dc=org", "dc=org", "Müller", "dc=org"),  # UTF-8 bytes escaped
    ("cn=a+sn=b,ou=x,dc=t", "cn=a+sn=b,ou=x,dc=t", "ou=x,dc=t", "a", "dc=t"),  # a multi-valued RDN is one RDN
    ("dc=test", "dc=test", "", "test", "dc=test"),
    # Read leniently, as parse_dn reads what does not read otherwise: an unescaped comma, quote or "=".
    ("CN=Doe, John,OU=People", "cn=doe\\, john,ou=people", "OU=People", "Doe, John", ""),
    ('CN=Doe\\, "J",OU=Sales', 'cn=doe\\, \\"j\\",ou=sales', "OU=Sales", 'Doe, "J"', ""),
    ("cn=a=b, dc=x", "cn=a\\=b,dc=x", "dc=x", "a=b", "dc=x"),
])
def test_a_dn_as_written_gives_its_key_parent_first_value_and_naming_context(dn, key, parent, first, context):
    assert (dn_key(dn), parent_dn(dn), first_value(dn), naming_context(dn)) == (key, parent, first, context)


@pytest.mark.parametrize("text", ["Domain Users", "S-1-5-21-1-2-3", "", "cn=", "=x", "cn=x,dc="])
def test_text_that_is_no_dn_names_no_entry(text):
    assert (normalize_dn(text), dn_key(text), parent_dn(text), first_value(text), naming_context(text)) == \
        (None, None, None, None, "")


def test_dns_are_compared_as_data_whatever_their_case_escaping_and_spacing():
    assert normalize_dn(AD_USER) == normalize_dn("cn=doe\\2C john , ou=People,dc=EXAMPLE, dc=test") == (
        ("cn", "doe, john", ","), ("ou", "people", ","), ("dc", "example", ","), ("dc", "test", ""))
    assert normalize_dn(AD_USER) != normalize_dn("CN=Doe\\,John,OU=People,DC=example,DC=test")
    assert normalize_dn("cn=a+sn=b,dc=t") != normalize_dn("cn=a,sn=b,dc=t")
