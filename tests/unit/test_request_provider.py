"""GetCustomFieldOptions, StartTicket and StartChat (providers/requests.py) on docs/examples/group-rules.toml's policy,
case by case, with a FAKE directory set: people are real UserEntry objects with their groups and account
states, so a rule change is checked in milliseconds. tests/test_policy.py proves the same on real
directories through the .NET client.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pytest

from ssobridge.providers.base import CustomFieldChange, ProviderResult, Variables
from ssobridge.providers.requests import Lookup
from tests.support.fake_directory import chat, fields_, options, provider, ticket

SERVER_NAME_HIDDEN = CustomFieldChange("Server Name", required=False, visible=False)
PREMIUM_REFUSED = "Premium Support is for premium customers. Please choose Support."
UNAVAILABLE = "The directory is unavailable, so we cannot check your request. Please try again."
UNKNOWN = "We could not find you in our directory. Please contact us by phone."
CAN = (("CanStartTickets", "True"), ("CanStartChats", "True"))
CANNOT = (("CanStartTickets", "False"), ("CanStartChats", "False"))


@dataclass(frozen=True)
class Case:
    name: str
    operation: str  # custom_field_options, start_ticket or start_chat
    variables: dict
    expected: ProviderResult
    policy: dict = field(default_factory=dict)  # changes to the example policy


CASES = [
    # GetCustomFieldOptions
    Case("premium member: department and field options", "custom_field_options", options("jdoe", "Premium Support"),
         ProviderResult(True, "Result okay", CAN, fields_(
             CustomFieldChange("Site", first_step=True, list_options=("Berlin", "Paris"), required=True),
             CustomFieldChange("Account", list_options=("Acme Corp", "Acme Labs"), required=True),
             SERVER_NAME_HIDDEN))),
    Case("deny wins", "custom_field_options", options("jdoejr", "premium support"),
         ProviderResult(True, PREMIUM_REFUSED, CANNOT, fields_(
             CustomFieldChange("Site", first_step=True, list_options=(), required=False),
             CustomFieldChange("Account", list_options=(), required=False), SERVER_NAME_HIDDEN))),
    Case("an empty option list is sent as not required", "custom_field_options", options("nmail", "Support"),
         ProviderResult(True, "Result okay", CAN, fields_(
             CustomFieldChange("Site", first_step=True, list_options=(), required=False),
             CustomFieldChange("Account", list_options=(), required=False), SERVER_NAME_HIDDEN))),
    Case("NORMAL is the compose page", "custom_field_options",
         options("jdoe", "Sales", "NORMAL", Issue_Type="Server Down"),
         ProviderResult(True, "Result okay", CAN, fields_(
             CustomFieldChange("Account", list_options=("Acme Corp", "Acme Labs"), required=True),
             CustomFieldChange("Server Name", required=True, visible=True)))),
    Case("no location sent: the compose page", "custom_field_options",
         {"loginUsername": "nmail", "departmentName": "Sales", "cf_Issue Type": "Server Down"},
         ProviderResult(True, "Result okay", CAN, fields_(
             CustomFieldChange("Account", list_options=(), required=False),
             CustomFieldChange("Server Name", required=True, visible=True)))),
    Case("unknown user: everyone and not-in-directory only", "custom_field_options", options("ghost", "Sales"),
         ProviderResult(True, "Chats with Sales are for customers with an account. Please open a ticket.",
                        (("CanStartTickets", "True"), ("CanStartChats", "False")), fields_(SERVER_NAME_HIDDEN))),
    Case("a disabled account is not in the directory", "custom_field_options", options("disabled", "Premium Support"),
         ProviderResult(True, PREMIUM_REFUSED, CANNOT, fields_(SERVER_NAME_HIDDEN))),
    Case("a locked account is not in the directory", "custom_field_options", options("locky", "Premium Support"),
         ProviderResult(True, PREMIUM_REFUSED, CANNOT, fields_(SERVER_NAME_HIDDEN))),
    Case("an expired account is not in the directory", "custom_field_options", options("expired", "Premium Support"),
         ProviderResult(True, PREMIUM_REFUSED, CANNOT, fields_(SERVER_NAME_HIDDEN))),
    Case("an expired password leaves a member", "custom_field_options", options("pwdexpired", "Premium Support"),
         ProviderResult(True, "Result okay", CAN, fields_(
             CustomFieldChange("Site", first_step=True, list_options=(), required=False),
             CustomFieldChange("Account", list_options=(), required=False), SERVER_NAME_HIDDEN))),
    Case("a password to change leaves a member", "custom_field_options", options("mustchange", "Premium Support"),
         ProviderResult(True, "Result okay", CAN, fields_(
             CustomFieldChange("Site", first_step=True, list_options=(), required=False),
             CustomFieldChange("Account", list_options=(), required=False), SERVER_NAME_HIDDEN))),
    Case("as_member: a disabled account's groups count", "custom_field_options",
         options("disabled", "Premium Support"),
         ProviderResult(True, "Result okay", CAN, fields_(
             CustomFieldChange("Site", first_step=True, list_options=("Berlin",), required=True),
             CustomFieldChange("Account", list_options=(), required=False), SERVER_NAME_HIDDEN)),
         policy={"inactive_accounts": "as_member"}),
    Case("ambiguous user: not in the directory", "custom_field_options", options("twin", "Sales"),
         ProviderResult(True, "Chats with Sales are for customers with an account. Please open a ticket.",
                        (("CanStartTickets", "True"), ("CanStartChats", "False")), fields_(SERVER_NAME_HIDDEN))),
    Case("outage, refuse", "custom_field_options", options("outage", "Sales"), ProviderResult(True, UNAVAILABLE, CANNOT)),
    Case("outage, allow", "custom_field_options", options("outage", "Sales"), ProviderResult(True, UNAVAILABLE, CAN),
         policy={"on_directory_unavailable": "allow"}),
    Case("unknown_users = refuse", "custom_field_options", options("ghost", "Sales"),
         ProviderResult(True, UNKNOWN, CANNOT), policy={"unknown_users": "refuse"}),
    Case("unknown_users = refuse: an inactive account too", "custom_field_options", options("disabled", "Sales"),
         ProviderResult(True, UNKNOWN, CANNOT), policy={"unknown_users": "refuse"}),
    # StartTicket
    Case("subject word and group: re-route with cf_ from an attribute", "start_ticket",
         ticket("jdoe", "Support", "Mail server is DOWN!"),
         ProviderResult(True, "Ticket Creation Successful", (("TicketCreation", "TRUE"),
                                                             ("departmentName", "Critical Support"),
                                                             ("cf_Billing ID", "E-1001")))),
    Case("a subject word is a whole word", "start_ticket", ticket("jdoe", "Support", "Downtime planned"),
         ProviderResult(True, "Ticket Creation Successful", (("TicketCreation", "TRUE"), ("groupName", "Internal"),
                                                             ("cf_Billing ID", "E-1001")))),
    Case("subject_contains: part of a word", "start_ticket", ticket("nmail", "Support", "Passwort vergessen"),
         ProviderResult(True, "Ticket Creation Successful", (("TicketCreation", "TRUE"),
                                                             ("departmentName", "Account Help")))),
    Case("a custom field value re-routes", "start_ticket", ticket("nmail", "Support", "Hi", Issue_Type="billing"),
         ProviderResult(True, "Ticket Creation Successful", (("TicketCreation", "TRUE"), ("departmentName", "Billing")))),
    Case("found by email", "start_ticket", ticket("JDOE@example.test", "Support", "outage in Berlin"),
         ProviderResult(True, "Ticket Creation Successful", (("TicketCreation", "TRUE"),
                                                             ("departmentName", "Critical Support"),
                                                             ("cf_Billing ID", "E-1001")))),
    Case("not-in-directory rule refuses a stranger", "start_ticket", ticket("x@elsewhere.test", "Sales", "Refund!"),
         ProviderResult(True, "Billing questions need an account: please sign in first.",
                        (("TicketCreation", "FALSE"),))),
    Case("not-in-directory rule refuses a disabled account", "start_ticket", ticket("disabled", "Sales", "refund"),
         ProviderResult(True, "Billing questions need an account: please sign in first.",
                        (("TicketCreation", "FALSE"),))),
    Case("no rule matches: allowed", "start_ticket", ticket("x@elsewhere.test", "Sales", "A question"),
         ProviderResult(True, "Ticket Creation Successful", (("TicketCreation", "TRUE"),))),
    Case("the department refuses", "start_ticket", ticket("jdoejr", "Premium Support", "Help"),
         ProviderResult(True, PREMIUM_REFUSED, (("TicketCreation", "FALSE"),))),
    Case("outage, refuse: ticket", "start_ticket", ticket("outage", "Support", "Help"),
         ProviderResult(True, UNAVAILABLE, (("TicketCreation", "FALSE"),))),
    Case("outage, allow: ticket", "start_ticket", ticket("outage", "Support", "Help"),
         ProviderResult(True, UNAVAILABLE, (("TicketCreation", "TRUE"),)), policy={"on_directory_unavailable": "allow"}),
    Case("unknown_users = refuse: ticket", "start_ticket", ticket("ghost", "Support", "Help"),
         ProviderResult(True, UNKNOWN, (("TicketCreation", "FALSE"),)), policy={"unknown_users": "refuse"}),
    # StartChat
    Case("chat re-routed by group", "start_chat", chat("jdoe", "Support"),
         ProviderResult(True, "Chat Creation Successful", (("ChatCreation", "TRUE"),
                                                           ("departmentName", "Premium Support")))),
    Case("chat: deny in the rule, allowed by the department", "start_chat", chat("jdoejr", "Support"),
         ProviderResult(True, "Chat Creation Successful", (("ChatCreation", "TRUE"),))),
    Case("chat refused to the unknown", "start_chat", chat("ghost", "Support"),
         ProviderResult(True, "Please sign in to chat with us.", (("ChatCreation", "FALSE"),))),
    Case("chat refused to a disabled account", "start_chat", chat("disabled", "Support"),
         ProviderResult(True, "Please sign in to chat with us.", (("ChatCreation", "FALSE"),))),
    Case("outage, allow: chat", "start_chat", chat("outage", "Support"),
         ProviderResult(True, UNAVAILABLE, (("ChatCreation", "TRUE"),)), policy={"on_directory_unavailable": "allow"}),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_request_provider(case: Case):
    handler = getattr(provider(**case.policy), case.operation)
    assert handler(Variables.from_pairs(list(case.variables.items()))) == case.expected


@dataclass(frozen=True)
class IdentifyCase:
    name: str
    username: str | None
    email: str | None
    lookup: Lookup
    describe: str
    policy: dict = field(default_factory=dict)


IDENTIFY_CASES = [
    IdentifyCase("found, with groups", "nmail", None, Lookup.FOUND, "uid=nmail,ou=people,dc=example,dc=org; groups: none"),
    IdentifyCase("nobody given", None, None, Lookup.NOT_FOUND, " (not in the directory: anonymous); groups: none"),
    IdentifyCase("nobody found", "ghost", None, Lookup.NOT_FOUND,
                 "ghost (not in the directory: nobody by that name); groups: none"),
    IdentifyCase("inactive", "locky", None, Lookup.NOT_FOUND,
                 "locky (not in the directory: uid=locky,ou=people,dc=example,dc=org is locked, "
                 "inactive_accounts = as_unknown); groups: none"),
    IdentifyCase("inactive, as_member", "locky", None, Lookup.FOUND,
                 "uid=locky,ou=people,dc=example,dc=org; groups: Premium Customers",
                 {"inactive_accounts": "as_member"}),
    IdentifyCase("ambiguous", "twin", None, Lookup.NOT_FOUND,
                 "twin (not in the directory: ambiguous (user_filter matches 2 entries: 'uid=twin,ou=a', "
                 "'uid=twin,ou=b')); groups: none"),
    IdentifyCase("outage", None, "outage", Lookup.OUTAGE,
                 "outage: directory unavailable (ldaps://dc1.example.test: timed out)"),
]


@pytest.mark.parametrize("case", IDENTIFY_CASES, ids=lambda c: c.name)
def test_identify(case: IdentifyCase):
    requester = provider(**case.policy).identify(case.username, case.email)
    assert (requester.lookup, requester.describe()) == (case.lookup, case.describe)


def test_one_log_line_names_the_field_and_user_of_an_empty_required_list(caplog):
    with caplog.at_level(logging.INFO, logger="ssobridge.requests"):
        provider().custom_field_options(Variables.from_pairs(list(options("nmail", "Support").items())))
    empty = [r.getMessage() for r in caplog.records if "event=empty_options" in r.getMessage()]
    assert empty == [
        "event=empty_options field='Site' user='nmail' department='Support' rule=field[0]: sent as not required",
        "event=empty_options field='Account' user='nmail' department='Support' rule=field[1]: sent as not required",
    ]


def test_an_ambiguous_user_is_logged_at_error(caplog):
    with caplog.at_level(logging.INFO, logger="ssobridge.requests"):
        provider().start_chat(Variables.from_pairs(list(chat("twin", "Support").items())))
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == ["event=ambiguous_user operation=StartChat user='twin' error=\"user_filter matches 2 entries: "
                      "'uid=twin,ou=a', 'uid=twin,ou=b'\""]
