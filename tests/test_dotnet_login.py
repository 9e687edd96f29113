"""SmarterTrack's side of the wire: a .NET SoapHttpClientProtocol client (Mono) signs users of a real
Samba AD domain and a real OpenLDAP directory in through ssobridge, over SOAP 1.1 and 1.2, and every
field it reads back is checked.
"""

from __future__ import annotations

import pytest

from tests.support.services import MESSAGES, WEB_SERVICE_PASSWORD, WRONG, identity

AUTH = f"authPW={WEB_SERVICE_PASSWORD}"
SOAP_VERSIONS = ["11", "12"]


def ok(directory, key: str) -> dict:
    return {"Success": True, "Message": "Login Successful",
            "OutputVariables": ["Authentication=OK", *identity(directory, key)]}


def fail(message: str) -> dict:
    return {"Success": True, "Message": message, "OutputVariables": ["Authentication=FAIL"]}


def authenticate(dotnet, service, username: str, password: str, soap: str) -> dict:
    return dotnet.call(service.url, "Authenticate",
                       [AUTH, f"loginUsername={username}", f"loginPassword={password}"], soap=soap)


def sign_in_cookie(dotnet, service, username: str, soap: str) -> dict:
    return dotnet.call(service.url, "GetSignInCookieInfo", [AUTH, f"loginUsername={username}"], soap=soap)


@pytest.mark.parametrize("soap", SOAP_VERSIONS)
@pytest.mark.parametrize("username", ["EXAMPLE\\jdoe", "jdoe@example.test", "jdoe"])
def test_dotnet_client_logs_ad_user_in_with_each_username_form(dotnet, samba_ad, ad_service, username, soap):
    password = samba_ad.users["jdoe"].password
    assert authenticate(dotnet, ad_service, username, password, soap) == ok(samba_ad, "jdoe")
    assert sign_in_cookie(dotnet, ad_service, username, soap) == ok(samba_ad, "jdoe")


@pytest.mark.parametrize("soap", SOAP_VERSIONS)
@pytest.mark.parametrize("key", ["non_ascii", "escaped_dn", "nbsp_password", "no_mail"])
def test_dotnet_client_reads_awkward_values_intact(dotnet, site, key, soap):
    directory, service = site
    user = directory.users[key]
    assert authenticate(dotnet, service, user.login, user.password, soap) == ok(directory, key)


ACCOUNT_STATES = [("disabled", "disabled"), ("must_change", "must_change"), ("password_expired", "password_expired")]


@pytest.mark.parametrize("soap", SOAP_VERSIONS)
@pytest.mark.parametrize("key, message", ACCOUNT_STATES)
def test_dotnet_client_gets_fail_with_the_reason_for_each_account_state(dotnet, site, key, message, soap):
    directory, service = site
    user = directory.users[key]
    assert authenticate(dotnet, service, user.login, user.password, soap) == fail(MESSAGES[message])
    assert sign_in_cookie(dotnet, service, user.login, soap) == fail(MESSAGES[message])


@pytest.mark.parametrize("soap", SOAP_VERSIONS)
def test_dotnet_client_gets_fail_for_an_expired_ad_account(dotnet, samba_ad, ad_service, soap):
    user = samba_ad.users["account_expired"]
    assert authenticate(dotnet, ad_service, f"EXAMPLE\\{user.login}", user.password, soap) == \
        fail(MESSAGES["account_expired"])
    assert sign_in_cookie(dotnet, ad_service, user.login, soap) == fail(MESSAGES["account_expired"])


@pytest.mark.parametrize("soap", SOAP_VERSIONS)
def test_dotnet_client_gets_fail_for_locked_account_and_wrong_password(dotnet, site, soap):
    directory, service = site
    assert authenticate(dotnet, service, directory.users["no_mail"].login, "wrong-Passw0rd", soap) == fail(WRONG)
    user = directory.users["lockable"]
    directory.lock_out(user)
    try:
        assert authenticate(dotnet, service, user.login, user.password, soap) == fail(MESSAGES["locked"])
        assert sign_in_cookie(dotnet, service, user.login, soap) == fail(MESSAGES["locked"])
    finally:
        directory.unlock(user)


@pytest.mark.parametrize("soap", SOAP_VERSIONS)
def test_dotnet_client_sees_refused_calls_as_success_false(dotnet, ad_service, soap):
    denied = dotnet.call(ad_service.url, "Authenticate", ["authPW=wrong", "loginUsername=jdoe", "loginPassword=x"],
                         soap=soap)
    assert denied == {"Success": False, "Message": "Permission Denied", "OutputVariables": []}
    missing = dotnet.call(ad_service.url, "Authenticate", [AUTH, None, "loginUsername=jdoe"], soap=soap)
    assert missing == {"Success": False, "Message": "Required Input Missing: loginPassword", "OutputVariables": []}
    no_list = dotnet.call(ad_service.url, "GetSignInCookieInfo", None, soap=soap)
    assert no_list == {"Success": False, "Message": "Permission Denied", "OutputVariables": []}
    no_inputs = dotnet.call(ad_service.url, "GetSignInCookieInfo", None, soap=soap, null_inputs=True)
    assert no_inputs == {"Success": False, "Message": "Permission Denied", "OutputVariables": []}


@pytest.mark.parametrize("soap", SOAP_VERSIONS)
def test_dotnet_client_reads_not_enabled_providers(dotnet, ad_service, soap):
    result = dotnet.call(ad_service.url, "GetCustomFieldOptions", [AUTH, "loginUsername=jdoe"], soap=soap)
    assert result["Success"] is False
    assert result["Message"] == "The custom field provider is not enabled in ssobridge."
    assert not result.get("CustomFieldDataItems")
    event = dotnet.call(ad_service.url, "NotifyEventFired", [AUTH, "eventType=502000"], soap=soap)
    assert event == {"Success": False, "Message": "The event provider is not enabled in ssobridge."}
