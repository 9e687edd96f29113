"""directory/ber.py writes a login's search and bind itself and sets ldap3's private state as ldap3 would
(connection._entries, _deferred_bind, _bind_controls, _usage, strategy._outstanding). It was written against
ldap3 2.9.1, pinned exactly in pyproject.toml; these tests fail loudly when that state changes shape, so a new
ldap3 is read against ber.py before it is let in. Why ber.py at all: bench/ber_or_ldap3.py (ldap3's public path
costs ~0.5 ms more CPU per login, 3.3 times as much).
"""

from __future__ import annotations

import inspect

import ldap3
from ldap3 import SUBTREE
from ldap3.core.usage import ConnectionUsage
from ldap3.strategy.sync import SyncStrategy

from ssobridge.directory import ber
from ssobridge.directory.openldap import PPOLICY_OID
from tests.support.directory import connect

# What ber.py writes or reads that ldap3 does not document, and what it must be on a fresh bound connection.
PRIVATE = {"_entries": list, "_deferred_bind": bool, "_bind_controls": type(None), "_usage": type(None)}
CONTROLS = [(PPOLICY_OID, False, None)]


def test_ldap3_is_the_release_ber_was_written_against():
    assert ldap3.__version__ == "2.9.1", (
        f"ldap3 {ldap3.__version__}: directory/ber.py sets ldap3 2.9.1's private state; read it and this test "
        "against the new release before changing the pin in pyproject.toml")


def test_the_private_state_ber_relies_on_is_there_with_its_types_and_signatures(openldap):
    connection = connect(openldap, openldap.service_dn, openldap.service_password)
    try:
        assert connection.bind()
        assert {name: type(getattr(connection, name, AttributeError)) for name in PRIVATE} == PRIVATE
        assert type(connection.strategy) is SyncStrategy and type(connection.strategy._outstanding) is dict
        assert (connection.strategy.sync, connection.strategy.pooled, connection.lazy,
                getattr(connection.strategy, "no_real_dsa", False)) == (True, False, False, False)
        assert connection.post_send_search == connection.strategy.post_send_search  # ldap3 binds them so
        assert list(inspect.signature(SyncStrategy.post_send_search).parameters) == ["self", "message_id"]
        assert list(inspect.signature(SyncStrategy.post_send_single_response).parameters) == ["self", "message_id"]
        assert list(inspect.signature(connection.server.next_message_id).parameters) == []
        assert list(inspect.signature(ConnectionUsage.update_transmitted_message).parameters) == \
            ["self", "message", "length"]
    finally:
        connection.unbind()


def state(connection) -> dict:
    """What a connection and its strategy hold, bar the objects every connection has its own of."""
    own = ("socket", "server", "strategy", "connection_lock", "extend", "request")
    found = {f"connection.{k}": v for k, v in vars(connection).items() if k not in own and not callable(v)}
    found.update({f"strategy.{k}": v for k, v in vars(connection.strategy).items()
                  if k != "connection" and not callable(v)})
    return found


def test_ber_leaves_a_connection_as_ldap3s_own_search_and_bind_leave_it(openldap):
    """The same search and bind, one connection through ldap3, one through ber.py: the same state after each."""
    user = openldap.users["jdoe"]
    through_ldap3, through_ber = (connect(openldap, openldap.service_dn, openldap.service_password) for _ in "12")
    try:
        assert through_ldap3.bind() and through_ber.bind()
        arguments = (openldap.base_dn, SUBTREE, "(uid=jdoe)", ["cn", "mail", "pwdFailureTime"], 2, 5)
        through_ldap3.search(arguments[0], arguments[2], arguments[1], attributes=arguments[3],
                             size_limit=arguments[4], time_limit=arguments[5])
        assert ber.search(through_ber, *arguments)
        assert state(through_ber) == state(through_ldap3)
        assert through_ber.request == {k: v for k, v in through_ldap3.request.items() if k != "controls"}
        assert through_ber.entries[0].entry_dn == user.dn
        for connection in (through_ldap3, through_ber):
            connection.user, connection.password = user.dn, user.password.encode("utf-8")
        through_ldap3.bind(read_server_info=False, controls=CONTROLS)
        assert ber.simple_bind(through_ber, CONTROLS) is True
        assert state(through_ber) == state(through_ldap3)
        # ldap3 keeps the password in its request; ber.py does not.
        assert through_ber.request == {"type": "bindRequest", "version": 3, "name": user.dn,
                                       "authentication": {"simple": "<stripped>", "sasl": None}}
    finally:
        through_ldap3.unbind()
        through_ber.unbind()
