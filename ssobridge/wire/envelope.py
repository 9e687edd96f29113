"""Plain calls read and answered without spyne: the same bytes, a fifth of the CPU.

SmarterTrack's calls all have one shape: Envelope, Body, the operation, <inputs>, <InputVariables>,
<string> items with text only. For exactly that shape (plain_items) the call is answered here
(answer), and the answer is byte for byte what spyne writes for the same result (tests/unit/test_envelope.py
compares them for a table of results, SOAP 1.1 and 1.2). Anything else (a Header, attributes, another
element, text where the schema has none) goes to spyne, which validates and reads it as before.
"""

from __future__ import annotations

import logging
from typing import Callable

from ..providers.base import CustomFieldChange, ProviderResult
from .soap import ENVELOPES, INTERNAL_ERROR, NS, OPERATION_TYPES, pairs_of, xml_safe

log = logging.getLogger("ssobridge.soap")  # as wire/soap.py: one logger for the operations

_INPUTS, _VARIABLES, _STRING = f"{{{NS}}}inputs", f"{{{NS}}}InputVariables", f"{{{NS}}}string"
# Each operation's result fields after Success and Message, in spyne's (the WSDL's) order.
_EXTRA_FIELDS = {operation: tuple(result._type_info)[2:] for operation, (_, result) in OPERATION_TYPES.items()}
_PREFIX = {False: "soap11env", True: "soap12env"}
_CONTENT_TYPE = {False: "text/xml; charset=utf-8", True: "application/soap+xml; charset=utf-8"}
_XML_DECLARATION = "<?xml version='1.0' encoding='UTF-8'?>\n"


def plain_items(root, call, limit: int) -> list[str | None] | None:
    """The <string> items of a call of SmarterTrack's plain shape (text None for an empty item), or None
    when anything in it is different: spyne then reads it. `call` is Body's only element."""
    if root.attrib or len(root) != 1 or _text(root.text) or _text(root[0].tail):
        return None  # a Header, or anything beside the Body
    body = root[0]
    if body.attrib or len(body) != 1 or _text(body.text) or _text(call.tail):
        return None
    inputs = _only_child(call, _INPUTS)
    variables = _only_child(inputs, _VARIABLES) if inputs is not None else None
    if variables is None or len(variables) > limit:
        return None
    items = []
    for item in variables:
        if item.tag != _STRING or item.attrib or len(item) or _text(item.tail):
            return None
        items.append(item.text)
    return items


def _only_child(element, tag: str):
    if element.attrib or len(element) != 1 or _text(element.text):
        return None
    child = element[0]
    return child if child.tag == tag and not _text(child.tail) else None


def _text(text: str | None) -> bool:
    """Text other than XML's white space, which the schema allows between elements."""
    return bool(text) and bool(text.strip(" \t\r\n"))


def answer(call: Callable[[str, list[tuple[str, str]]], ProviderResult], operation: str,
           items: list[str | None], soap12: bool) -> tuple[str, list[tuple[str, str]], bytes]:
    """(status, headers, body) for the call: the result, or the internal-error fault spyne would write."""
    try:
        outcome = call(operation, pairs_of(items))
    except Exception:
        # A bug: logged with its traceback here, and a plain fault to the caller (never the traceback).
        log.exception("event=internal_error operation=%s", operation)
        return _response("500 Internal Server Error", _internal_error(soap12), soap12)
    return _response("200 OK", result_envelope(operation, outcome, soap12), soap12)


def _response(status: str, data: bytes, soap12: bool) -> tuple[str, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", _CONTENT_TYPE[soap12]), ("Content-Length", str(len(data)))], data


def result_envelope(operation: str, outcome: ProviderResult, soap12: bool) -> bytes:
    env = _PREFIX[soap12]
    out = [f'{_XML_DECLARATION}<{env}:Envelope xmlns:{env}="{ENVELOPES[soap12]}" xmlns:tns="{NS}"><{env}:Body>'
           f'<tns:{operation}Response><tns:{operation}Result><tns:Success>{_bool(outcome.success)}</tns:Success>']
    _element(out, "Message", outcome.message)
    for field in _EXTRA_FIELDS[operation]:
        if field == "OutputVariables":
            _strings(out, field, [f"{name}={value}" for name, value in outcome.outputs])
        elif field == "UserInfoHtml":
            _element(out, field, outcome.html)
        else:  # CustomFieldDataItems
            if not outcome.fields:
                out.append(f"<tns:{field}/>")
                continue
            out.append(f"<tns:{field}>")
            for change in outcome.fields:
                _custom_field_data(out, change)
            out.append(f"</tns:{field}>")
    out.append(f"</tns:{operation}Result></tns:{operation}Response></{env}:Body></{env}:Envelope>")
    return "".join(out).encode("utf-8")


def _custom_field_data(out: list[str], change: CustomFieldChange) -> None:
    out.append("<tns:ExternalCustomFieldData>")
    _element(out, "CustomFieldName", change.name)
    out.append(f"<tns:DisplayWithInformationLookup>{_bool(change.first_step)}</tns:DisplayWithInformationLookup>"
               f"<tns:ChangeListOptions>{_bool(change.list_options is not None)}</tns:ChangeListOptions>")
    _strings(out, "ListOptions", change.list_options or ())
    out.append(f"<tns:ChangeRequired>{_bool(change.required is not None)}</tns:ChangeRequired>"
               f"<tns:NewRequiredValue>{_bool(bool(change.required))}</tns:NewRequiredValue>"
               f"<tns:ChangeVisible>{_bool(change.visible is not None)}</tns:ChangeVisible>"
               f"<tns:NewVisibleValue>{_bool(bool(change.visible))}</tns:NewVisibleValue>"
               "</tns:ExternalCustomFieldData>")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _element(out: list[str], name: str, text: str | None) -> None:
    if text is not None:  # spyne leaves out a None, and writes "" as an open and a close tag
        out.append(f"<tns:{name}>{_escape(text)}</tns:{name}>")


def _strings(out: list[str], name: str, texts) -> None:
    if not texts:
        out.append(f"<tns:{name}/>")
        return
    out.append(f"<tns:{name}>")
    out.extend(f"<tns:string>{_escape(text)}</tns:string>" for text in texts)
    out.append(f"</tns:{name}>")


def _escape(text: str) -> str:
    """xml_safe, then escaped as libxml2 writes text content (\\r as a character reference)."""
    text = xml_safe(text)
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    return text


def _internal_error(soap12: bool) -> bytes:
    env = _PREFIX[soap12]
    if soap12:
        fault = (f"<{env}:Fault><{env}:Code><{env}:Value>{env}:Receiver</{env}:Value></{env}:Code><{env}:Reason>"
                 f'<{env}:Text xml:lang="en">{INTERNAL_ERROR}</{env}:Text></{env}:Reason><{env}:Role></{env}:Role>'
                 f"</{env}:Fault>")
    else:
        fault = (f"<{env}:Fault><faultcode>{env}:Server</faultcode><faultstring>{INTERNAL_ERROR}</faultstring>"
                 f"<faultactor></faultactor></{env}:Fault>")
    return (f'{_XML_DECLARATION}<{env}:Envelope xmlns:{env}="{ENVELOPES[soap12]}"><{env}:Body>{fault}'
            f"</{env}:Body></{env}:Envelope>").encode("utf-8")
