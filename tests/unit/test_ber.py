"""The login search encoded by ssobridge/directory/ber.py is byte for byte what ldap3 sends."""

import pytest
from ldap3 import BASE, SUBTREE
from ldap3 import SIMPLE
from ldap3.operation.bind import bind_operation
from ldap3.operation.search import search_operation
from ldap3.protocol.convert import build_controls_list
from ldap3.protocol.rfc4511 import LDAPMessage, MessageID, ProtocolOp
from pyasn1.codec.ber import encoder

from ssobridge.directory.ber import (DEREF_ALWAYS, SCOPES, Unsupported, _integer, _tlv, bind_request, encode_filter,
                                     search_request)
from ssobridge.directory.openldap import PPOLICY_OID

ATTRIBUTES = ["cn", "mail", "userAccountControl", "msDS-User-Account-Control-Computed", "memberOf;range=0-*"]

FILTERS = [
    "(uid=jdoe)",
    "(&(objectClass=inetOrgPerson)(|(uid=bench042)(mail=bench042@example.test)))",
    "(&(objectCategory=person)(objectClass=user)(sAMAccountName=j\\2adoe\\28x\\29\\5c))",
    "(&(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))",
    "(memberOf:1.2.840.113556.1.4.1941:=CN=Staff,OU=Groups,DC=example,DC=test)",
    "(cn:dn:2.5.13.5:=John)",
    "(:dn:2.5.13.5:=John)",
    "(:1.2.3:=x)",
    "(cn:=x)",
    "(cn=*)",
    "(cn=Jo*)",
    "(cn=*hn)",
    "(cn=J*o*h*n)",
    "(uidNumber>=1000)",
    "(uidNumber<=1000)",
    "(sn~=smith)",
    "(displayName=Zoë Ünicode 名前)",
    "(mail=" + "a" * 300 + "@example.test)",
    "(description=\\00\\ff)",
]


def ldap3_bytes(search_filter: str, scope: str = SUBTREE, size_limit: int = 2, time_limit: int = 5,
                message_id: int = 7) -> bytes:
    request = search_operation("dc=example,dc=test", search_filter, scope, "ALWAYS", ATTRIBUTES, size_limit,
                               time_limit, False, True, True, None, check_names=False)
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    message["protocolOp"] = ProtocolOp().setComponentByName("searchRequest", request)
    return encoder.encode(message)


def our_bytes(search_filter: str, scope: str = SUBTREE, size_limit: int = 2, time_limit: int = 5,
              message_id: int = 7) -> bytes:
    request = {"base": "dc=example,dc=test", "scope": SCOPES[scope], "dereferenceAlias": DEREF_ALWAYS,
               "sizeLimit": size_limit, "timeLimit": time_limit, "typesOnly": False, "attributes": ATTRIBUTES}
    return _tlv(0x30, _integer(0x02, message_id) + search_request(request, encode_filter(search_filter)))


@pytest.mark.parametrize("search_filter", FILTERS)
def test_a_search_is_encoded_as_ldap3_encodes_it(search_filter):
    assert our_bytes(search_filter) == ldap3_bytes(search_filter)


@pytest.mark.parametrize("numbers", [(BASE, 0, 0, 1), (SUBTREE, 127, 128, 255), (SUBTREE, 2, 30, 70000)])
def test_scope_limits_and_message_ids_are_encoded_as_ldap3_encodes_them(numbers):
    scope, size_limit, time_limit, message_id = numbers
    assert our_bytes(FILTERS[1], scope, size_limit, time_limit, message_id) == \
        ldap3_bytes(FILTERS[1], scope, size_limit, time_limit, message_id)


@pytest.mark.parametrize("search_filter", [
    "(&(objectClass=user) (cn=x))", "(cn=a\\zz)", "(cn=a\\)", "(cn=a**b)", "cn=x", "(cn=x", "(&)", "( cn=x)",
    "(cn=x))", "(cn=(x)",
])
def test_a_filter_this_encoder_does_not_take_is_left_to_ldap3(search_filter):
    with pytest.raises(Unsupported):
        encode_filter(search_filter)


@pytest.mark.parametrize("controls", [None, [(PPOLICY_OID, False, None)], [("1.2.3", True, b"\x04\x00")]])
@pytest.mark.parametrize("name, password", [
    ("uid=jdoe,ou=people,dc=example,dc=test", b"s3cret"), ("CN=Zoë Ünicode,DC=example,DC=test", "pässwörd".encode()),
    ("cn=x", b"p" * 200),
])
def test_a_simple_bind_is_encoded_as_ldap3_encodes_it(name, password, controls):
    message = LDAPMessage()
    message["messageID"] = MessageID(9)
    message["protocolOp"] = ProtocolOp().setComponentByName(
        "bindRequest", bind_operation(3, SIMPLE, name, password, auto_encode=True))
    if controls:
        message["controls"] = build_controls_list(controls)
    assert _tlv(0x30, _integer(0x02, 9) + bind_request(name, password, controls)) == encoder.encode(message)
