"""The SOAP types and operations, shaped exactly as ASMX puts SmarterTrack.Connector types on the wire.

Known spyne pitfalls handled here (docs/design.md, "The wire facts behind the code"): every model carries
the tempuri namespace, array items are named <string>, every bool is always set, and outgoing strings lose
the characters XML 1.0 forbids. The service functions turn name=value lists into pairs, call Bridge.call, and turn
the ProviderResult back; they never raise to spyne except with a deliberate, plain Fault.
"""

from __future__ import annotations

import logging
import re
from typing import Callable

from spyne import Application, Array, Boolean, ComplexModel, Fault, ServiceBase, Unicode, rpc
from spyne import const as spyne_const
from spyne.protocol.soap import Soap11, Soap12

from ..operations import OPERATIONS
from ..providers import Bridge
from ..providers.base import CustomFieldChange, ProviderResult

NS = "http://tempuri.org/"
# The envelope namespace of SOAP 1.1 (soap12 False) and 1.2 (True).
ENVELOPES = {False: "http://schemas.xmlsoap.org/soap/envelope/", True: "http://www.w3.org/2003/05/soap-envelope"}
# What a caller is told of a bug (the log has the type and where; the caller, nothing of the request).
INTERNAL_ERROR = "Internal error in ssobridge; the log has the details."
PARSED_ENVELOPE = "ssobridge.envelope"  # WSGI environ key: the guards' parse of the body (see _ParsedOnce)

log = logging.getLogger("ssobridge.soap")

ArrayOfString = Array(Unicode, member_name="string").customize(type_name="ArrayOfString", __namespace__=NS)


def _inputs(type_name: str) -> type[ComplexModel]:
    return type(type_name, (ComplexModel,), {"__namespace__": NS, "_type_info": [("InputVariables", ArrayOfString)]})


def _result(type_name: str, *extra: tuple[str, type]) -> type[ComplexModel]:
    fields = [("Success", Boolean(min_occurs=1, nillable=False, default=False)), ("Message", Unicode), *extra]
    return type(type_name, (ComplexModel,), {"__namespace__": NS, "_type_info": fields})


class ExternalCustomFieldData(ComplexModel):
    __namespace__ = NS
    _type_info = [
        ("CustomFieldName", Unicode),
        ("DisplayWithInformationLookup", Boolean(min_occurs=1, nillable=False, default=False)),
        ("ChangeListOptions", Boolean(min_occurs=1, nillable=False, default=False)),
        ("ListOptions", ArrayOfString),
        ("ChangeRequired", Boolean(min_occurs=1, nillable=False, default=False)),
        ("NewRequiredValue", Boolean(min_occurs=1, nillable=False, default=False)),
        ("ChangeVisible", Boolean(min_occurs=1, nillable=False, default=False)),
        ("NewVisibleValue", Boolean(min_occurs=1, nillable=False, default=False)),
    ]


ArrayOfExternalCustomFieldData = Array(ExternalCustomFieldData).customize(
    type_name="ArrayOfExternalCustomFieldData", __namespace__=NS)

ExternalLoginProviderInputs = _inputs("ExternalLoginProviderInputs")
ExternalCustomFieldProviderInputs = _inputs("ExternalCustomFieldProviderInputs")
ExternalTicketProviderInputs = _inputs("ExternalTicketProviderInputs")
ExternalChatProviderInputs = _inputs("ExternalChatProviderInputs")
ExternalUserInfoProviderInputs = _inputs("ExternalUserInfoProviderInputs")
ExternalEventProviderInputs = _inputs("ExternalEventProviderInputs")

ExternalLoginProviderResult = _result("ExternalLoginProviderResult", ("OutputVariables", ArrayOfString))
ExternalCustomFieldProviderResult = _result(
    "ExternalCustomFieldProviderResult", ("OutputVariables", ArrayOfString),
    ("CustomFieldDataItems", ArrayOfExternalCustomFieldData))
ExternalTicketProviderResult = _result("ExternalTicketProviderResult", ("OutputVariables", ArrayOfString))
ExternalChatProviderResult = _result("ExternalChatProviderResult", ("OutputVariables", ArrayOfString))
ExternalUserInfoProviderResult = _result(
    "ExternalUserInfoProviderResult", ("UserInfoHtml", Unicode), ("OutputVariables", ArrayOfString))
ExternalEventProviderResult = _result("ExternalEventProviderResult")

# Each operation's request and result types, as the SmarterTrack.Connector interfaces declare them;
# the operations themselves are those of ssobridge/operations.py (checked just below).
OPERATION_TYPES = {
    "Authenticate": (ExternalLoginProviderInputs, ExternalLoginProviderResult),
    "GetSignInCookieInfo": (ExternalLoginProviderInputs, ExternalLoginProviderResult),
    "GetCustomFieldOptions": (ExternalCustomFieldProviderInputs, ExternalCustomFieldProviderResult),
    "StartTicket": (ExternalTicketProviderInputs, ExternalTicketProviderResult),
    "StartChat": (ExternalChatProviderInputs, ExternalChatProviderResult),
    "GetUserDetails": (ExternalUserInfoProviderInputs, ExternalUserInfoProviderResult),
    "NotifyEventFired": (ExternalEventProviderInputs, ExternalEventProviderResult),
}
if set(OPERATION_TYPES) != set(OPERATIONS):
    raise ImportError(f"wire/soap.py and operations.py disagree on the operations: "
                      f"{sorted(set(OPERATION_TYPES) ^ set(OPERATIONS))}")

# Characters XML 1.0 does not allow; spyne would write them and .NET would reject the whole answer.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str | None) -> str | None:
    return _NOT_XML.sub("", text) if text is not None else None


class TooManyVariables(Fault):
    def __init__(self, limit: int):
        super().__init__("Client.TooManyVariables", f"More than {limit} InputVariables.")


def variable_pairs(inputs: ComplexModel | None, limit: int) -> list[tuple[str, str]]:
    """name=value strings -> pairs, split on the first '='; nil items and items without '=' are ignored."""
    items = getattr(inputs, "InputVariables", None) or []
    if len(items) > limit:
        raise TooManyVariables(limit)
    return pairs_of(items)


def pairs_of(items: list[str | None]) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        if item is None or "=" not in item:
            continue
        name, _, value = item.partition("=")
        pairs.append((name.strip(), value))
    return pairs


def silence_spyne() -> None:
    """spyne logs the whole body of a malformed request (passwords included) and a traceback for
    every deliberate fault; ssobridge logs its own one-line events instead."""
    spyne = logging.getLogger("spyne")
    spyne.setLevel(logging.CRITICAL + 1)
    spyne.propagate = False


class _ParsedOnce:
    """The guards (wire/http.py) parsed the envelope already, with the parser spyne would use for
    anything that matters here: spyne takes their (root, xml ids) instead of parsing the body again."""

    def create_in_document(self, ctx, charset=None):
        parsed = ctx.transport.req_env.get(PARSED_ENVELOPE)
        if parsed is None:
            return super().create_in_document(ctx, charset)
        ctx.in_document = parsed


class _Soap11In(_ParsedOnce, Soap11):
    pass


class _Soap12In(_ParsedOnce, Soap12):
    pass


def make_applications(bridge: Bridge, max_variables: int) -> tuple[Application, Application]:
    """Two spyne Applications, SOAP 1.1 and SOAP 1.2: one spyne Application speaks one SOAP version."""
    silence_spyne()
    # spyne runs a full gc.collect() inside a request about once a second, stalling every request in
    # flight for ~13 ms (measured in bench/); Python's own generational collector is enough here.
    spyne_const.MIN_GC_INTERVAL = float("inf")

    def call(operation: str, inputs: ComplexModel | None, result_type: type[ComplexModel]) -> ComplexModel:
        try:
            pairs = variable_pairs(inputs, max_variables)
            outcome = bridge.call(operation, pairs)
        except Fault:
            raise
        except Exception:
            # A bug: logged with its traceback here, and a plain fault to the caller (never the traceback).
            log.exception("event=internal_error operation=%s", operation)
            raise Fault("Server", INTERNAL_ERROR) from None
        return _to_wire(outcome, result_type)

    def operation(name: str, inputs_type: type[ComplexModel], result_type: type[ComplexModel]):
        def handle(ctx, inputs):
            return call(name, inputs, result_type)
        handle.__name__ = name  # spyne names the operation (and its elements) after the function
        return rpc(inputs_type, _returns=result_type)(handle)

    ExternalProviderService = type("ExternalProviderService", (ServiceBase,), {
        name: operation(name, inputs_type, result_type) for name, (inputs_type, result_type) in OPERATION_TYPES.items()
    })

    def application(in_protocol: Callable, out_protocol: Callable) -> Application:
        return Application([ExternalProviderService], tns=NS, name="ExternalProvider",
                           in_protocol=in_protocol(validator="lxml"), out_protocol=out_protocol())

    return application(_Soap11In, Soap11), application(_Soap12In, _Soap12Out)



class _Soap12Out(Soap12):
    """spyne 2.14 writes a SOAP 1.2 schema-validation fault with values lxml refuses (no Role, bytes: a
    TypeError, so the caller got a bare 500): it is written as the ordinary SOAP 1.2 fault instead."""

    def schema_validation_error_to_parent(self, ctx, cls, inst, parent, ns, **_):
        if isinstance(inst.faultstring, bytes):
            inst.faultstring = inst.faultstring.decode("utf-8", "replace")
        inst.faultactor, inst.lang = inst.faultactor or "", getattr(inst, "lang", None) or "en"
        return self.fault_to_parent(ctx, cls, inst, parent, ns)


def _to_wire(outcome: ProviderResult, result_type: type[ComplexModel]) -> ComplexModel:
    result = result_type(Success=outcome.success, Message=xml_safe(outcome.message))
    if "OutputVariables" in result_type._type_info:
        result.OutputVariables = [xml_safe(f"{name}={value}") for name, value in outcome.outputs]
    if "UserInfoHtml" in result_type._type_info:
        result.UserInfoHtml = xml_safe(outcome.html)
    if "CustomFieldDataItems" in result_type._type_info:
        result.CustomFieldDataItems = [_custom_field_data(change) for change in outcome.fields]
    return result


def _custom_field_data(change: CustomFieldChange) -> ExternalCustomFieldData:
    return ExternalCustomFieldData(
        CustomFieldName=xml_safe(change.name),
        DisplayWithInformationLookup=change.first_step,
        ChangeListOptions=change.list_options is not None,
        ListOptions=[xml_safe(option) for option in change.list_options or ()],
        ChangeRequired=change.required is not None,
        NewRequiredValue=bool(change.required),
        ChangeVisible=change.visible is not None,
        NewVisibleValue=bool(change.visible),
    )
