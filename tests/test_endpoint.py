"""The SOAP endpoint as SmarterTrack meets it: one URL, ?wsdl, authPW, refusals of bad input.

The directory here is a TCP listener that counts connections and never answers, so a test can prove
that a refused call caused no directory traffic at all.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from pathlib import Path

import pytest
from lxml import etree

from tests.support.services import (NS, WEB_SERVICE_PASSWORD, call, directory_toml, envelope, fault_text, post,
                                    ssobridge, start_service)

AUTH = f"authPW={WEB_SERVICE_PASSWORD}"
REFERENCE_WSDL = Path(__file__).parent.parent / "ssobridge" / "wsdl" / "ExternalProvider.asmx.wsdl"


class CountingListener:
    """Accepts TCP connections, counts them, never answers."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        self._held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            self._held.append(connection)


@pytest.fixture(scope="module")
def listener():
    return CountingListener()


@pytest.fixture(scope="module")
def service(tmp_path_factory, listener):
    body = directory_toml("corp", "active_directory", [f"ldaps://127.0.0.1:{listener.port}"], "DC=example,DC=test",
                          "svc@example.test", "svc-password", connect_timeout=1, timeout=1,
                          netbios_domain="EXAMPLE", upn_suffixes=["example.test"])
    running = start_service(tmp_path_factory.mktemp("endpoint"), body)
    yield running
    running.stop()


@pytest.mark.parametrize("query", ["wsdl", "WSDL", "Wsdl"])
def test_wsdl_is_the_asmx_one_with_the_public_url(service, query):
    status, data = post_get(service.url + "?" + query)
    assert status == 200
    expected = REFERENCE_WSDL.read_bytes().replace(
        b"http://127.0.0.1:8200/ExternalProvider.asmx", service_public_url(service).encode())
    assert data == expected
    assert etree.fromstring(data).tag == "{http://schemas.xmlsoap.org/wsdl/}definitions"


def service_public_url(service) -> str:
    port = service.url.split(":")[2].split("/")[0]
    return f"http://sso.example.test:{port}/ExternalProvider.asmx"


def post_get(url: str) -> tuple[int, bytes]:
    import urllib.request
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


@pytest.mark.parametrize("path", ["/ExternalProvider.asmx", "/", "/anything/Login.asmx"])
@pytest.mark.parametrize("soap12", [False, True])
def test_any_path_serves_both_soap_versions(service, path, soap12):
    url = service.url.rsplit("/", 1)[0].rstrip("/") + path if path != "/" else service.url.rsplit("/", 1)[0] + "/"
    result = call(url, "StartTicket", [AUTH, "loginUsername=jdoe"], soap12=soap12)
    assert result == {"Success": False, "Message": "The ticket provider is not enabled in ssobridge.",
                      "OutputVariables": []}


@pytest.mark.parametrize("operation, provider", [
    ("GetCustomFieldOptions", "custom field"), ("StartTicket", "ticket"), ("StartChat", "live chat"),
    ("GetUserDetails", "user information"), ("NotifyEventFired", "event")])
def test_providers_not_built_yet_say_so(service, operation, provider):
    result = call(service.url, operation, [AUTH])
    assert result["Success"] is False
    assert result["Message"] == f"The {provider} provider is not enabled in ssobridge."


@pytest.mark.parametrize("variables", [
    ["authPW=wrong", "loginUsername=jdoe", "loginPassword=x"],
    ["loginUsername=jdoe", "loginPassword=x"],
    [AUTH, AUTH, "loginUsername=jdoe", "loginPassword=x"],
    [AUTH.upper().replace("AUTHPW", "AuthPW") + "x", "loginUsername=jdoe", "loginPassword=x"],
    ["authPW=", "loginUsername=jdoe", "loginPassword=x"],
])
def test_wrong_missing_or_repeated_authpw_is_permission_denied_without_lookup(service, listener, variables):
    before = listener.connections
    result = call(service.url, "Authenticate", variables)
    assert result == {"Success": False, "Message": "Permission Denied", "OutputVariables": []}
    assert listener.connections == before


def test_authpw_name_is_case_insensitive_and_values_split_on_first_equals(service, listener):
    result = call(service.url, "Authenticate", [f"AuthPW={WEB_SERVICE_PASSWORD}", "LoginUsername=jdoe",
                                                "garbage-without-equals", None])
    assert result == {"Success": False, "Message": "Required Input Missing: loginPassword", "OutputVariables": []}


@pytest.mark.parametrize("variables, missing", [
    ([AUTH], "loginUsername, loginPassword"),
    ([AUTH, "loginUsername=", "loginPassword=x"], "loginUsername"),
    ([AUTH, "loginUsername=jdoe"], "loginPassword"),
])
def test_missing_login_inputs_are_named(service, listener, variables, missing):
    before = listener.connections
    result = call(service.url, "Authenticate", variables)
    assert result == {"Success": False, "Message": f"Required Input Missing: {missing}", "OutputVariables": []}
    assert listener.connections == before


def test_sign_in_cookie_needs_a_username(service):
    result = call(service.url, "GetSignInCookieInfo", [AUTH])
    assert result == {"Success": False, "Message": "Required Input Missing: loginUsername", "OutputVariables": []}


@pytest.mark.parametrize("password", ["   ", "\t", "\u00a0"])
def test_blank_or_nul_password_fails_without_directory_traffic(service, listener, password):
    before = listener.connections
    result = call(service.url, "Authenticate", [AUTH, "loginUsername=EXAMPLE\\jdoe", "loginPassword=" + password])
    assert result == {"Success": True, "Message": "Wrong username or password.",
                      "OutputVariables": ["Authentication=FAIL"]}
    assert listener.connections == before


def test_nul_in_a_password_cannot_even_be_sent_in_xml(service, listener):
    before = listener.connections
    body = envelope("Authenticate", [AUTH, "loginUsername=jdoe", "loginPassword=pass&#0;word"])
    status, data = post(service.url, body.replace(b"&amp;#0;", b"&#0;"))
    assert status == 400 and fault_text(data).startswith("Malformed XML: ")
    assert listener.connections == before


@pytest.mark.parametrize("username", ["OTHER\\jdoe", "jdoe@other.test", "other/jdoe"])
def test_unclaimed_domain_or_suffix_fails_without_directory_traffic(service, listener, username):
    before = listener.connections
    result = call(service.url, "Authenticate", [AUTH, "loginUsername=" + username, "loginPassword=x"])
    assert result["OutputVariables"] == ["Authentication=FAIL"]
    assert result["Message"] == "Wrong username or password."
    assert listener.connections == before


def test_silent_directory_is_unavailable_not_a_wrong_password_and_does_not_hang(service):
    started = time.monotonic()
    result = call(service.url, "Authenticate", [AUTH, "loginUsername=jdoe", "loginPassword=secret"])
    assert result == {"Success": True, "Message": "The directory is unavailable. Please try again in a few minutes.",
                      "OutputVariables": ["Authentication=FAIL"]}
    assert time.monotonic() - started < 10  # connect_timeout and timeout are 1 s


def raw_request(service, body: bytes, headers: dict) -> tuple[int, bytes]:
    host, port = service.url.split("//")[1].split("/")[0].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("POST", "/ExternalProvider.asmx", body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.read()


SOAP11_HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{NS}Authenticate"'}


def test_doctype_is_refused_before_parsing(service):
    body = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            + envelope("Authenticate", [AUTH, "loginUsername=&e;"]).split(b"?>", 1)[1])
    status, data = raw_request(service, body, SOAP11_HEADERS)
    assert status == 400 and fault_text(data) == "DOCTYPE is not allowed in a SOAP message."


@pytest.mark.parametrize("body, message", [
    (b"", "Empty request body: a SOAP envelope was expected."),
    (b"<soap:Envelope xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/'><soap:Body><Authenticate",
     "Malformed XML: "),
    (envelope("DeleteEverything", [AUTH]), "Unknown operation 'DeleteEverything'"),
    (b"<a/>", "Not a SOAP 1.1 envelope."),
])
def test_bad_bodies_get_a_short_plain_fault(service, body, message):
    status, data = raw_request(service, body, SOAP11_HEADERS)
    assert status == 400
    assert fault_text(data).startswith(message)
    assert b"Traceback" not in data


def test_soap12_bad_body_gets_a_soap12_fault(service):
    status, data = raw_request(service, b"<a/>", {"Content-Type": "application/soap+xml; charset=utf-8"})
    assert status == 400 and fault_text(data) == "Not a SOAP 1.2 envelope."


@pytest.mark.parametrize("soap12", [False, True])
def test_a_body_the_schema_refuses_gets_a_fault_of_the_callers_soap_version(service, soap12):
    body = envelope("Authenticate", [AUTH], soap12).replace(b"<inputs>", b"<inputs><Bogus>1</Bogus>")
    status, data = post(service.url, body, soap12)
    assert status == 500  # as ASMX answers a fault
    assert "Element '{http://tempuri.org/}Bogus': This element is not expected." in fault_text(data)
    assert "internal_error" not in service.log()


def test_body_over_the_limit_is_refused(service):
    status, data = raw_request(service, b"x" * (1024 * 1024 + 1), SOAP11_HEADERS)
    assert status == 413 and fault_text(data) == "Request body larger than 1048576 bytes."


def test_more_than_1000_variables_is_a_fault(service):
    body = envelope("Authenticate", [AUTH] + ["x=1"] * 1000)
    status, data = raw_request(service, body, SOAP11_HEADERS)
    assert status == 400
    assert fault_text(data) == "More than 1000 InputVariables."


def test_expect_100_continue_is_answered_before_the_body(service):
    host, port = service.url.split("//")[1].split("/")[0].split(":")
    body = envelope("StartChat", [AUTH])
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(b"POST /ExternalProvider.asmx HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml; charset=utf-8"
                           b"\r\nExpect: 100-continue\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        assert connection.recv(1024).startswith(b"HTTP/1.1 100 Continue")
        connection.sendall(body)
        answer = b""
        while b"</soap11env:Envelope>" not in answer:
            answer += connection.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 OK") and b"live chat provider is not enabled" in answer


def test_passwords_and_bodies_never_reach_the_log(service):
    secret = "Zebra-Secret-4711"
    call(service.url, "Authenticate", [AUTH, "loginUsername=jdoe", f"loginPassword={secret}"])
    call(service.url, "Authenticate", ["authPW=" + secret, "loginUsername=jdoe", f"loginPassword={secret}"])
    truncated = envelope("Authenticate", [AUTH, f"loginPassword={secret}"])[:-40]
    raw_request(service, truncated, SOAP11_HEADERS)
    raw_request(service, b"<!DOCTYPE x>" + truncated, SOAP11_HEADERS)
    time.sleep(0.2)
    log = service.log()
    assert "event=login" in log  # the log is written, and at DEBUG level
    assert secret not in log and WEB_SERVICE_PASSWORD not in log and "<soap" not in log


@pytest.fixture(scope="module")
def https_service(tmp_path_factory, pki):
    running = start_service(tmp_path_factory.mktemp("https"), "", tls=pki.server,
                            smartertrack='[smartertrack.passwords]\nuser_info = "user-info-secret"\n')
    yield running
    running.stop()


def test_https_is_served_and_the_dotnet_client_verifies_it(https_service, dotnet, pki):
    result = dotnet.call(https_service.url, "StartChat", [AUTH], ca_file=str(pki.ca.cert_file))
    assert result == {"Success": False, "Message": "The live chat provider is not enabled in ssobridge.",
                      "OutputVariables": []}
    wrong_ca = dotnet.call(https_service.url, "StartChat", [AUTH], ca_file=str(pki.wrong_ca.cert_file))
    assert "Fault" in wrong_ca


def test_a_provider_with_its_own_password_refuses_the_default_one(https_service, dotnet, pki):
    ca_file = str(pki.ca.cert_file)
    default = dotnet.call(https_service.url, "GetUserDetails", [AUTH], ca_file=ca_file)
    assert default["Message"] == "Permission Denied"
    own = dotnet.call(https_service.url, "GetUserDetails", ["authPW=user-info-secret"], ca_file=ca_file)
    assert own["Message"] == "The user information provider is not enabled in ssobridge."
    other = dotnet.call(https_service.url, "StartTicket", ["authPW=user-info-secret"], ca_file=ca_file)
    assert other["Message"] == "Permission Denied"


def test_healthcheck_verifies_that_the_listener_presents_tls_cert(https_service, pki, tmp_path):
    config = (https_service.log_path.parent / "ssobridge.toml").read_text()
    assert ssobridge("healthcheck", "--config", str(https_service.log_path.parent / "ssobridge.toml")).returncode == 0
    other = tmp_path / "ssobridge.toml"  # the same listener, but a config naming another certificate
    other.write_text(config.replace(str(pki.server.cert_file), str(pki.wrong_ca.cert_file)))
    assert str(pki.wrong_ca.cert_file) in other.read_text()
    done = ssobridge("healthcheck", "--config", str(other))
    assert done.returncode == 1
    assert "certificate verify failed" in done.stderr


def test_a_pkcs1_tls_key_is_served_from_a_private_pkcs8_copy(https_service, pki):
    assert pki.server.key_file.read_bytes().startswith((b"-----BEGIN RSA PRIVATE KEY", b"-----BEGIN EC PRIVATE KEY"))
    copy = https_service.log_path.parent / "tls_key.pkcs8.pem"
    assert copy.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert copy.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_tls_1_2_and_1_3_are_both_accepted(https_service, pki, version):
    import ssl
    context = ssl.create_default_context(cafile=str(pki.ca.cert_file))
    context.minimum_version = context.maximum_version = getattr(ssl.TLSVersion, version)
    host, port = https_service.url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=host) as connection:
        assert connection.version() == version.replace("_", ".")
