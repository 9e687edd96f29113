"""The config file: validation lists every problem; ${NAME} comes from the environment or .env."""

import pytest

from ssobridge.config import DEFAULT_USER_FILTERS, ConfigError, load

VALID = """
[server]
listen = "127.0.0.1:8290"
public_url = "https://helpdesk-sso.example.com/ExternalProvider.asmx"

[smartertrack]
web_service_password = "${ST_PASSWORD}"

[[directory]]
name = "corp"
type = "active_directory"
urls = ["ldaps://dc1.example.test", "ldaps://dc2.example.test:636"]
base_dn = "DC=example,DC=test"
bind_dn = "svc@example.test"
bind_password = "${BIND_PASSWORD}"
netbios_domain = "example"
upn_suffixes = ["Example.Test"]

[attributes]
"cf_Department" = ["department"]
EmailAddress = "mail"
"""


def write(tmp_path, text, dotenv=None):
    path = tmp_path / "ssobridge.toml"
    path.write_text(text, encoding="utf-8")
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv, encoding="utf-8")
    return path


@pytest.mark.parametrize("line, password", [
    ("BIND_PASSWORD='p@ss${HOME}word #1'", "p@ss${HOME}word #1"),  # single quotes: exactly as written
    ('BIND_PASSWORD="it\'s \\"quoted\\" ${HOME}"', 'it\'s "quoted" ${HOME}'),
    ("BIND_PASSWORD=plain${HOME}$x # a comment", "plain${HOME}$x"),
])
def test_dotenv_values_are_literal_as_docs_configuration_md_quotes_them(tmp_path, monkeypatch, line, password):
    monkeypatch.setenv("ST_PASSWORD", "x")
    monkeypatch.setenv("HOME", "/expanded")
    config = load(write(tmp_path, VALID, line + "\n"))
    assert config.directories[0].bind_password == password


def test_valid_config_with_secrets_from_environment_and_dotenv(tmp_path, monkeypatch):
    monkeypatch.setenv("ST_PASSWORD", "from-env")
    config = load(write(tmp_path, VALID, 'ST_PASSWORD="from-dotenv"\nBIND_PASSWORD="p$ss"\n'))
    assert config.web_service_password == "from-env"  # the environment wins over .env
    directory = config.directories[0]
    assert directory.bind_password == "p$ss"  # a '$' that is not ${NAME} is literal
    assert directory.netbios_domain == "EXAMPLE" and directory.upn_suffixes == ("example.test",)
    assert directory.user_filter == DEFAULT_USER_FILTERS["active_directory"]
    mappings = {m.name: [c.text for c in m.candidates] for m in directory.attributes}
    assert mappings == {"EmailAddress": ["mail"], "DisplayName": ["displayName", "cn"],
                        "cf_Department": ["department"]}
    assert config.server.max_body_bytes == 1024 * 1024 and config.server.max_variables == 1000


def test_secrets_do_not_appear_in_the_config_repr(tmp_path, monkeypatch):
    monkeypatch.setenv("ST_PASSWORD", "sekrit-st")
    monkeypatch.setenv("BIND_PASSWORD", "sekrit-bind")
    text = repr(load(write(tmp_path, VALID)))
    assert "sekrit" not in text


def test_undefined_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("ST_PASSWORD", raising=False)
    monkeypatch.setenv("BIND_PASSWORD", "x")
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, VALID))
    assert error.value.problems == [
        "smartertrack.web_service_password: ${ST_PASSWORD} is not defined in the environment or in .env "
        "(nor is ST_PASSWORD_FILE)"]


def test_a_secret_comes_from_the_file_named_by_name_file_when_name_is_unset(tmp_path, monkeypatch):
    secrets = tmp_path / "run-secrets"
    secrets.mkdir()
    (secrets / "st").write_text("st-from-file\n", encoding="utf-8")  # one trailing newline is stripped
    (secrets / "bind").write_text("bind-from-file\n\n", encoding="utf-8")  # only one
    monkeypatch.delenv("ST_PASSWORD", raising=False)
    monkeypatch.delenv("BIND_PASSWORD", raising=False)
    monkeypatch.setenv("ST_PASSWORD_FILE", str(secrets / "st"))
    config = load(write(tmp_path, VALID, f'BIND_PASSWORD_FILE="{secrets / "bind"}"\n'))  # NAME_FILE in .env too
    assert config.web_service_password == "st-from-file"
    assert config.directories[0].bind_password == "bind-from-file\n"
    monkeypatch.setenv("ST_PASSWORD", "from-env")  # NAME, when set, wins over NAME_FILE
    assert load(write(tmp_path, VALID, f'BIND_PASSWORD_FILE="{secrets / "bind"}"\n')).web_service_password == \
        "from-env"


def test_an_unreadable_secret_file_names_name_file_and_the_path(tmp_path, monkeypatch):
    monkeypatch.delenv("ST_PASSWORD", raising=False)
    monkeypatch.delenv("BIND_PASSWORD", raising=False)
    monkeypatch.setenv("ST_PASSWORD_FILE", str(tmp_path / "absent"))
    monkeypatch.setenv("BIND_PASSWORD_FILE", str(tmp_path))  # a folder: cannot be read as a file
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, VALID))
    assert error.value.problems == [
        f"smartertrack.web_service_password: ${{ST_PASSWORD}}: ST_PASSWORD is unset and ST_PASSWORD_FILE names "
        f"{tmp_path / 'absent'}, which does not exist",
        f"directory[0].bind_password: ${{BIND_PASSWORD}}: BIND_PASSWORD is unset and BIND_PASSWORD_FILE names "
        f"{tmp_path}, which cannot be read: Is a directory"]


def test_data_dir_comes_from_ssobridge_data_dir_when_the_file_has_none_and_holds_the_events(tmp_path, monkeypatch):
    text = VALID.replace("${ST_PASSWORD}", "x").replace("${BIND_PASSWORD}", "y") + "[events]\n"
    monkeypatch.delenv("SSOBRIDGE_DATA_DIR", raising=False)
    config = load(write(tmp_path, text))
    assert (config.server.data_dir, config.events.database) == (str(tmp_path), str(tmp_path / "ssobridge-events.db"))
    monkeypatch.setenv("SSOBRIDGE_DATA_DIR", "/var/lib/ssobridge")
    config = load(write(tmp_path, text))
    assert (config.server.data_dir, config.events.database) == ("/var/lib/ssobridge",
                                                                "/var/lib/ssobridge/ssobridge-events.db")
    text = text.replace("[server]\n", '[server]\ndata_dir = "state"\n').replace(
        "[events]\n", '[events]\ndatabase = "outbox.db"\n')  # the file wins; database stays beside the config
    config = load(write(tmp_path, text))
    assert (config.server.data_dir, config.events.database) == (str(tmp_path / "state"), str(tmp_path / "outbox.db"))


def test_every_problem_is_listed_with_its_key(tmp_path):
    text = """
[server]
listen = "8290"
[smartertrack]
web_service_password = ""
[[directory]]
type = "novell"
urls = ["ldap://dc1.example.test", "http://x"]
base_dn = "DC=x"
bind_dn = "cn=svc"
connect_timeout = -1
user_filter = "(uid={login})"
colour = "blue"
[attributes]
Phone = "telephoneNumber"
"""
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, text))
    assert error.value.problems == [
        "server.listen: must be host:port, for example 127.0.0.1:8290, not '8290'",
        "smartertrack.web_service_password: must not be empty",
        "attributes.Phone: must be EmailAddress, DisplayName or a cf_<Field> name",
        "directory[0].type: must be one of active_directory, ldap, not 'novell'",
        "directory[0].urls: 'ldap://dc1.example.test' would send passwords in clear text: use ldaps://, "
        "or set start_tls = true, or (not recommended) allow_plaintext = true",
        "directory[0].urls: 'http://x' is not an ldap:// or ldaps:// URL with a host",
        "directory[0].bind_password: is required when bind_dn is set",
        "directory[0].user_filter: must contain {user} or {upn}",
        "directory[0].user_filter: unknown placeholders: login; only {user} and {upn} exist",
        "directory[0].connect_timeout: must be greater than 0",
        "directory[0].colour: unknown key (misspelt?)",
    ]


def test_start_tls_or_explicit_plaintext_makes_ldap_urls_acceptable(tmp_path):
    base = VALID.replace("${ST_PASSWORD}", "x").replace("${BIND_PASSWORD}", "y")
    for setting in ("start_tls = true", "allow_plaintext = true"):
        text = base.replace('urls = ["ldaps://dc1.example.test", "ldaps://dc2.example.test:636"]',
                            f'urls = ["ldap://dc1.example.test"]\n{setting}')
        assert load(write(tmp_path, text)).directories[0].urls == ("ldap://dc1.example.test:389",)


@pytest.mark.parametrize("written, normal", [
    ("ldaps://dc1.example.test", "ldaps://dc1.example.test:636"),
    ("LDAPS://DC1.Example.Test:636/", "ldaps://dc1.example.test:636"),
    ("ldaps://127.0.0.88", "ldaps://127.0.0.88:636"),
    ("ldaps://[::1]", "ldaps://[::1]:636"),
    ("ldap://dc1.example.test:3268", "ldap://dc1.example.test:3268"),
])
def test_a_directory_url_has_one_spelling_everywhere(written, normal):
    """Logs, metrics (ssobridge_directory_server_up), check and UserEntry.server all use the config's URL; a
    connection names its server the same way (directory.connections.connection_url -> server_url)."""
    from ssobridge.config.directories import normal_url, server_url
    from urllib.parse import urlsplit
    assert normal_url(written) == normal
    parts = urlsplit(normal)
    assert server_url(parts.scheme == "ldaps", parts.hostname, parts.port) == normal


def test_missing_and_broken_files_are_reported_plainly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as error:
        load("nope.toml")
    assert error.value.problems == [f"{tmp_path / 'nope.toml'}: file not found"]
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(write(tmp_path, "[server\n"))


def test_a_toml_syntax_error_shows_the_line_with_a_marker_under_the_column(tmp_path):
    path = write(tmp_path, '[smartertrack]\r\nweb_service_password = "x"\r\n[server]\r\nlisten = 127.0.0.1:8290\r\n')
    with pytest.raises(ConfigError) as error:
        load(path)
    assert error.value.problems == [
        f"{path}: not valid TOML: Expected newline or end of document after a statement (at line 4, column 15)\n"
        "      4 | listen = 127.0.0.1:8290\n"
        "        |               ^"]
    path = write(tmp_path, '[server]\n\tpublic_url = "https://x\n')  # a tab before the column stays a tab
    with pytest.raises(ConfigError) as error:
        load(path)
    assert error.value.problems == [
        f"{path}: not valid TOML: Illegal character '\\n' (at line 2, column 25)\n"
        '      2 | \tpublic_url = "https://x\n'
        "        | \t                       ^"]
    path = write(tmp_path, "a = [1,\n")  # at the end of the document: no line to show
    with pytest.raises(ConfigError) as error:
        load(path)
    assert error.value.problems == [f"{path}: not valid TOML: Invalid value (at end of document)"]


def test_missing_ca_file_is_reported(tmp_path):
    text = VALID.replace("${ST_PASSWORD}", "x").replace("${BIND_PASSWORD}", "y").replace(
        'netbios_domain', 'ca_file = "/nonexistent/ca.pem"\nnetbios_domain')
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, text))
    assert error.value.problems == ["directory[0].ca_file: file not found: /nonexistent/ca.pem"]


def with_ca_file(path: str) -> str:
    return VALID.replace("${ST_PASSWORD}", "x").replace("${BIND_PASSWORD}", "y").replace(
        'netbios_domain', f'ca_file = "{path}"\nnetbios_domain')


def test_a_relative_ca_file_is_looked_for_beside_the_config_and_named_resolved(tmp_path, monkeypatch):
    monkeypatch.chdir("/")
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, with_ca_file("corp-ca.pem")))
    assert error.value.problems == [f"directory[0].ca_file: file not found: {tmp_path / 'corp-ca.pem'}"]
    from tests.support.pki import create_test_pki
    pki = create_test_pki(tmp_path / "pki")
    (tmp_path / "corp-ca.pem").write_bytes(pki.ca.cert_file.read_bytes())
    assert load(write(tmp_path, with_ca_file("corp-ca.pem"))).directories[0].ca_file == str(tmp_path / "corp-ca.pem")


@pytest.mark.parametrize("content, holds", [
    (b"", "no PEM certificate"),
    (b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n", "no PEM certificate"),
    (b"\x30\x82\x03\x00binary", "a DER (binary) certificate: convert it to PEM"),
])
def test_a_ca_file_holding_no_certificate_is_a_config_problem(tmp_path, content, holds):
    (tmp_path / "ca.pem").write_bytes(content)
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, with_ca_file("ca.pem")))
    assert error.value.problems == [
        f"directory[0].ca_file: {tmp_path / 'ca.pem'} holds {holds}; it must hold the CA certificate(s) that signed "
        "the servers' certificates, in PEM (-----BEGIN CERTIFICATE-----)"]


def test_the_example_config_is_valid(monkeypatch):
    from pathlib import Path
    monkeypatch.setenv("SSOBRIDGE_WEB_SERVICE_PASSWORD", "x")
    monkeypatch.setenv("SSOBRIDGE_BIND_PASSWORD", "y")
    config = load(Path(__file__).parents[2] / "config.example.toml")
    assert [d.name for d in config.directories] == ["corp"]


SERVER_BASE = '[smartertrack]\nweb_service_password = "x"\n'


def test_plain_http_beyond_loopback_is_refused_unless_allowed(tmp_path):
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, '[server]\nlisten = "0.0.0.0:8290"\n' + SERVER_BASE))
    assert error.value.problems[0].startswith("server.listen: 0.0.0.0:8290 is reachable from other machines")
    allowed = load(write(tmp_path, '[server]\nlisten = "0.0.0.0:8290"\nallow_plaintext_http = true\n' + SERVER_BASE))
    assert allowed.server.allow_plaintext_http and not allowed.server.is_loopback
    for host in ("127.0.0.1", "[::1]", "localhost"):
        assert load(write(tmp_path, f'[server]\nlisten = "{host}:8290"\n' + SERVER_BASE)).server.is_loopback


def test_tls_files_make_the_default_public_url_https(tmp_path):
    (tmp_path / "c.pem").write_text("x")
    (tmp_path / "k.pem").write_text("x")
    config = load(write(tmp_path, f'[server]\nlisten = "0.0.0.0:8443"\ntls_cert = "{tmp_path}/c.pem"\n'
                                  f'tls_key = "{tmp_path}/k.pem"\n' + SERVER_BASE))
    assert config.server.public_url == "https://0.0.0.0:8443/ExternalProvider.asmx"
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, f'[server]\ntls_cert = "{tmp_path}/c.pem"\n' + SERVER_BASE))
    assert error.value.problems == ["server.tls_key: tls_cert and tls_key must be set together"]


def test_provider_passwords_are_checked(tmp_path):
    config = load(write(tmp_path, SERVER_BASE + '[smartertrack.passwords]\nuser_info = "ui"\n'))
    assert dict(config.provider_passwords) == {"user_info": "ui"}
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, SERVER_BASE + '[smartertrack.passwords]\nlogins = "a"\nticket = ""\n'))
    assert error.value.problems == [
        "smartertrack.passwords.ticket: must not be empty (leave it out to use web_service_password)",
        "smartertrack.passwords.logins: unknown provider; use one of login, custom_fields, ticket, chat, "
        "user_info, events"]


def test_an_unknown_key_suggests_the_closest_known_one(tmp_path):
    text = VALID.replace("${ST_PASSWORD}", "x").replace("${BIND_PASSWORD}", "y")
    text = text.replace("upn_suffixes", "upn_sufixes").replace("[server]", "[sever]\n[server]")
    text += '[[field]]\nname = "Region"\noptions_from_group = "^region-(.*)$"\n'
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, text))
    assert error.value.problems == [
        "directory[0].upn_sufixes: unknown key; did you mean upn_suffixes?",
        "field[0].options_from_group: unknown key; did you mean options_from_groups?",
        "(top level).sever: unknown key; did you mean server?",
    ]


def test_an_unknown_key_with_no_close_match_is_named_plainly(tmp_path):
    text = VALID.replace("${ST_PASSWORD}", "x").replace("${BIND_PASSWORD}", "y")
    text = text.replace('netbios_domain', 'frobnicate = 1\nnetbios_domain')
    text += '[policy]\nzzz = true\n'
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, text))
    assert error.value.problems == ["directory[0].frobnicate: unknown key (misspelt?)",
                                    "policy.zzz: unknown key (misspelt?)"]


def test_policy_tables_share_the_typed_reads(tmp_path):
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, SERVER_BASE + '[policy]\nunknown_message = 5\n'
                                           '[[department]]\nname = "Sales"\ntickets = [""]\n'))
    assert error.value.problems == ["policy.unknown_message: must be a string, not 5",
                                    "department[0].tickets: must be a list of names"]


def test_defaults_come_from_the_settings_dataclasses(tmp_path):
    from ssobridge.config import DirectorySettings, UserInfoSettings, defaults
    config = load(write(tmp_path, VALID.replace("${ST_PASSWORD}", "x").replace("${BIND_PASSWORD}", "y")
                        + "[user_info]\n"))
    directory_defaults = {k: v for k, v in defaults(DirectorySettings).items() if k != "attributes"}
    assert {name: getattr(config.directories[0], name) for name in directory_defaults} == {
        **directory_defaults, "upn_suffixes": ("example.test",), "netbios_domain": "EXAMPLE"}
    assert config.user_info == UserInfoSettings()


def test_lockout_takes_auto_or_a_number(tmp_path):
    from ssobridge.config import LockoutSettings
    assert load(write(tmp_path, SERVER_BASE)).lockout == LockoutSettings()
    config = load(write(tmp_path, SERVER_BASE + '[lockout]\nthreshold = 4\nwindow_seconds = "auto"\n'
                                                'known_password = false\nmessage = "Wait."\n'))
    assert config.lockout == LockoutSettings(threshold=4, known_password=False, message="Wait.")
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, SERVER_BASE + '[lockout]\nthreshold = 0\nwindow_seconds = "soon"\n'))
    assert error.value.problems == ['lockout.threshold: must be "auto" or a whole number of at least 1, not 0',
                                    "lockout.window_seconds: must be \"auto\" or a whole number of at least 1, "
                                    "not 'soon'"]


def test_a_syslog_sink_on_windows_needs_a_host_and_port(tmp_path, monkeypatch):
    text = VALID.replace("${ST_PASSWORD}", "x").replace("${BIND_PASSWORD}", "y") + \
        '[events]\n[[events.sink]]\ntype = "syslog"\n[[events.sink]]\ntype = "syslog"\naddress = "/dev/log"\n' \
        '[[events.sink]]\ntype = "syslog"\naddress = "logs.example.test:514"\n'
    assert [s.address for s in load(write(tmp_path, text)).events.sinks] == \
        [None, "/dev/log", "logs.example.test:514"]
    monkeypatch.setattr("sys.platform", "win32")
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, text))
    problem = "Windows has no unix socket such as /dev/log: give the syslog server as host:port (UDP)"
    assert error.value.problems == [f"events.sink[0].address: {problem}", f"events.sink[1].address: {problem}"]


def test_workers_default_to_one_per_cpu_and_must_be_a_whole_number_of_at_least_one(tmp_path):
    import os
    assert load(write(tmp_path, SERVER_BASE)).server.workers == (os.cpu_count() or 1)
    assert load(write(tmp_path, "[server]\nworkers = 3\n" + SERVER_BASE)).server.workers == 3
    for value, problem in (("0", "must be greater than 0"), ("1.5", "must be a whole number, not 1.5")):
        with pytest.raises(ConfigError) as error:
            load(write(tmp_path, f"[server]\nworkers = {value}\n" + SERVER_BASE))
        assert error.value.problems == [f"server.workers: {problem}"]


def test_every_key_docs_configuration_md_lists_is_in_config_example_toml():
    """The example mirrors the reference: each key of docs/configuration.md's tables is set or commented there."""
    import re
    from pathlib import Path
    root = Path(__file__).parents[2]
    keys = set(re.findall(r"^\| `([a-z_]+)` \|", (root / "docs" / "configuration.md").read_text(encoding="utf-8"), re.M))
    example = (root / "config.example.toml").read_text(encoding="utf-8")
    assert len(keys) > 50
    assert [key for key in sorted(keys) if not re.search(rf'^\s*#?\s*"?{key}"?\s*=', example, re.M)] == []
