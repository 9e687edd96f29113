"""A search whose connection dies mid-operation is retried once on the NEXT server; a bind never is, and a
login's bind goes only to the server its search read the entry from.

Two real domain controllers: the first URL is a proxy to samba_ad_second_dc that, once armed, resets the
connection carrying the next request (the operation in flight dies); the second URL is samba_ad.
"""

from __future__ import annotations

import logging

import pytest

from ssobridge.config import DEFAULT_MESSAGES, LockoutSettings, LoginSettings
from ssobridge.directory import Directory, DirectorySet, DirectoryUnavailable, parse_login_name
from ssobridge.directory.connections import Connector
from ssobridge.lockout import Shield
from ssobridge.lockout.store import Store
from ssobridge.providers.base import Variables
from ssobridge.providers.login import LoginProvider
from tests.support.network import ResettingProxy
from tests.support.lockout import bad_password_count
from tests.support.services import settings_for


@pytest.fixture
def proxy(samba_ad_second_dc):
    proxy = ResettingProxy(samba_ad_second_dc.host, samba_ad_second_dc.ldaps_port)
    yield proxy
    proxy.close()


@pytest.fixture
def settings(samba_ad, proxy):
    return settings_for(samba_ad, urls=(f"ldaps://127.0.0.1:{proxy.port}", samba_ad.ldaps_url))


class ArmsAfterOpening(Connector):
    """Arms the proxy once, right after a new connection through it is open (and, for searches, bound):
    the first request on that FRESH connection then dies in flight."""

    def __init__(self, settings, proxy: ResettingProxy, for_service: bool):
        super().__init__(settings)
        self.proxy, self.for_service, self.armed = proxy, for_service, False

    def open(self, bind_as_service, after=None, server=None):
        connection = super().open(bind_as_service, after, server)
        if not self.armed and bind_as_service == self.for_service and connection.server.port == self.proxy.port:
            self.armed = True
            self.proxy.arm()
        return connection


def test_a_search_whose_new_connection_is_reset_is_retried_once_on_the_next_server(
        samba_ad, proxy, settings, caplog):
    directory = Directory(settings, ArmsAfterOpening(settings, proxy, for_service=True))
    caplog.set_level(logging.INFO, "ssobridge.directory")
    try:
        entry = directory.find_user(parse_login_name("jdoe"))
    finally:
        directory.close()
    assert entry.dn == samba_ad.users["jdoe"].dn and entry.server == samba_ad.ldaps_url
    assert (proxy.connections, proxy.resets) == (1, 1)
    [retry] = [r.getMessage() for r in caplog.records if "event=directory_retry" in r.getMessage()]
    assert retry.startswith(f"event=directory_retry directory=ad server=127.0.0.1:{proxy.port} reason=")


def test_a_search_on_a_reused_connection_reset_mid_operation_goes_to_the_next_server(samba_ad, proxy, settings):
    directory = Directory(settings)
    try:
        assert directory.find_user(parse_login_name("jdoe")).server == f"ldaps://127.0.0.1:{proxy.port}"
        proxy.arm()
        assert directory.find_user(parse_login_name("jdoe")).server == samba_ad.ldaps_url
    finally:
        directory.close()
    assert (proxy.connections, proxy.resets) == (1, 1)


def test_a_bind_whose_connection_is_reset_is_never_retried(samba_ad, samba_ad_second_dc, proxy, settings):
    user = samba_ad.users["jdoe"]
    before = bad_password_count(samba_ad, user.dn), bad_password_count(samba_ad_second_dc, user.dn)
    directory = Directory(settings, ArmsAfterOpening(settings, proxy, for_service=False))
    try:
        entry = directory.find_user(parse_login_name(user.login))
        with pytest.raises(DirectoryUnavailable):
            directory.verify_password(entry, b"wrong-" + user.password_bytes)
    finally:
        directory.close()
    assert (proxy.connections, proxy.resets) == (2, 1)  # the service connection, the one bind: no other
    # Neither DC counted a wrong password: the bind died before reaching DC2, and never went to DC1.
    assert (bad_password_count(samba_ad, user.dn), bad_password_count(samba_ad_second_dc, user.dn)) == before


class PinnedServerFailsAfterSearch(Directory):
    """The server the search used stops taking connections once the entry is found, before the bind."""

    def __init__(self, settings, pinned: ResettingProxy):
        super().__init__(settings)
        self.pinned = pinned

    def find_user(self, name):
        entry = super().find_user(name)
        self.pinned.close()  # new connections to it are refused; the service connection lives on
        return entry


def test_a_login_whose_pinned_server_fails_before_the_bind_is_unavailable_and_binds_nowhere_else(
        tmp_path, samba_ad, samba_ad_second_dc, proxy, caplog):
    user = samba_ad.users["jdoe"]
    other = ResettingProxy(samba_ad.host, samba_ad.ldaps_port)  # the next server, counting its connections
    pinned_url = f"ldaps://127.0.0.1:{proxy.port}"
    settings = settings_for(samba_ad, urls=(pinned_url, f"ldaps://127.0.0.1:{other.port}"))
    directories = DirectorySet([PinnedServerFailsAfterSearch(settings, proxy)])
    provider = LoginProvider(directories, DEFAULT_MESSAGES, LoginSettings(),
                             Shield(LockoutSettings(), Store(str(tmp_path))))
    before = bad_password_count(samba_ad, user.dn), bad_password_count(samba_ad_second_dc, user.dn)
    caplog.set_level(logging.INFO)
    try:
        answer = provider.authenticate(Variables.from_pairs([("loginUsername", user.login),
                                                             ("loginPassword", user.password)]))
    finally:
        directories.close()
        other.close()
    assert (answer.success, answer.message, answer.outputs) == \
        (True, DEFAULT_MESSAGES["directory_unavailable"], (("Authentication", "FAIL"),))
    assert (proxy.connections, other.connections) == (1, 0)  # the search's connection; no bind anywhere else
    [failed] = [r.getMessage() for r in caplog.records if "event=login " in r.getMessage()]
    assert failed == (f"event=login operation=Authenticate outcome=FAIL reason='directory unavailable' "
                      f"user='jdoe' directory=ad server={pinned_url} dn={user.dn!r}")
    assert (bad_password_count(samba_ad, user.dn), bad_password_count(samba_ad_second_dc, user.dn)) == before
