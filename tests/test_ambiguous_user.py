"""A user_filter that matches two people on a real slapd: every operation decides it as the one rule says
(ssobridge/directory/directory.py). Login: FAIL with the wrong-password message, never in as either entry;
the policy and the user card: not in the directory. Each call logs one ERROR line naming both DNs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.services import WEB_SERVICE_PASSWORD, WRONG, call, openldap_config, start_service

AUTH = f"authPW={WEB_SERVICE_PASSWORD}"
EXAMPLE = Path(__file__).parent.parent / "docs" / "examples" / "group-rules.toml"
# "jdoe" finds jdoe and nmail; "nmail" finds only nmail.
TWO_PEOPLE_FILTER = "(&(objectClass=inetOrgPerson)(|(uid={user})(uid=nmail)))"


@pytest.fixture(scope="module")
def twin_site(openldap, tmp_path_factory):
    service = start_service(tmp_path_factory.mktemp("ambiguous"),
                            openldap_config(openldap, user_filter=TWO_PEOPLE_FILTER)
                            + "[user_info]\n" + EXAMPLE.read_text(encoding="utf-8"))
    yield openldap, service
    service.stop()


def ambiguous_lines(service, operation: str) -> list[str]:
    return [line for line in service.log().splitlines() if "event=ambiguous_user" in line and operation in line]


def test_an_ambiguous_login_fails_as_a_wrong_password_and_logs_both_dns_once(twin_site):
    openldap, service = twin_site
    jdoe, nmail = openldap.users["jdoe"], openldap.users["no_mail"]
    result = call(service.url, "Authenticate", [AUTH, "loginUsername=jdoe", f"loginPassword={jdoe.password}"])
    assert result == {"Success": True, "Message": WRONG, "OutputVariables": ["Authentication=FAIL"]}
    [line] = ambiguous_lines(service, "operation=Authenticate")
    assert " ERROR " in line and jdoe.dn in line and nmail.dn in line
    assert re.search(r"event=login operation=Authenticate outcome=FAIL reason='user_filter matched several "
                     r"entries' user='jdoe'", service.log())


def test_an_ambiguous_requester_gets_the_answer_of_someone_not_in_the_directory(twin_site):
    openldap, service = twin_site
    asked = [AUTH, "departmentName=Sales", "location=PRE"]
    ambiguous = call(service.url, "GetCustomFieldOptions", [*asked, "loginUsername=jdoe"])
    # Every plain name finds nmail here: nobody is a name in a domain no directory claims.
    nobody = call(service.url, "GetCustomFieldOptions", [*asked, "loginUsername=ELSEWHERE\\nobody"])
    assert ambiguous == nobody
    assert ambiguous["Message"] == "Chats with Sales are for customers with an account. Please open a ticket."
    [line] = ambiguous_lines(service, "operation=GetCustomFieldOptions")
    assert " ERROR " in line and openldap.users["jdoe"].dn in line and openldap.users["no_mail"].dn in line


def test_an_ambiguous_customer_has_no_card(twin_site):
    openldap, service = twin_site
    result = call(service.url, "GetUserDetails", [AUTH, "username=jdoe", "email=", "interactionType=ticket"])
    assert (result["Success"], result["Message"], result["UserInfoHtml"]) == \
        (True, "No directory entry for this customer", None)
    [line] = [line for line in service.log().splitlines() if "event=ambiguous_user user='jdoe'" in line]
    assert " ERROR " in line and openldap.users["jdoe"].dn in line and openldap.users["no_mail"].dn in line
    found = call(service.url, "GetUserDetails", [AUTH, "username=nmail", "email=", "interactionType=ticket"])
    assert found["Message"] == "User Account Information Retrieved Successfully"
