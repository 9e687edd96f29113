"""Attribute mappings: candidates, templates, multi-valued joins, per-directory overrides."""

import pytest

from ssobridge.config import ConfigError, load
from ssobridge.mapping import Candidate, OutputMapping

ENTRY = {"givenname": ["Jörg"], "sn": ["Müller"], "mail": [], "telephonenumber": ["+49 1", "+49 2"],
         "displayname": ["  "]}


def values(name: str) -> list[str]:
    return ENTRY.get(name.lower(), [])


def mapping(*candidates: str, join: str | None = None) -> OutputMapping:
    return OutputMapping("cf_X", tuple(Candidate(c) for c in candidates), join)


def test_first_candidate_with_a_value_wins_and_blank_values_do_not_count():
    assert mapping("mail", "displayName", "sn").value(values) == "Müller"


def test_template_fills_every_attribute_or_is_skipped():
    assert mapping("{givenName} {sn}").value(values) == "Jörg Müller"
    assert mapping("{givenName} {mail}", "sn").value(values) == "Müller"


def test_multi_valued_attribute_gives_its_first_value_or_all_joined():
    assert mapping("telephoneNumber").value(values) == "+49 1"
    assert mapping("telephoneNumber", join=", ").value(values) == "+49 1, +49 2"


def test_nothing_found_is_none():
    assert mapping("mail", "pager").value(values) is None


def write(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text('[smartertrack]\nweb_service_password = "x"\n' + text, encoding="utf-8")
    return path


DIRECTORY = """
[[directory]]
name = "{name}"
type = "ldap"
urls = ["ldaps://{name}.example.org"]
base_dn = "dc=example,dc=org"
bind_dn = "cn=svc"
bind_password = "p"
"""


def test_directory_attributes_override_the_global_table(tmp_path):
    text = ('[attributes]\nDisplayName = ["{givenName} {sn}", "cn"]\n"cf_Phones" = { from = ["telephoneNumber"], '
            'join = "; " }\n' + DIRECTORY.format(name="a") + DIRECTORY.format(name="b")
            + '[directory.attributes]\nDisplayName = "displayName"\n')
    config = load(write(tmp_path, text))
    first, second = ({m.name: m for m in d.attributes} for d in config.directories)
    assert [c.text for c in first["DisplayName"].candidates] == ["{givenName} {sn}", "cn"]
    assert [c.text for c in second["DisplayName"].candidates] == ["displayName"]
    assert first["cf_Phones"].join == "; " and second["cf_Phones"].join == "; "
    assert [c.text for c in second["EmailAddress"].candidates] == ["mail", "userPrincipalName"]


def test_bad_mappings_are_named(tmp_path):
    text = '[attributes]\n"cf_A" = "{givenName"\n"cf_B" = "two words"\n"cf_C" = { from = ["x"], glue = "," }\n'
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, text))
    assert error.value.problems == [
        "attributes.cf_A: template '{givenName' has unbalanced or empty braces",
        "attributes.cf_B: 'two words' is not an attribute name or a template",
        'attributes.cf_C: as a table takes from = [...] and optionally join = "separator"',
    ]
