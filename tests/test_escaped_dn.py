"""A comma in a CN, on the real paths against Samba AD: "CN=Doe\\, John,OU=People,DC=example,DC=test" signs in, its
lockout counters are one account however the DN is typed to `ssobridge unlock`, and a rule naming the group
"CN=Helpdesk\\, Tier 2" by its DN (written in another case, escaping and spacing) lets its member in.

Both entries are added here and removed afterwards; the DNs are split by ldap3's parse_dn (directory/dn.py).
"""

from __future__ import annotations

import pytest
from ldap3.utils.dn import escape_rdn

from tests.support.directory import bound
from tests.support.services import AUTH, WRONG, ad_config, authenticate, call, fail, start_service

LOGIN, PASSWORD = "doejohn", "Doe-John-Passw0rd!"
REFUSED = "Tier 2 is for the helpdesk's second level."


@pytest.fixture(scope="module")
def comma_site(samba_ad, tmp_path_factory):
    """(the user's DN, the group's DN, ssobridge with a rule naming the group) on samba_ad."""
    people = samba_ad.users_dn
    groups = samba_ad.groups["sales"].split(",", 1)[1]  # the groups' OU (its own CN has no comma)
    user_dn, group_dn = f"CN={escape_rdn('Doe, John')},{people}", f"CN={escape_rdn('Helpdesk, Tier 2')},{groups}"
    assert user_dn == f"CN=Doe\\, John,{people}"
    with bound(samba_ad, samba_ad.admin_dn, samba_ad.admin_password) as admin:
        assert admin.add(user_dn, ["top", "person", "organizationalPerson", "user"], {
            "sAMAccountName": LOGIN, "userPrincipalName": f"{LOGIN}@{samba_ad.upn_suffix}",
            "unicodePwd": f'"{PASSWORD}"'.encode("utf-16-le"), "userAccountControl": 512}), admin.result
        assert admin.add(group_dn, ["top", "group"], {"sAMAccountName": "helpdesk-tier2", "groupType": -2147483646,
                                                      "member": [user_dn]}), admin.result
    # The rule names the group as an operator might type it: lower case, "\2c" for the comma, spaces.
    typed = "cn=helpdesk\\2c tier 2, " + ", ".join(part.lower() for part in groups.split(","))
    policy = (f"[[department]]\nname = \"Tier 2\"\ntickets = ['{typed}']\nchats = ['{typed}']\n"
              f"message = \"{REFUSED}\"\n")
    service = start_service(tmp_path_factory.mktemp("comma"), ad_config(samba_ad) + policy, log_level="INFO")
    yield user_dn, group_dn, service
    service.stop()
    with bound(samba_ad, samba_ad.admin_dn, samba_ad.admin_password) as admin:
        admin.delete(group_dn)
        admin.delete(user_dn)


def test_a_user_with_a_comma_in_the_cn_signs_in_and_is_named_by_the_cn(comma_site):
    user_dn, _, service = comma_site
    assert authenticate(service, LOGIN, PASSWORD) == {
        "Success": True, "Message": "Login Successful",
        "OutputVariables": ["Authentication=OK", f"EmailAddress={LOGIN}@example.test", "DisplayName=Doe, John"]}
    assert f"dn={user_dn!r}" in service.log()


def test_a_rule_naming_the_group_with_a_comma_by_its_dn_lets_its_member_in_and_nobody_else(comma_site, samba_ad):
    _, _, service = comma_site

    def options(login: str) -> dict:
        return call(service.url, "GetCustomFieldOptions",
                    [AUTH, f"loginUsername={login}", "departmentName=Tier 2", "location=PRE"])

    member = options(LOGIN)
    assert member["OutputVariables"] == ["CanStartTickets=True", "CanStartChats=True"]
    other = options(samba_ad.users["jdoe"].login)
    assert other["OutputVariables"] == ["CanStartTickets=False", "CanStartChats=False"]
    assert other["Message"] == REFUSED


@pytest.mark.parametrize("typed", ["dn as the directory spells it", "lower case with \\2c and spaces"])
def test_the_lockout_shield_counts_the_user_as_one_account_however_the_dn_is_typed_to_unlock(comma_site, typed):
    user_dn, _, service = comma_site
    assert authenticate(service, LOGIN, PASSWORD)["OutputVariables"][0] == "Authentication=OK"
    assert authenticate(service, LOGIN, "Not-The-Passw0rd!") == fail(WRONG)
    dn = user_dn if typed.startswith("dn") else user_dn.lower().replace("\\,", "\\2c").replace(",", ", ")
    unlocked = service.command("unlock", dn)
    assert (unlocked.returncode, unlocked.stdout) == (
        0, f"Unlocked {user_dn} (the directory's own lockout, if any, is not changed).\n")
