"""`ssobridge demo`: the real endpoint on an embedded sample directory, to try ssobridge without one.

The sample directory is ldap3's in-memory mock (used here and nowhere else): binds check the sample
passwords, searches run the real user_filter. Account states (locked, expired, ...) need a real
directory; see docs/ for connecting one.
"""

from __future__ import annotations

import json
import secrets
from importlib import resources

from ldap3 import MOCK_SYNC, NONE, SIMPLE, Connection, Server

from ..config import (DEFAULT_ATTRIBUTES, Config, DirectorySettings, DirectoryType, LockoutSettings, ServerSettings,
                      UserInfoSettings, parse_listen)
from ..directory import DirectorySet
from ..directory.connections import Connector, bind_service_account
from ..mapping import Candidate, OutputMapping

NETBIOS_DOMAIN = "DEMO"
UPN_SUFFIX = "demo.example"


class SampleDirectoryConnector(Connector):
    """Connections to one shared in-memory directory instead of a server on the network."""

    def __init__(self, settings: DirectorySettings, data: dict):
        super().__init__(settings)
        self._server = Server("sample-directory", get_info=NONE)
        loader = Connection(self._server, client_strategy=MOCK_SYNC)
        loader.strategy.add_entry(data["service"]["dn"], {"objectClass": ["person"], "cn": "ssobridge",
                                                          "sn": "service", "userPassword": data["service"]["password"]})
        for entry in data["entries"]:
            loader.strategy.add_entry(entry["dn"], {**entry["attributes"], "userPassword": entry["password"]})

    def open(self, bind_as_service: bool, after: Connection | None = None, server: str | None = None) -> Connection:
        connection = Connection(self._server, authentication=SIMPLE, client_strategy=MOCK_SYNC,
                                raise_exceptions=False)
        connection.open()
        if bind_as_service:
            bind_service_account(connection, self.settings)
        self.opened += 1
        return connection


def sample_data() -> dict:
    return json.loads(resources.files("ssobridge.demo").joinpath("directory.json").read_text(encoding="utf-8"))


def demo_config(listen: str, password: str) -> Config:
    data = sample_data()
    host, port = parse_listen(listen)
    attributes = DEFAULT_ATTRIBUTES + (
        OutputMapping("cf_Department", (Candidate("departmentNumber"),)),
        OutputMapping("cf_Job Title", (Candidate("title"),)),
    )
    directory = DirectorySettings(
        name="sample", type=DirectoryType.LDAP, urls=("ldap://sample-directory",), base_dn=data["base_dn"],
        bind_dn=data["service"]["dn"], bind_password=data["service"]["password"], allow_plaintext=True,
        connect_timeout=1, timeout=1, netbios_domain=NETBIOS_DOMAIN, upn_suffixes=(UPN_SUFFIX,),
        user_filter="(&(objectClass=inetOrgPerson)(|(uid={user})(mail={upn})))", default=True, retry_down_after=1,
        membership_cache_seconds=60, group_name_cache_seconds=60, attributes=attributes)
    server = ServerSettings(host=host, port=port, public_url=f"http://{listen}/ExternalProvider.asmx", threads=8,
                            workers=1, allow_plaintext_http=True)  # one: its banner printed once
    user_info = UserInfoSettings(cache_seconds=60, stale_seconds=3600)
    return Config(server=server, web_service_password=password, source="(demo)", directories=(directory,),
                  attributes=attributes, user_info=user_info,
                  lockout=LockoutSettings(enabled=False))  # nothing to protect; no state file in the folder


def banner(config: Config, data: dict) -> str:
    url = config.server.public_url
    lines = [
        "ssobridge demo: the SmarterTrack external provider endpoint on an embedded sample directory.",
        f"  Web Service URL:      {url}",
        f"  Web Service Password: {config.web_service_password}",
        f"  WSDL:                 {url}?wsdl",
        "  Sample users (sign in as user, DEMO\\user or user@demo.example):",
    ]
    for entry in data["entries"]:
        lines.append(f"    {entry['attributes']['uid']:<8} password {entry['password']!r}")
    lines += [
        "  Try it:",
        f"    curl -s -H 'Content-Type: text/xml; charset=utf-8' {url} --data-binary "
        "'<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>"
        "<Authenticate xmlns=\"http://tempuri.org/\"><inputs><InputVariables>"
        f"<string>authPW={config.web_service_password}</string><string>loginUsername=DEMO\\alice</string>"
        "<string>loginPassword=Alice-Passw0rd</string></InputVariables></inputs></Authenticate>"
        "</soap:Body></soap:Envelope>'",
        "  Also answered: GetUserDetails (username=alice: the customer card helpdesk staff see).",
        "  Stop with Ctrl+C. For a real directory: docs/configuration.md.",
    ]
    return "\n".join(lines)


def sample_directories(config: Config) -> DirectorySet:
    """The sample directory, built in the process that serves (a granian worker)."""
    data = sample_data()
    return DirectorySet.from_settings(config.directories,
                                      connector=lambda settings: SampleDirectoryConnector(settings, data))


def demo_start(listen: str) -> tuple[Config, dict, str]:
    """For `run_server`: the demo's config, what its worker builds it from, and the banner."""
    password = secrets.token_urlsafe(12)
    config = demo_config(listen, password)
    return config, {"demo": listen, "password": password}, banner(config, sample_data())
