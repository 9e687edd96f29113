"""Directory groups drive GetCustomFieldOptions, StartTicket and StartChat: the policy of
docs/examples/group-rules.toml, applied to users of a real Samba AD domain and a real OpenLDAP directory, read back
through the .NET client.

The groups the example policy names are added here to both directories (and removed afterwards):
Premium Customers > Key Accounts > Sales Team (three levels; jdoe is in Sales Team only), Contractors
(jdoejr, also in Sales Team: deny wins), Site-Berlin and Site-Paris (jdoe). jdoe also gets two
organisations (o, multi-valued) and an employee ID. The disabled user is put in Key Accounts and
Site-Berlin: off-boarded staff whose groups must no longer count.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ldap3 import MODIFY_DELETE, MODIFY_REPLACE

from tests.support.directory import bound
from tests.support.services import WEB_SERVICE_PASSWORD, ad_config, openldap_config, start_service

AUTH = f"authPW={WEB_SERVICE_PASSWORD}"
EXAMPLE = Path(__file__).parent.parent / "docs" / "examples" / "group-rules.toml"
EXAMPLE_POLICY = EXAMPLE.read_text(encoding="utf-8").split("\n[policy]\n", 1)[1]
PREMIUM_REFUSED = "Premium Support is for premium customers. Please choose Support."
UNAVAILABLE = "The directory is unavailable, so we cannot check your request. Please try again."


def add_groups(directory) -> list[str]:
    """The example policy's groups; returns their DNs, innermost last, for removal."""
    users = directory.users
    ad = directory.kind == "ad"
    container = directory.users_dn

    def group(admin, name: str, members: list[str]) -> str:
        dn = f"CN={name},{container}" if ad else f"cn={name},{container}"
        if ad:
            attributes = {"sAMAccountName": name, "groupType": -2147483646}
            object_class = ["top", "group"]
        else:
            attributes = {}
            object_class = ["groupOfNames"]
        assert admin.add(dn, object_class, {**attributes, "member": members}), admin.result
        return dn

    with bound(directory, directory.admin_dn, directory.admin_password) as admin:
        key_accounts = group(admin, "Key Accounts", [directory.groups["sales"], users["disabled"].dn])
        premium = group(admin, "Premium Customers", [key_accounts])
        contractors = group(admin, "Contractors", [users["escaped_dn"].dn])
        berlin = group(admin, "Site-Berlin", [users["jdoe"].dn, users["disabled"].dn])
        paris = group(admin, "Site-Paris", [users["jdoe"].dn])
        employee = "employeeID" if ad else "employeeNumber"
        assert admin.modify(users["jdoe"].dn, {"o": [(MODIFY_REPLACE, ["Acme Corp", "Acme Labs"])],
                                               employee: [(MODIFY_REPLACE, ["E-1001"])]}), admin.result
    return [premium, key_accounts, contractors, berlin, paris]


def remove_groups(directory, dns: list[str]) -> None:
    employee = "employeeID" if directory.kind == "ad" else "employeeNumber"
    with bound(directory, directory.admin_dn, directory.admin_password) as admin:
        for dn in dns:
            admin.delete(dn)
        admin.modify(directory.users["jdoe"].dn, {"o": [(MODIFY_DELETE, [])], employee: [(MODIFY_DELETE, [])]})


@pytest.fixture(scope="module", params=["ad", "openldap"])
def policy_site(request, tmp_path_factory):
    """(directory, ssobridge running the example policy on it) for each kind of directory."""
    directory = request.getfixturevalue("samba_ad" if request.param == "ad" else "openldap")
    dns = add_groups(directory)
    make = ad_config if request.param == "ad" else openldap_config
    service = start_service(tmp_path_factory.mktemp(f"policy-{request.param}"),
                            make(directory) + "[policy]\n" + EXAMPLE_POLICY)
    yield directory, service
    service.stop()
    remove_groups(directory, dns)


def options(dotnet, service, username: str, department: str, location: str = "PRE", *custom: str) -> dict:
    variables = [AUTH, f"loginUsername={username}", f"departmentName={department}", f"location={location}", *custom]
    return dotnet.call(service.url, "GetCustomFieldOptions", variables)


def field(result: dict, name: str) -> dict:
    return next(item for item in result["CustomFieldDataItems"] if item["CustomFieldName"] == name)


def changed(name: str, first_step=False, options=None, required=None, visible=None) -> dict:
    return {"CustomFieldName": name, "DisplayWithInformationLookup": first_step,
            "ChangeListOptions": options is not None, "ListOptions": list(options or []),
            "ChangeRequired": required is not None, "NewRequiredValue": bool(required),
            "ChangeVisible": visible is not None, "NewVisibleValue": bool(visible)}


def test_premium_member_through_three_levels_gets_department_and_field_options(policy_site, dotnet):
    directory, service = policy_site
    result = options(dotnet, service, directory.users["jdoe"].login, "Premium Support")
    assert result["Success"] is True and result["Message"] == "Result okay"
    assert result["OutputVariables"] == ["CanStartTickets=True", "CanStartChats=True"]
    assert result["CustomFieldDataItems"] == [
        changed("Site", first_step=True, options=["Berlin", "Paris"], required=True),
        changed("Account", options=["Acme Corp", "Acme Labs"], required=True),
        changed("Server Name", required=False, visible=False),
    ]


def test_deny_overrides_an_allow_through_nesting(policy_site, dotnet):
    directory, service = policy_site
    result = options(dotnet, service, directory.users["escaped_dn"].login, "premium support")
    assert result["OutputVariables"] == ["CanStartTickets=False", "CanStartChats=False"]
    assert result["Message"] == PREMIUM_REFUSED


def test_user_in_no_group_and_unknown_user(policy_site, dotnet):
    directory, service = policy_site
    no_groups = options(dotnet, service, directory.users["no_mail"].login, "Premium Support")
    assert no_groups["OutputVariables"] == ["CanStartTickets=False", "CanStartChats=False"]
    support = options(dotnet, service, directory.users["no_mail"].login, "Support")
    assert support["OutputVariables"] == ["CanStartTickets=True", "CanStartChats=True"]
    # Site is required, but this user is in no Site-* group: never a required dropdown with nothing to pick.
    assert field(support, "Site") == changed("Site", first_step=True, options=[], required=False)
    assert f"event=empty_options field='Site' user={directory.users['no_mail'].login!r} department='Support' " \
           "rule=field[0]: sent as not required" in service.log()
    unknown = options(dotnet, service, "ghost", "Sales")
    assert unknown["OutputVariables"] == ["CanStartTickets=True", "CanStartChats=False"]
    assert unknown["Message"] == "Chats with Sales are for customers with an account. Please open a ticket."
    assert unknown["CustomFieldDataItems"] == [changed("Server Name", required=False, visible=False)]


def test_a_chosen_field_value_selects_another_fields_rule(policy_site, dotnet):
    directory, service = policy_site
    result = options(dotnet, service, directory.users["jdoe"].login, "Support", "REGULAR",
                     "cf_Issue Type=Server Down", "cf_Site=Berlin")
    assert field(result, "Server Name") == changed("Server Name", required=True, visible=True)
    pre = options(dotnet, service, directory.users["jdoe"].login, "Support", "PRE", "cf_Issue Type=Server Down")
    assert field(pre, "Server Name") == changed("Server Name", required=False, visible=False)


@pytest.mark.parametrize("location", ["NORMAL", "normal", "Regular"])
def test_any_location_but_pre_is_the_compose_page(policy_site, dotnet, location):
    directory, service = policy_site
    result = options(dotnet, service, directory.users["jdoe"].login, "Support", location, "cf_Issue Type=Server Down")
    assert field(result, "Server Name") == changed("Server Name", required=True, visible=True)


def test_a_disabled_account_counts_as_not_in_the_directory(policy_site, dotnet):
    directory, service = policy_site
    disabled = directory.users["disabled"].login
    premium = options(dotnet, service, disabled, "Premium Support")
    assert premium == {"Success": True, "Message": PREMIUM_REFUSED,
                       "OutputVariables": ["CanStartTickets=False", "CanStartChats=False"],
                       "CustomFieldDataItems": [changed("Server Name", required=False, visible=False)]}
    sales = options(dotnet, service, disabled, "Sales")
    assert sales["OutputVariables"] == ["CanStartTickets=True", "CanStartChats=False"]
    refund = start_ticket(dotnet, service, disabled, "Sales", "Refund please")
    assert refund == {"Success": True, "Message": "Billing questions need an account: please sign in first.",
                      "OutputVariables": ["TicketCreation=FALSE"]}
    log = service.log()
    assert f"event=inactive_account operation=StartTicket user={disabled!r} dn=" in log
    assert "state=DISABLED: treated as not in the directory (inactive_accounts = as_unknown)" in log


def test_inactive_accounts_as_member_lets_a_disabled_accounts_groups_count(policy_site, dotnet, tmp_path):
    directory, _ = policy_site
    make = ad_config if directory.kind == "ad" else openldap_config
    policy = EXAMPLE_POLICY.replace('inactive_accounts = "as_unknown"', 'inactive_accounts = "as_member"')
    service = start_service(tmp_path, make(directory) + "[policy]\n" + policy)
    try:
        result = options(dotnet, service, directory.users["disabled"].login, "Premium Support")
    finally:
        service.stop()
    assert result["Message"] == "Result okay"
    assert result["OutputVariables"] == ["CanStartTickets=True", "CanStartChats=True"]
    assert field(result, "Site") == changed("Site", first_step=True, options=["Berlin"], required=True)


def start_ticket(dotnet, service, who: str, department: str, subject: str, *custom: str) -> dict:
    sender = f"emailFrom={who}" if "@" in who else f"loginUsername={who}"
    return dotnet.call(service.url, "StartTicket", [AUTH, sender, f"departmentName={department}",
                                                    f"subject={subject}", "ticketNumber=ABC-1", *custom])


def test_tickets_are_rerouted_by_group_and_subject_with_cf_from_attributes(policy_site, dotnet):
    directory, service = policy_site
    result = start_ticket(dotnet, service, directory.users["jdoe"].login, "Support", "Mail server is DOWN!")
    assert result == {"Success": True, "Message": "Ticket Creation Successful", "OutputVariables": [
        "TicketCreation=TRUE", "departmentName=Critical Support", "cf_Billing ID=E-1001"]}


def test_subject_contains_matches_part_of_a_word_and_subject_words_only_whole_words(policy_site, dotnet):
    directory, service = policy_site
    for subject in ("Forgot my PASSWORD", "Passwort vergessen", "Kennwortänderung"):
        result = start_ticket(dotnet, service, directory.users["no_mail"].login, "Support", subject)
        assert result["OutputVariables"] == ["TicketCreation=TRUE", "departmentName=Account Help"], subject
    # "down" is a subject word of ticket_rule[0]: "Downtime" does not contain it as a word.
    downtime = start_ticket(dotnet, service, directory.users["jdoe"].login, "Support", "Downtime planned")
    assert downtime["OutputVariables"] == ["TicketCreation=TRUE", "groupName=Internal", "cf_Billing ID=E-1001"]


def test_tickets_are_rerouted_by_custom_field_value(policy_site, dotnet):
    directory, service = policy_site
    result = start_ticket(dotnet, service, directory.users["no_mail"].login, "Support", "A question",
                          "cf_Issue Type=billing")
    assert result["OutputVariables"] == ["TicketCreation=TRUE", "departmentName=Billing"]


def test_tickets_are_rerouted_to_a_group_by_nested_membership(policy_site, dotnet):
    directory, service = policy_site
    result = start_ticket(dotnet, service, directory.users["non_ascii"].login, "Support", "Printer")
    assert result["OutputVariables"] == ["TicketCreation=TRUE", "groupName=Internal"]


def test_email_only_sender_is_found_by_address(policy_site, dotnet):
    directory, service = policy_site
    result = start_ticket(dotnet, service, directory.users["jdoe"].mail.upper(), "Support", "outage in Berlin")
    assert result["OutputVariables"] == ["TicketCreation=TRUE", "departmentName=Critical Support",
                                         "cf_Billing ID=E-1001"]


def test_unknown_sender_is_refused_by_an_explicit_rule_and_allowed_otherwise(policy_site, dotnet):
    _, service = policy_site
    refused = start_ticket(dotnet, service, "stranger@elsewhere.test", "Sales", "Refund please")
    assert refused == {"Success": True, "Message": "Billing questions need an account: please sign in first.",
                       "OutputVariables": ["TicketCreation=FALSE"]}
    allowed = start_ticket(dotnet, service, "stranger@elsewhere.test", "Sales", "A question")
    assert allowed["OutputVariables"] == ["TicketCreation=TRUE"]


def test_department_refusal_applies_to_tickets(policy_site, dotnet):
    directory, service = policy_site
    result = start_ticket(dotnet, service, directory.users["escaped_dn"].login, "Premium Support", "Help")
    assert result == {"Success": True, "Message": PREMIUM_REFUSED, "OutputVariables": ["TicketCreation=FALSE"]}


def test_chats_are_allowed_refused_and_rerouted(policy_site, dotnet):
    directory, service = policy_site

    def chat(who: str, department: str) -> dict:
        return dotnet.call(service.url, "StartChat", [AUTH, f"loginUsername={who}", f"departmentName={department}"])

    assert chat(directory.users["jdoe"].login, "Support")["OutputVariables"] == [
        "ChatCreation=TRUE", "departmentName=Premium Support"]
    assert chat(directory.users["escaped_dn"].login, "Support")["OutputVariables"] == ["ChatCreation=TRUE"]
    assert chat("ghost", "Support") == {"Success": True, "Message": "Please sign in to chat with us.",
                                        "OutputVariables": ["ChatCreation=FALSE"]}


@pytest.mark.parametrize("choice, creation", [("refuse", "FALSE"), ("allow", "TRUE")])
def test_directory_outage_applies_the_configured_choice_without_hanging(openldap, tmp_path, dotnet, dead_ldaps_url,
                                                                        blackhole_ldaps_url, choice, creation):
    import time
    policy = EXAMPLE_POLICY.replace('on_directory_unavailable = "refuse"', f'on_directory_unavailable = "{choice}"')
    config = openldap_config(openldap, urls=[blackhole_ldaps_url], connect_timeout=1, timeout=2)
    service = start_service(tmp_path, config + "[policy]\n" + policy)
    try:
        started = time.monotonic()
        result = start_ticket(dotnet, service, "jdoe", "Support", "Help")
        assert time.monotonic() - started < 15
    finally:
        service.stop()
    assert result == {"Success": True, "Message": UNAVAILABLE, "OutputVariables": [f"TicketCreation={creation}"]}


def run_ssobridge(*arguments: str):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "ssobridge", *arguments], capture_output=True, encoding="utf-8",
                          timeout=60)


def test_explain_shows_groups_rules_and_outputs(policy_site):
    directory, service = policy_site
    config = str(service.log_path.parent / "ssobridge.toml")
    done = run_ssobridge("explain", "--config", config, directory.users["jdoe"].login, "--department", "Support",
                         "--subject", "Server down", "--cf", "Issue Type=Server Down", "--location", "REGULAR")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Premium Customers" in out and "Key Accounts" in out and "Site-Berlin" in out
    assert "-> ticket_rule[0]: matches" in out
    assert "   field[2]: location is not REGULAR" not in out  # field[2] is REGULAR-only and applies here
    assert "-> field[2]: field 'Server Name'" in out
    assert "    departmentName=Critical Support" in out and "    cf_Billing ID=E-1001" in out
    assert "field 'Site': first_step=True options=['Berlin', 'Paris'] required=true visible=unchanged" in out
    assert "    CanStartTickets=True" in out and "    ChatCreation=TRUE" in out
    by_email = run_ssobridge("explain", "--config", config, "stranger@elsewhere.test", "--department", "Sales",
                             "--subject", "refund")
    assert "email: 'stranger@elsewhere.test'" in by_email.stdout
    assert "not found: stranger@elsewhere.test (not in the directory: nobody by that name); groups: none\n" \
        in by_email.stdout
    assert "-> ticket_rule[2]: matches" in by_email.stdout and "TicketCreation=FALSE" in by_email.stdout


def test_check_reports_a_rule_naming_a_group_that_does_not_exist(policy_site, tmp_path):
    directory, service = policy_site
    text = (service.log_path.parent / "ssobridge.toml").read_text(encoding="utf-8")
    config = tmp_path / "ssobridge.toml"
    config.write_text(text.replace('chats_deny = ["Contractors"]', 'chats_deny = ["Contractorz"]'), encoding="utf-8")
    done = run_ssobridge("check", "--config", str(config))
    assert done.returncode == 1
    assert "group 'Contractorz': PROBLEM: named in the rules but not found in any directory" in done.stdout
    assert "group 'Premium Customers': found in" in done.stdout


def test_contradictory_and_unreachable_rules_are_refused_at_start(tmp_path):
    from ssobridge.config import ConfigError, load
    config = tmp_path / "c.toml"
    config.write_text('[smartertrack]\nweb_service_password = "x"\n'
                      '[[department]]\nname = "Sales"\ntickets = ["Staff"]\ntickets_deny = ["staff"]\n'
                      '[[ticket_rule]]\ndepartment = "A"\n[[ticket_rule]]\ngroups = ["Staff"]\ndepartment = "B"\n'
                      '[[field]]\nname = "X"\nvisible = false\n[[field]]\nname = "x"\ngroups = ["Staff"]\n'
                      'visible = true\n', encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load(config)
    assert error.value.problems == [
        "department[0]: staff is both allowed and denied tickets (deny wins, so the allow is dead)",
        "ticket_rule[1]: can never apply: ticket_rule[0] has no conditions and matches everything first "
        "(first match wins)",
        "field[1]: can never apply: field[0] for 'x' has no conditions and matches first",
    ]
