"""The .NET client (tests/dotnet/*.cs under Mono) speaks exactly as the recorded .NET client and ASMX service.

Runs without ssobridge: the replay server answers with the ASMX responses of reference/*-transcript.txt.
A request the client sends must equal the recorded .NET request byte for byte (headers except Host, body),
and a result must be what the WSDL's types make of the recorded response.
"""

from __future__ import annotations

import json
import socket
import ssl
import xml.etree.ElementTree as ET

import pytest

from tests.dotnet.replay_server import (
    OPERATIONS,
    REFERENCE,
    SOAP11_ENV,
    SOAP12_ENV,
    TEMPURI,
    Exchange,
    ReplayServer,
    load_transcript,
    soap_fault,
)
from tests.support.dotnet_client import expect_100_continue_answered, outputs

XSI = "http://www.w3.org/2001/XMLSchema-instance"
NIL = f"{{{XSI}}}nil"
ENVELOPES = {"11": SOAP11_ENV, "12": SOAP12_ENV}
TRANSCRIPTS = {soap: load_transcript(soap) for soap in ("11", "12")}


def _schema() -> tuple[dict[str, list[tuple[str, str]]], dict[str, str]]:
    """From the reference WSDL: complex type -> [(element, type)], and top-level element -> its type."""
    xs = "{http://www.w3.org/2001/XMLSchema}"
    root = ET.parse(REFERENCE / "ExternalProvider.asmx.wsdl").getroot()
    schema = root.find(f".//{xs}schema")
    types = {t.get("name"): [(e.get("name"), e.get("type")) for e in t.iter(f"{xs}element")]
             for t in schema.findall(f"{xs}complexType")}
    elements = {e.get("name"): e.find(f".//{xs}element").get("type") for e in schema.findall(f"{xs}element")}
    return types, elements


TYPES, ELEMENTS = _schema()


def from_xml(element: ET.Element | None, xsd_type: str):
    """What .NET's XmlSerializer makes of `element` as `xsd_type`, in the client's JSON shape."""
    if element is None or element.get(NIL) == "true":
        # XmlSerializer creates every List<T> member up front: an omitted list reads as an empty one.
        return [] if xsd_type.startswith("tns:ArrayOf") else None
    if xsd_type == "s:boolean":
        return {"true": True, "false": False}[element.text]
    if xsd_type == "s:string":
        return element.text or ""
    fields = TYPES[xsd_type.removeprefix("tns:")]
    if xsd_type.startswith("tns:ArrayOf"):
        (item_name, item_type), = fields
        return [from_xml(child, item_type) for child in element.findall(f"{{{TEMPURI}}}{item_name}")]
    return {name: from_xml(element.find(f"{{{TEMPURI}}}{name}"), field_type) for name, field_type in fields}


def expected_result(exchange: Exchange) -> dict:
    envelope = ET.fromstring(exchange.response.body)
    response = envelope.find(f"{{{ENVELOPES[exchange.soap]}}}Body/{{{TEMPURI}}}{exchange.op}Response")
    return from_xml(response.find(f"{{{TEMPURI}}}{exchange.op}Result"), ELEMENTS[f"{exchange.op}Response"])


def input_variables(body: bytes, soap: str) -> list[str | None]:
    """The InputVariables items of a recorded request, None for a nil item."""
    envelope = ET.fromstring(body)
    items = envelope.iterfind(f"{{{ENVELOPES[soap]}}}Body/*/{{{TEMPURI}}}inputs/{{{TEMPURI}}}InputVariables/*")
    return [None if item.get(NIL) == "true" else (item.text or "") for item in items]


def headers_without_host(message) -> list[tuple[str, str]]:
    return [(name, value) for name, value in message.headers if name.lower() != "host"]


@pytest.fixture
def server():
    with ReplayServer() as replay:
        yield replay


def _replay(dotnet, server, soap):
    exchanges = TRANSCRIPTS[soap]
    requests = [{"op": e.op, "soap": soap, "vars": input_variables(e.request.body, soap)} for e in exchanges]
    return exchanges, dotnet.batch(server.url, requests)


# --- the recorded conversation, replayed --------------------------------------------------------------


@pytest.mark.parametrize("soap", ["11", "12"])
def test_requests_equal_the_recorded_dotnet_requests_byte_for_byte(dotnet, server, soap):
    exchanges, _ = _replay(dotnet, server, soap)

    assert len(server.requests) == len(exchanges)
    for recorded, sent in zip(exchanges, server.requests):
        assert sent.start_line == recorded.request.start_line
        assert headers_without_host(sent) == headers_without_host(recorded.request), recorded.op
        assert sent.body == recorded.request.body, recorded.op


@pytest.mark.parametrize("soap", ["11", "12"])
def test_results_are_what_the_wsdl_types_make_of_the_recorded_responses(dotnet, server, soap):
    exchanges, results = _replay(dotnet, server, soap)

    assert {e.op for e in exchanges} == set(OPERATIONS)
    for exchange, result in zip(exchanges, results):
        assert result == expected_result(exchange), exchange.op


@pytest.mark.parametrize("soap", ["11", "12"])
def test_one_keep_alive_connection_serves_the_whole_conversation(dotnet, server, soap):
    _replay(dotnet, server, soap)

    assert len({sent.client_port for sent in server.requests}) == 1
    # As recorded: only the request that opens the connection says Connection: keep-alive.
    assert [sent.header("Connection") for sent in server.requests] == ["keep-alive"] + [None] * (
        len(server.requests) - 1)


def test_soap11_action_is_the_quoted_soapaction_header(dotnet, server):
    dotnet.call(server.url, "StartTicket", ["authPW=secret"], soap="11")

    sent = server.requests[0]
    assert sent.header("SOAPAction") == '"http://tempuri.org/StartTicket"'
    assert sent.header("Content-Type") == "text/xml; charset=utf-8"
    assert sent.header("Expect") == "100-continue"


def test_soap12_action_is_in_the_content_type_and_there_is_no_soapaction_header(dotnet, server):
    dotnet.call(server.url, "StartTicket", ["authPW=secret"], soap="12")

    sent = server.requests[0]
    assert sent.header("SOAPAction") is None
    assert sent.header("Content-Type") == 'application/soap+xml; charset=utf-8; action="http://tempuri.org/StartTicket"'
    assert sent.header("Expect") == "100-continue"


@pytest.mark.parametrize("soap", ["11", "12"])
@pytest.mark.parametrize("op", OPERATIONS)
def test_every_element_is_qualified_in_tempuri(dotnet, server, soap, op):
    dotnet.call(server.url, op, ["authPW=secret", "x=1"], soap=soap)

    envelope = ET.fromstring(server.requests[0].body)
    assert envelope.tag == f"{{{ENVELOPES[soap]}}}Envelope"
    (body,) = envelope
    assert body.tag == f"{{{ENVELOPES[soap]}}}Body"
    assert [e.tag for e in body.iter()][1:] == [
        f"{{{TEMPURI}}}{op}", f"{{{TEMPURI}}}inputs", f"{{{TEMPURI}}}InputVariables",
        f"{{{TEMPURI}}}string", f"{{{TEMPURI}}}string",
    ]


# --- what the results carry -------------------------------------------------------------------------


@pytest.mark.parametrize("soap", ["11", "12"])
def test_authenticate_outputs_keep_non_ascii_and_equals_signs(dotnet, server, soap):
    result = dotnet.call(server.url, "Authenticate",
                         ["authPW=secret", r"loginUsername=EXAMPLE\jdoe", "loginPassword=ok=pw&<x>"], soap=soap)

    assert result["Success"] is True
    assert result["Message"] is None  # omitted on the wire
    assert outputs(result) == {
        "Authentication": "OK",
        "EmailAddress": "jdoe@example.com",
        "DisplayName": "Jörg Døe – 日本",
        "cf_Department": "Sales",
        "echo_loginUsername": r"EXAMPLE\jdoe",
        "weird": "a=b=c",
    }
    assert set(result) == {"Success", "Message", "OutputVariables"}


@pytest.mark.parametrize("soap", ["11", "12"])
def test_empty_elements_are_empty_string_and_empty_list_not_null(dotnet, server, soap):
    result = dotnet.call(server.url, "GetSignInCookieInfo", ["authPW=secret", "loginUsername=jdoe"], soap=soap)

    assert result == {"Success": True, "Message": "", "OutputVariables": []}


@pytest.mark.parametrize("soap", ["11", "12"])
def test_custom_field_items_carry_all_eight_fields(dotnet, server, soap):
    result = dotnet.call(server.url, "GetCustomFieldOptions", ["authPW=secret", "location=PRE"], soap=soap)

    assert result["Success"] is True and result["Message"] == "n=4" and result["OutputVariables"] == ["x=1"]
    assert result["CustomFieldDataItems"] == [
        {
            "CustomFieldName": "Department",
            "DisplayWithInformationLookup": True,
            "ChangeListOptions": True,
            "ListOptions": ["Sales", "Support & Service", "Réseau <LAN>"],
            "ChangeRequired": True,
            "NewRequiredValue": False,
            "ChangeVisible": False,
            "NewVisibleValue": True,
        },
        {
            "CustomFieldName": "Empty",
            "DisplayWithInformationLookup": False,
            "ChangeListOptions": False,
            "ListOptions": [],
            "ChangeRequired": False,
            "NewRequiredValue": False,
            "ChangeVisible": False,
            "NewVisibleValue": False,
        },
    ]


@pytest.mark.parametrize("soap", ["11", "12"])
def test_user_info_html_arrives_unescaped_once(dotnet, server, soap):
    result = dotnet.call(server.url, "GetUserDetails", ["authPW=secret", "interactionType=ticket"], soap=soap)

    assert result["UserInfoHtml"] == '<div class="u"><b>Jörg</b> &amp; co &lt;x&gt; € 😀 & <br/>a=b</div>'
    assert list(result) == ["Success", "Message", "UserInfoHtml", "OutputVariables"]


@pytest.mark.parametrize("soap", ["11", "12"])
def test_ticket_chat_and_event_results(dotnet, server, soap):
    ticket, chat, event = dotnet.batch(server.url, [
        {"op": "StartTicket", "soap": soap, "vars": ["authPW=secret"]},
        {"op": "StartChat", "soap": soap, "vars": ["authPW=secret"]},
        {"op": "NotifyEventFired", "soap": soap, "vars": ["authPW=secret", "eventType=502000"]},
    ])

    assert ticket == {"Success": True, "Message": "Ticket Creation Successful",
                      "OutputVariables": ["TicketCreation=TRUE", "departmentName=Critical Support",
                                          "cf_Billing ID=4126"]}
    assert chat == {"Success": True, "Message": "Chat Creation Successful", "OutputVariables": ["ChatCreation=TRUE"]}
    assert event == {"Success": True, "Message": "Event Notification Successful"}


# --- shapes of the inputs ---------------------------------------------------------------------------


def test_null_item_is_sent_as_nil_string(dotnet, server):
    recorded = TRANSCRIPTS["11"][7]
    assert b'<string xsi:nil="true" />' in recorded.request.body

    result = dotnet.call(server.url, "Authenticate", ["authPW=secret", None, "loginUsername=x"])

    assert server.requests[0].body == recorded.request.body
    assert result == {"Success": True, "Message": "wrong password", "OutputVariables": ["Authentication=FAILED"]}


def test_null_list_omits_input_variables_and_null_inputs_omits_inputs(dotnet, server):
    dotnet.batch(server.url, [
        {"op": "StartChat", "vars": None},
        {"op": "StartChat", "vars": [], "nullInputs": True},
        {"op": "StartChat", "vars": []},
    ])

    bodies = [sent.body.decode() for sent in server.requests]
    assert '<StartChat xmlns="http://tempuri.org/"><inputs /></StartChat>' in bodies[0]
    assert '<StartChat xmlns="http://tempuri.org/" />' in bodies[1]
    assert '<inputs><InputVariables /></inputs>' in bodies[2]


def test_control_characters_are_sent_as_character_references_xml_1_0_forbids(dotnet, server):
    # What SmarterTrack would send for a control character a user typed: not well-formed XML 1.0.
    dotnet.call(server.url, "StartTicket", ["subject=a\x00b\x0bc\x1fd\te"])

    assert b"<string>subject=a&#x0;b&#xB;c&#x1F;d\te</string>" in server.requests[0].body


def test_special_characters_are_escaped_once(dotnet, server):
    dotnet.call(server.url, "StartTicket", ['subject=a < b & "c" > \'d\' ]]> \\ é 😀', "multi=line1\nline2"])

    body = server.requests[0].body.decode("utf-8")
    assert "<string>subject=a &lt; b &amp; \"c\" &gt; 'd' ]]&gt; \\ é 😀</string>" in body
    assert "<string>multi=line1\nline2</string>" in body


# --- faults and errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("soap, code", [("11", "Server"), ("12", "Receiver")])
def test_soap_fault_is_reported_with_code_and_http_status(dotnet, server, soap, code):
    server.override(soap, "Authenticate", 500, soap_fault(soap, code, "Server was unable to process request. ---> x & y"))

    result = dotnet.call(server.url, "Authenticate", ["authPW=secret"], soap=soap)

    assert result["Fault"] == "Server was unable to process request. ---> x & y"
    assert result["FaultCode"] == f"{{{ENVELOPES[soap]}}}{code}"
    assert result["HttpStatus"] == 500
    assert result["ExceptionType"] == "System.Web.Services.Protocols.SoapException"


def test_spyne_soap12_fault_subcode_is_reported(dotnet, server):
    spyne_fault = (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        '<soap12env:Envelope xmlns:soap12env="http://www.w3.org/2003/05/soap-envelope"><soap12env:Body>'
        "<soap12env:Fault><soap12env:Code><soap12env:Value>soap12env:Sender</soap12env:Value>"
        "<soap12env:Subcode><soap12env:Value>SchemaValidationError</soap12env:Value></soap12env:Subcode>"
        '</soap12env:Code><soap12env:Reason><soap12env:Text xml:lang="en">bad</soap12env:Text>'
        "</soap12env:Reason></soap12env:Fault></soap12env:Body></soap12env:Envelope>"
    )
    server.override("12", "StartChat", 500, spyne_fault)

    result = dotnet.call(server.url, "StartChat", ["authPW=secret"], soap="12")

    assert result["Fault"] == "bad"
    assert result["FaultCode"] == f"{{{SOAP12_ENV}}}Sender"
    assert result["FaultSubCode"].endswith("}SchemaValidationError")


def test_http_error_without_soap_body_is_a_fault_with_the_status(dotnet, server):
    server.override("11", "StartChat", 404, "<html>nope</html>", "text/html")

    result = dotnet.call(server.url, "StartChat", ["authPW=secret"])

    assert result["HttpStatus"] == 404
    assert result["ResponseBody"] == "<html>nope</html>"


def test_nil_boolean_in_a_result_is_an_xml_error(dotnet, server):
    body = (
        '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:xsi="{XSI}"><soap:Body><StartChatResponse xmlns="http://tempuri.org/"><StartChatResult>'
        '<Success xsi:nil="true" /></StartChatResult></StartChatResponse></soap:Body></soap:Envelope>'
    )
    server.override("11", "StartChat", 200, body)

    result = dotnet.call(server.url, "StartChat", ["authPW=secret"])

    assert result["Fault"].startswith("There is an error in XML document")
    assert result["HttpStatus"] == 200


@pytest.mark.parametrize("result_xml, expected", [
    ('<StartChatResult xmlns="ssobridge.wire"><Success>true</Success><Message>m</Message></StartChatResult>',
     {"Result": None, "HttpStatus": 200}),
    (('<StartChatResult><Success xmlns="ssobridge.wire">true</Success><Message xmlns="ssobridge.wire">m</Message>'
      "</StartChatResult>"),
     {"Success": False, "Message": None, "OutputVariables": []}),
], ids=["result-element", "field-elements"])
def test_elements_in_a_foreign_namespace_are_silently_ignored(dotnet, server, result_xml, expected):
    body = (
        '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        f'<soap:Body><StartChatResponse xmlns="http://tempuri.org/">{result_xml}</StartChatResponse>'
        "</soap:Body></soap:Envelope>"
    )
    server.override("11", "StartChat", 200, body)

    assert dotnet.call(server.url, "StartChat", ["authPW=secret"]) == expected


def _custom_field_response(result_xml: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:xsi="{XSI}"><soap:Body><GetCustomFieldOptionsResponse xmlns="http://tempuri.org/">'
        f"<GetCustomFieldOptionsResult>{result_xml}</GetCustomFieldOptionsResult>"
        "</GetCustomFieldOptionsResponse></soap:Body></soap:Envelope>"
    )


def test_omitted_lists_read_as_empty_and_omitted_booleans_as_false(dotnet, server):
    server.override("11", "GetCustomFieldOptions", 200, _custom_field_response(
        "<Success>true</Success><CustomFieldDataItems><ExternalCustomFieldData><CustomFieldName>x</CustomFieldName>"
        '</ExternalCustomFieldData><ExternalCustomFieldData xsi:nil="true" /></CustomFieldDataItems>'))

    result = dotnet.call(server.url, "GetCustomFieldOptions", ["authPW=secret"])

    assert result == {
        "Success": True,
        "Message": None,
        "OutputVariables": [],
        "CustomFieldDataItems": [
            {"CustomFieldName": "x", "DisplayWithInformationLookup": False, "ChangeListOptions": False,
             "ListOptions": [], "ChangeRequired": False, "NewRequiredValue": False, "ChangeVisible": False,
             "NewVisibleValue": False},
            None,
        ],
    }


def test_control_character_in_a_response_is_an_xml_error(dotnet, server):
    server.override("11", "GetCustomFieldOptions", 200, _custom_field_response(
        "<Success>true</Success><Message>a&#xB;b</Message>"))

    result = dotnet.call(server.url, "GetCustomFieldOptions", ["authPW=secret"])

    assert result["Fault"].startswith("There is an error in XML document")
    assert "0x0B" in result["Inner"][0]


def test_unreachable_server_is_a_fault_without_http_status(dotnet):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]

    result = dotnet.call(f"http://127.0.0.1:{port}/ExternalProvider.asmx", "StartChat", ["authPW=secret"])

    assert result["HttpStatus"] is None
    assert result["WebExceptionStatus"] == "ConnectFailure"


# --- the command line -------------------------------------------------------------------------------


def test_command_line_call_prints_one_json_object(dotnet, server):
    done = dotnet.run("--url", server.url, "--soap", "11", "--op", "Authenticate",
                      "--var", "authPW=secret", "--nil-item", "--var", "loginUsername=x")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"Success": True, "Message": "wrong password",
                                       "OutputVariables": ["Authentication=FAILED"]}
    assert server.requests[0].body == TRANSCRIPTS["11"][7].request.body


def test_command_line_reads_variables_from_stdin_as_utf8(dotnet, server):
    done = dotnet.run("--url", server.url, "--op", "Authenticate", "--soap", "12", "--vars-stdin",
                      input="authPW=secret\r\nloginUsername=EXAMPLE\\jdoe\nloginPassword=ok=pw&<x>\n")

    assert done.returncode == 0, done.stderr
    assert server.requests[0].body == TRANSCRIPTS["12"][0].request.body
    assert outputs(json.loads(done.stdout))["DisplayName"] == "Jörg Døe – 日本"


def test_command_line_fault_exits_3_and_usage_error_exits_2(dotnet, server):
    server.override("11", "StartChat", 500, soap_fault("11", "Client", "Permission Denied"))

    fault = dotnet.run("--url", server.url, "--op", "StartChat", "--var", "authPW=wrong")
    usage = dotnet.run("--url", server.url, "--op", "NoSuchOperation")

    assert fault.returncode == 3
    assert json.loads(fault.stdout)["Fault"] == "Permission Denied"
    assert usage.returncode == 2
    assert "unknown op NoSuchOperation" in usage.stderr


def test_repeat_calls_reuse_one_connection_and_print_the_last_result(dotnet, server):
    done = dotnet.run("--url", server.url, "--op", "StartChat", "--var", "authPW=secret", "--repeat", "5", "--timing")

    result = json.loads(done.stdout)
    assert len(result.pop("ElapsedMs")) == 5
    assert result["OutputVariables"] == ["ChatCreation=TRUE"]
    assert len(server.requests) == 5
    assert len({sent.client_port for sent in server.requests}) == 1


# --- Expect: 100-continue ---------------------------------------------------------------------------


def test_probe_tells_whether_a_server_answers_100_continue():
    with ReplayServer(answer_100_continue=True) as answering:
        assert expect_100_continue_answered(answering.url) is True
    with ReplayServer(answer_100_continue=False) as silent:
        assert expect_100_continue_answered(silent.url, timeout=0.3) is False


def test_mono_sends_the_body_without_waiting_for_100_continue(dotnet):
    # .NET Framework would wait 350 ms here; Mono does not wait at all, so a server that ignores
    # Expect: 100-continue goes unnoticed by this client (use expect_100_continue_answered).
    with ReplayServer(answer_100_continue=False) as silent:
        results = dotnet.batch(silent.url, [{"op": "StartChat", "vars": ["authPW=secret"]}] * 3, timing=True)

        assert all(r["OutputVariables"] == ["ChatCreation=TRUE"] for r in results)
        assert [sent.header("Expect") for sent in silent.requests] == ["100-continue"] * 3
        assert not any(sent.continue_sent for sent in silent.requests)
        assert max(r["ElapsedMs"][0] for r in results[1:]) < 300


# --- HTTPS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client_pki(tmp_path_factory):
    certs = pytest.importorskip("tests.dotnet.certs")
    directory = tmp_path_factory.mktemp("client-pki")
    return {
        "good": certs.make_pki(directory, label="good"),
        "good-rsa": certs.make_pki(directory, label="good-rsa", key_type="rsa"),
        "other": certs.make_pki(directory, label="other"),
        "wrong-name": certs.make_pki(directory, hosts=("other.example",), label="wrong-name"),
    }


def _tls_server(pki_entry) -> ReplayServer:  # pki_entry: a tests.dotnet.certs.TestPki
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki_entry.cert_pem, pki_entry.key_pem)
    return ReplayServer(tls=context)


@pytest.mark.parametrize("pki_name", ["good", "good-rsa"])
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_https_with_the_servers_ca_succeeds(dotnet, client_pki, host, pki_name):
    with _tls_server(client_pki[pki_name]) as https:
        url = https.url.replace("127.0.0.1", host)
        result = dotnet.call(url, "StartChat", ["authPW=secret"], ca_file=client_pki[pki_name].ca_pem)

    assert result.get("Success") is True, result


@pytest.mark.parametrize("case, ca", [("good", "other"), ("wrong-name", "wrong-name"), ("good", None)])
def test_https_refuses_another_ca_or_another_name(dotnet, client_pki, case, ca):
    with _tls_server(client_pki[case]) as https:
        result = dotnet.call(https.url, "StartChat", ["authPW=secret"],
                             ca_file=client_pki[ca].ca_pem if ca else None)

    assert result["WebExceptionStatus"] == "TrustFailure"
    assert https.requests == []


def test_https_trust_all_accepts_any_certificate(dotnet, client_pki):
    with _tls_server(client_pki["wrong-name"]) as https:
        result = dotnet.call(https.url, "StartChat", ["authPW=secret"], trust_all=True)

    assert result["OutputVariables"] == ["ChatCreation=TRUE"]
