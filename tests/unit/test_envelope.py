"""Plain calls answered without spyne (wire/envelope.py): the same status, headers and bytes as spyne
writes, for a table of results and requests, SOAP 1.1 and 1.2."""

import io

import pytest

from ssobridge.providers.base import CustomFieldChange, ProviderResult
from ssobridge.wire import envelope
from ssobridge.wire.http import Endpoint
from ssobridge.wire.soap import OPERATION_TYPES

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"

RESULTS = [
    ProviderResult(True, "hi <&> \"' ]]> \r\n\t end", (("DisplayName", "Jö\x01rg\U0001F600\ud800"), ("x", "a&b"))),
    ProviderResult(False, None),
    ProviderResult(True, ""),
    ProviderResult(True, "\x00\x0b", (("e", ""),), html=""),
    ProviderResult(True, "m", (("a", "1"),), html="<b>x</b>\r",
                   fields=(CustomFieldChange("F<", True, ("a", "", "c&\r"), True, False),
                           CustomFieldChange("G"), CustomFieldChange("H", list_options=(), required=False))),
]


class _Bridge:
    """Answers with a fixed result, or the pairs it was given as the Message; raises when told to."""

    def __init__(self, result):
        self.result = result

    def call(self, operation, pairs):
        if isinstance(self.result, Exception):
            raise self.result
        return self.result if self.result is not None else ProviderResult(True, repr(pairs))


def _request(operation: str, soap12: bool, inner: str, header: str = "") -> bytes:
    return (f'<s:Envelope xmlns:s="{SOAP12 if soap12 else SOAP11}" '
            f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">{header}<s:Body>'
            f'<{operation} xmlns="http://tempuri.org/">{inner}</{operation}></s:Body></s:Envelope>').encode()


def _post(endpoint, body: bytes, soap12: bool, spyne_only: bool):
    environ = {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
               "CONTENT_TYPE": "application/soap+xml; charset=utf-8" if soap12 else "text/xml; charset=utf-8",
               "wsgi.url_scheme": "http", "SERVER_NAME": "sso.example.test", "SERVER_PORT": "80", "PATH_INFO": "/",
               "SCRIPT_NAME": "", "QUERY_STRING": ""}
    answers = []
    application = (endpoint._soap12 if soap12 else endpoint._soap11) if spyne_only else endpoint
    try:
        data = b"".join(application(environ, lambda status, headers, exc_info=None: answers.append((status, headers))))
    except Exception as e:  # spyne's SOAP 1.2 schema faults raise (lxml refuses bytes); either way the same
        return "raised", type(e)
    return answers, data


def _both(result, operation: str, soap12: bool, inner: str, header: str = ""):
    endpoint = Endpoint(_Bridge(result), "http://sso.example.test/", 100_000, 100)
    body = _request(operation, soap12, inner, header)
    return _post(endpoint, body, soap12, spyne_only=False), _post(endpoint, body, soap12, spyne_only=True)


PLAIN = "<inputs><InputVariables><string>authPW=x</string><string>a=1</string></InputVariables></inputs>"


@pytest.mark.parametrize("soap12", [False, True])
@pytest.mark.parametrize("operation", list(OPERATION_TYPES))
@pytest.mark.parametrize("result", RESULTS, ids=range(len(RESULTS)))
def test_each_result_is_written_byte_for_byte_as_spyne_writes_it(result, operation, soap12):
    ours, spynes = _both(result, operation, soap12, PLAIN)
    assert ours == spynes
    assert ours[0][0][0] == "200 OK"


@pytest.mark.parametrize("soap12", [False, True])
def test_a_bug_in_the_provider_gets_spynes_internal_error_fault(soap12, caplog):
    ours, spynes = _both(RuntimeError("bug"), "Authenticate", soap12, PLAIN)
    assert ours == spynes
    assert ours[0][0][0] == "500 Internal Server Error"
    assert envelope.INTERNAL_ERROR.encode() in ours[1]
    assert [r.getMessage() for r in caplog.records].count("event=internal_error operation=Authenticate") == 2


REQUESTS = {  # request -> the pairs spyne reads from it (the Message of the echo)
    "plain": (PLAIN, ""),
    "white space between elements": ("\n <inputs>\n  <InputVariables>\n   <string> a = b \r\n</string>\n"
                                     "  </InputVariables>\n </inputs>\n", ""),
    "entities, CDATA, comments": ("<inputs><InputVariables><string>a<!-- c -->b=&#x41;<![CDATA[<z>]]></string>"
                                  "<string/><string></string><string>no equals</string></InputVariables></inputs>", ""),
    "nil item": '<inputs><InputVariables><string xsi:nil="true"/><string>a=1</string></InputVariables></inputs>',
    "no InputVariables": "<inputs/>",
    "no inputs": "",
    "an unknown element": "<inputs><InputVariables><strung>a=1</strung></InputVariables></inputs>",
    "text where none belongs": "<inputs>x<InputVariables><string>a=1</string></InputVariables></inputs>",
    "an attribute": '<inputs a="1"><InputVariables><string>a=1</string></InputVariables></inputs>',
    "a nested element": "<inputs><InputVariables><string>a=<b>1</b></string></InputVariables></inputs>",
}


@pytest.mark.parametrize("soap12", [False, True])
@pytest.mark.parametrize("name", list(REQUESTS))
def test_requests_read_as_spyne_reads_them(name, soap12):
    inner = REQUESTS[name][0] if isinstance(REQUESTS[name], tuple) else REQUESTS[name]
    ours, spynes = _both(None, "Authenticate", soap12, inner)
    assert ours == spynes


def test_only_the_plain_shape_is_read_without_spyne():
    from lxml import etree

    def items(inner, header=""):
        root = etree.fromstring(_request("Authenticate", False, inner, header))
        return envelope.plain_items(root, root[-1][0], 100)

    assert items(REQUESTS["entities, CDATA, comments"][0].replace("<!-- c -->", "")) == [
        "ab=A<z>", None, None, "no equals"]
    assert items(PLAIN, header="<s:Header/>") is None
    for name in ("nil item", "no InputVariables", "no inputs", "an unknown element", "text where none belongs",
                 "an attribute", "a nested element"):
        assert items(REQUESTS[name]) is None, name


def test_a_header_goes_to_spyne_and_reads_the_same():
    ours, spynes = _both(None, "Authenticate", False, PLAIN, header="<s:Header><x xmlns='urn:x'>1</x></s:Header>")
    assert ours == spynes
