"""A config value that is one of a few words ("as_unknown", "allow", "refuse", a directory type, ...) is a StrEnum
member from the config reader on, and in every settings object however it was built: code compares members."""

from __future__ import annotations

import json
import logging

import pytest

from ssobridge.config import DirectorySettings, DirectoryType, LogFormat, SinkSettings, SinkType, TicketUsername, load
from ssobridge.config.machine_key import CompatibilityMode, Decryption, Validation
from ssobridge.policy import InactiveAccounts, OnDirectoryUnavailable, Policy, UnknownUsers
from ssobridge.sso.cookie import MachineKey

CONFIG = """
[server]
log_format = "json"

[smartertrack]
web_service_password = "x"

[[directory]]
type = "ldap"
urls = ["ldaps://ldap.example.org"]
base_dn = "dc=example,dc=org"
bind_dn = "cn=svc,dc=example,dc=org"
bind_password = "p"

[policy]
unknown_users = "refuse"
inactive_accounts = "as_member"
on_directory_unavailable = "allow"

[events]
[[events.sink]]
type = "webhook"
url = "https://hooks.example.org/st"

[sso]
ticket_username = "upn"
validation = "HMACSHA512"
decryption = "3DES"
compatibility_mode = "Framework45"
validation_key = "{validation_key}"
decryption_key = "{decryption_key}"
"""


def test_the_config_reader_gives_every_choice_as_its_member(tmp_path):
    path = tmp_path / "ssobridge.toml"
    path.write_text(CONFIG.format(validation_key="AB" * 64, decryption_key="CD" * 24), encoding="utf-8")
    config = load(path)
    assert config.server.log_format is LogFormat.JSON
    assert config.directories[0].type is DirectoryType.LDAP and not config.directories[0].is_active_directory
    assert config.policy.unknown_users is UnknownUsers.REFUSE
    assert config.policy.inactive_accounts is InactiveAccounts.AS_MEMBER
    assert config.policy.on_directory_unavailable is OnDirectoryUnavailable.ALLOW
    assert config.events.sinks[0].type is SinkType.WEBHOOK
    sso = config.sso
    assert (sso.ticket_username, sso.validation, sso.decryption, sso.compatibility_mode) == \
        (TicketUsername.UPN, Validation.HMACSHA512, Decryption.TRIPLE_DES, CompatibilityMode.FRAMEWORK45)
    assert sso.decryption is Decryption.TRIPLE_DES and sso.compatibility_mode is CompatibilityMode.FRAMEWORK45


def test_settings_built_from_text_hold_members_and_other_text_is_refused():
    assert Policy(inactive_accounts="as_member").inactive_accounts is InactiveAccounts.AS_MEMBER
    assert Policy().on_directory_unavailable is OnDirectoryUnavailable.REFUSE
    directory = DirectorySettings(name="d", type="active_directory", urls=("ldaps://dc",), base_dn="dc=x",
                                  bind_dn="svc", bind_password="p", user_filter="(uid={user})")
    assert directory.type is DirectoryType.ACTIVE_DIRECTORY and directory.is_active_directory
    assert SinkSettings(name="s", type="jsonl", path="/tmp/x").type is SinkType.JSONL
    key = MachineKey.from_hex("AB" * 32, "CD" * 16, validation="SHA1", compatibility_mode="Framework20SP2")
    assert (key.validation, key.decryption, key.compatibility_mode) == \
        (Validation.SHA1, Decryption.AES, CompatibilityMode.FRAMEWORK20SP2)
    assert key.compatibility_mode is CompatibilityMode.FRAMEWORK20SP2
    with pytest.raises(ValueError, match="'as_nobody' is not a valid InactiveAccounts"):
        Policy(inactive_accounts="as_nobody")
    with pytest.raises(ValueError, match="'ad' is not a valid DirectoryType"):
        DirectorySettings(name="d", type="ad", urls=(), base_dn="", bind_dn="", bind_password="", user_filter="")


def test_a_member_reads_as_its_text_in_log_lines_messages_and_json(caplog):
    with caplog.at_level(logging.INFO, logger="test.choices"):
        logging.getLogger("test.choices").info("policy=%s", OnDirectoryUnavailable.ALLOW)
    assert caplog.messages == ["policy=allow"]
    assert f"on_directory_unavailable = {OnDirectoryUnavailable.ALLOW}" == "on_directory_unavailable = allow"
    assert json.dumps({"type": DirectoryType.ACTIVE_DIRECTORY}) == '{"type": "active_directory"}'
    assert {"text": 1, "json": 2}[LogFormat.JSON] == 2  # a logging dictConfig keyed by the format's name
