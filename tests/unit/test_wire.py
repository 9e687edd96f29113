"""Turning name=value lists into pairs and results back into ASMX-shaped objects: pure logic."""

import io

import pytest

from ssobridge.providers.base import ProviderResult, Variables
from ssobridge.wire.http import Endpoint
from ssobridge.wire.soap import (ExternalLoginProviderInputs, ExternalLoginProviderResult, TooManyVariables,
                                 _to_wire, variable_pairs, xml_safe)


def test_values_split_on_the_first_equals_and_junk_items_are_ignored():
    inputs = ExternalLoginProviderInputs(InputVariables=["a=b=c", None, "no-equals", "cf_Billing ID=4126", "e="])
    assert variable_pairs(inputs, 10) == [("a", "b=c"), ("cf_Billing ID", "4126"), ("e", "")]


def test_missing_inputs_give_no_pairs():
    assert variable_pairs(None, 10) == []
    assert variable_pairs(ExternalLoginProviderInputs(), 10) == []


def test_more_variables_than_the_limit_is_refused():
    with pytest.raises(TooManyVariables):
        variable_pairs(ExternalLoginProviderInputs(InputVariables=["a=1"] * 11), 10)


def test_characters_xml_forbids_are_stripped_from_outputs():
    result = _to_wire(ProviderResult(True, "a\x00b\x0bc", (("DisplayName", "Jö\x01rg\U0001F600"),)),
                      ExternalLoginProviderResult)
    assert result.Message == "abc"
    assert result.OutputVariables == ["DisplayName=Jörg\U0001F600"]
    assert xml_safe("tab\tnew\nline\r") == "tab\tnew\nline\r"


def test_names_are_case_insensitive_and_repeats_are_noted():
    variables = Variables.from_pairs([("LoginUsername", "a"), ("loginusername", "b"), ("cf_Issue Type", "x")])
    assert variables.get("loginUsername") == "b"
    assert variables.repeated == ("loginusername",)
    assert variables.custom_fields() == {"Issue Type": "x"}


class _EchoBridge:
    """Answers every call with the pairs it was given, as the Message."""

    def call(self, operation: str, pairs: list[tuple[str, str]]) -> ProviderResult:
        return ProviderResult(True, repr(pairs), ())


def _post(body: bytes) -> tuple[list[str], bytes]:
    endpoint = Endpoint(_EchoBridge(), "http://sso.example.test/", 100_000, 100)
    environ = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": "text/xml; charset=utf-8", "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "SERVER_NAME": "sso.example.test",
               "SERVER_PORT": "80", "PATH_INFO": "/", "SCRIPT_NAME": "", "QUERY_STRING": ""}
    statuses: list[str] = []
    data = b"".join(endpoint(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    return statuses, data


def test_the_envelope_parsed_once_reads_comments_and_cdata_as_spyne_did():
    # The guards' tree goes to spyne; spyne's own parser dropped comments, so a value split by one is whole.
    statuses, data = _post(
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        b'<Authenticate xmlns="http://tempuri.org/"><inputs><InputVariables><string>a<!-- c -->b=1</string>'
        b'<string>c=&#x41;<![CDATA[z]]></string></InputVariables></inputs></Authenticate></soap:Body></soap:Envelope>')
    assert statuses == ["200 OK"]
    assert b"<tns:Message>[('ab', '1'), ('c', 'Az')]</tns:Message>" in data


def test_a_comment_before_the_operation_is_still_refused():
    statuses, data = _post(
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><!-- x -->'
        b'<Authenticate xmlns="http://tempuri.org/"/></soap:Body></soap:Envelope>')
    assert statuses == ["400 Bad Request"]
    assert b"<faultstring>The SOAP Body names no operation.</faultstring>" in data
