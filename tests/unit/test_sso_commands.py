"""[sso] in the config file, `ssobridge sso import-machinekey PATH` and `ssobridge sso decode-cookie VALUE`.

The machine key of the sample web.config is that of the first published ASP.NET cookie (see
test_sso_cookie.py), so a config imported from it decodes a cookie real ASP.NET made.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from ssobridge.cli import main
from ssobridge.config import ConfigError, SsoSettings, load
from ssobridge.config.machine_key import Decryption
from ssobridge.sso.cookie import MachineKey, Ticket, issue_cookie

BASE = """
[server]
listen = "127.0.0.1:8290"

[smartertrack]
web_service_password = "x"
"""
VALIDATION_KEY = ("2863C5606B3711FC0857F47664552890E2B060A1C11A0B2221660B3137DB8538164F4813BC5E4AA319F8FE3EB86F3751"
                  "ADE6A96241664988CBB1C99EAE09E7F4")
DECRYPTION_KEY = "3C4D2EF2FD5FA7ADA0AE5E7BCC312A31E901AE4821218893"
ASP_NET_COOKIE = (  # made by ASP.NET with that key: name and user data foo@bar.com, version 1
    "71AE29F3588ACE8E0097BA62E71B3E3ADC92FBEAFC2CBBD3FC3AC200EB6F78BC85CE111125F1ED0D7F4A54805F06F572A1D5FAD25A4DE0"
    "14B54D199E6FBAF10A8674107BD78A310E589A49F2ADF6019785AF065C6677CF769D7CB17419D9BCAC35820862DEBC5894B4012B1406DD"
    "5B94248FBF87DA197BBE983A2E0A3068B6FDF83B076E387262534F946E1D861EF008EF7F7B630D7851525F1E883C9D973692")

WEB_CONFIG = f"""<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <system.web>
    <compilation debug="false" targetFramework="4.8" />
    <httpRuntime maxRequestLength="30720" />
    <machineKey validationKey="{VALIDATION_KEY}" decryptionKey="{DECRYPTION_KEY}"
                validation="HMACSHA256" decryption="AES" compatibilityMode="Framework20SP2" />
    <authentication mode="Forms">
      <forms name=".ASPXAUTH" domain="example.com" path="/" timeout="45" enableCrossAppRedirects="true" />
    </authentication>
  </system.web>
</configuration>
"""

IMPORTED = f"""\
# From PATH: <machineKey> HMACSHA256 / AES-192, Framework20SP2 (its compatibilityMode attribute).
# Add to ssobridge.toml:
[sso]
enabled = true
portal_url = "https://helpdesk.example.com/"   # SmarterTrack's address: change this
cookie_name = ".ASPXAUTH"
cookie_domain = "example.com"
cookie_path = "/"
ticket_minutes = 45
validation_key = "${{SSOBRIDGE_SSO_VALIDATION_KEY}}"
decryption_key = "${{SSOBRIDGE_SSO_DECRYPTION_KEY}}"
validation = "HMACSHA256"
decryption = "AES"
compatibility_mode = "Framework20SP2"

# Add to .env beside ssobridge.toml (readable by ssobridge only; never commit it):
SSOBRIDGE_SSO_VALIDATION_KEY={VALIDATION_KEY}
SSOBRIDGE_SSO_DECRYPTION_KEY={DECRYPTION_KEY}
"""


@pytest.fixture
def berlin_time(monkeypatch):
    """Local times in the output are Berlin's, whatever this machine's zone."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def write_config(tmp_path, sso: str, dotenv: str | None = None):
    path = tmp_path / "ssobridge.toml"
    path.write_text(BASE + sso, encoding="utf-8")
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv, encoding="utf-8")
    return path


def problems_of(tmp_path, sso: str) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load(write_config(tmp_path, sso))
    return error.value.problems


def test_sso_is_disabled_by_default_with_asp_nets_defaults(tmp_path):
    assert load(write_config(tmp_path, "")).sso == SsoSettings()
    assert (SsoSettings().cookie_name, SsoSettings().ticket_minutes, SsoSettings().validation,
            SsoSettings().decryption, SsoSettings().compatibility_mode) == (
        ".ASPXAUTH", 30, "HMACSHA256", "AES", "Framework20SP1")


def test_enabled_sso_names_each_missing_key(tmp_path):
    assert problems_of(tmp_path, "[sso]\nenabled = true\n") == [
        "sso.portal_url: is required: SmarterTrack's address, where a sign-in lands by default",
        "sso.validation_key: is required",
        "sso.decryption_key: is required",
    ]


@pytest.mark.parametrize("line, problem", [
    ('validation_key = "AutoGenerate,IsolateApps"',
     "sso.validation_key: is AutoGenerate: ASP.NET then makes a secret key of its own on each server, which "
     "ssobridge cannot share; give SmarterTrack an explicit <machineKey> (IIS Manager > Machine Key > Generate "
     "Keys) and use the same keys here"),
    ('decryption_key = "0011"', "sso.decryption_key: has 4 hex digits; AES takes 32 or 48 or 64"),
    ('validation = "MD5"', "sso.validation: must be one of SHA1, HMACSHA256, HMACSHA384, HMACSHA512, not 'MD5'"),
    ('cookie_domain = "other.org"', "sso.cookie_domain: 'other.org' does not cover portal_url's host "
                                    "'helpdesk.example.com': the browser would never send SmarterTrack the cookie"),
    ('accent_color = "blue"', "sso.accent_color: must be a colour as #rgb or #rrggbb, not 'blue'"),
    ('return_hosts = ["https://evil.example/"]', "sso.return_hosts: 'https://evil.example/' is not a host name "
                                                 "(give helpdesk.example.com, without https:// or a path)"),
    ('ticket_username = "email"', "sso.ticket_username: must be one of netbios, upn, not 'email'"),
    ("form = false", "sso.form: is false and no kerberos_keytab is set: nobody could sign in"),
    ('kerberos_keytab = "missing.keytab"', "sso.kerberos_keytab: file not found: {folder}/missing.keytab"),
    ('cookie_name = "my cookie"', "sso.cookie_name: 'my cookie' is not a valid cookie name"),
    ("ticket_minute = 30", "sso.ticket_minute: unknown key; did you mean ticket_minutes?"),
])
def test_each_wrong_sso_key_is_one_problem_naming_it(tmp_path, line, problem):
    sso = (f'[sso]\nenabled = true\nportal_url = "https://helpdesk.example.com/"\n'
           f'validation_key = "{VALIDATION_KEY}"\ndecryption_key = "{DECRYPTION_KEY}"\n')
    key = line.split(" ")[0]
    sso = "\n".join(row for row in sso.split("\n") if not row.startswith(key + " ")) + line + "\n"
    assert problems_of(tmp_path, sso) == [problem.format(folder=tmp_path)]


def test_import_machinekey_prints_the_sso_table_and_env_lines(tmp_path, capsys):
    web_config = tmp_path / "web.config"
    web_config.write_text(WEB_CONFIG, encoding="utf-8")
    assert main(["sso", "import-machinekey", str(web_config)]) == 0
    assert capsys.readouterr().out == IMPORTED.replace("PATH", str(web_config))


def test_the_imported_lines_make_a_config_that_reads_asp_nets_cookie(tmp_path, capsys, berlin_time):
    web_config = tmp_path / "web.config"
    web_config.write_text(WEB_CONFIG, encoding="utf-8")
    main(["sso", "import-machinekey", str(web_config)])
    toml, dotenv = capsys.readouterr().out.split("# Add to .env")
    config = write_config(tmp_path, toml, dotenv.split("\n", 1)[1])
    assert main(["sso", "decode-cookie", ASP_NET_COOKIE, "--config", str(config)]) == 1
    assert capsys.readouterr().out == f"""\
Machine key: HMACSHA256 / AES-192, Framework20SP2 (from {config})
Version:    1
Name:       foo@bar.com
Issued:     2018-07-09 13:57:37 UTC (2018-07-09 15:57:37 CEST local; .NET ticks 636667414570901655)
Expires:    2018-07-19 13:57:37 UTC (2018-07-19 15:57:37 CEST local; .NET ticks 636676054570901655)
Persistent: no
Path:       /
User data:  'foo@bar.com'
Refused: expired on 2018-07-19 13:57:37 UTC
"""


def sso_config(tmp_path, mode: str = "Framework45", validation: str = "HMACSHA512"):
    return write_config(tmp_path, f"""
[sso]
enabled = true
portal_url = "https://helpdesk.example.com/"
validation_key = "{VALIDATION_KEY}"
decryption_key = "{DECRYPTION_KEY}"
validation = "{validation}"
compatibility_mode = "{mode}"
""")


def test_decode_cookie_shows_an_accepted_cookie_of_ssobridge(tmp_path, capsys, berlin_time):
    config = sso_config(tmp_path)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    ticket = Ticket.new("CORP\\jdoe", 30, now=now)
    value = issue_cookie(MachineKey.from_settings(load(config).sso), ticket)
    assert main(["sso", "decode-cookie", f".ASPXAUTH={value}", "--config", str(config)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Machine key: HMACSHA512 / AES-192, Framework45 (from {config})"
    assert out[2] == "Name:       CORP\\jdoe"
    assert out[-1] == f"Accepted: valid until {ticket.expiration:%Y-%m-%d %H:%M:%S} UTC"


def test_decode_cookie_hints_at_the_mode_that_would_read_it(tmp_path, capsys):
    config = sso_config(tmp_path, mode="Framework45", validation="HMACSHA512")
    assert main(["sso", "decode-cookie", ASP_NET_COOKIE, "--config", str(config)]) == 1
    assert capsys.readouterr().out.splitlines()[1:] == [
        "Refused: signature does not match (wrong validation key, or altered)",
        'Hint: it decodes as HMACSHA256 / AES-192, Framework20SP1: set [sso] validation = "HMACSHA256" and '
        'compatibility_mode = "Framework20SP1" as SmarterTrack\'s <machineKey> has them.']


def test_decode_cookie_without_a_machine_key_says_where_to_get_one(tmp_path, capsys):
    config = write_config(tmp_path, "")
    assert main(["sso", "decode-cookie", ASP_NET_COOKIE, "--config", str(config)]) == 2
    assert capsys.readouterr().out == (
        f"{config} has no [sso] validation_key and decryption_key: `ssobridge sso import-machinekey web.config` "
        "prints them from SmarterTrack's web.config.\n")


@pytest.mark.parametrize("system_web, expected", [
    ("<httpRuntime targetFramework=\"4.5\" />",
     "has no <machineKey> under <system.web>: SmarterTrack then uses keys ASP.NET generates and keeps to itself"),
    ('<machineKey validationKey="AutoGenerate,IsolateApps" decryptionKey="AutoGenerate,IsolateApps" />',
     ": the <machineKey> cannot be shared with ssobridge:\n"
     "  - validationKey: is AutoGenerate: ASP.NET then makes a secret key of its own on each server"),
    (f'<machineKey validationKey="{VALIDATION_KEY}" decryptionKey="0123456789ABCDEF" decryption="Auto" />',
     ": the <machineKey> cannot be shared with ssobridge:\n"
     "  - decryption: must be one of AES, 3DES, not 'DES'"),
])
def test_import_machinekey_explains_a_key_that_cannot_be_shared(tmp_path, capsys, system_web, expected):
    web_config = tmp_path / "web.config"
    web_config.write_text(f"<configuration><system.web>{system_web}</system.web></configuration>", encoding="utf-8")
    assert main(["sso", "import-machinekey", str(web_config)]) == 1
    assert capsys.readouterr().out.startswith(f"{web_config}{'' if expected.startswith(':') else ' '}{expected}")


def test_import_machinekey_takes_framework45_from_the_target_framework_and_ignores_namespaces(tmp_path, capsys):
    web_config = tmp_path / "web.config"
    web_config.write_text(
        '<configuration xmlns="http://schemas.microsoft.com/.NetConfiguration/v2.0"><location path="."><system.web>'
        '<httpRuntime targetFramework="4.7.2" />'
        f'<machineKey validationKey="{VALIDATION_KEY}" decryptionKey="{DECRYPTION_KEY}" validation="SHA1" />'
        '</system.web></location></configuration>', encoding="utf-8")
    assert main(["sso", "import-machinekey", str(web_config)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (f"# From {web_config}: <machineKey> SHA1 / AES-192, Framework45 (no "
                                   'compatibilityMode, and <httpRuntime targetFramework="4.7.2">).')
    assert 'compatibility_mode = "Framework45"' in out and 'validation = "SHA1"' in out
    assert "# Note: SmarterTrack's <forms> has no domain" in out


def test_import_machinekey_says_a_missing_or_broken_file_plainly(tmp_path, capsys):
    assert main(["sso", "import-machinekey", str(tmp_path / "nope.config")]) == 1
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'nope.config'}: file not found")
    broken = tmp_path / "web.config"
    broken.write_text("<configuration>", encoding="utf-8")
    assert main(["sso", "import-machinekey", str(broken)]) == 1
    assert capsys.readouterr().out.startswith(f"{broken}: cannot read it as XML: no element found")


@pytest.mark.parametrize("written", ["Auto", "auto", "AES"])
def test_decryption_takes_web_configs_auto_as_asp_net_does(tmp_path, written):
    """<machineKey decryption="Auto"> (ASP.NET's default): AES for this 24-byte key, as ASP.NET chooses."""
    config = load(write_config(tmp_path, f'[sso]\nenabled = true\nportal_url = "https://helpdesk.example.com/"\n'
                                         f'validation_key = "{VALIDATION_KEY}"\ndecryption_key = "{DECRYPTION_KEY}"\n'
                                         f'decryption = "{written}"\n'))
    assert config.sso.decryption is Decryption.AES


def test_decryption_auto_with_an_8_byte_key_is_des_which_is_refused(tmp_path):
    problems = problems_of(tmp_path, f'[sso]\nenabled = true\nportal_url = "https://helpdesk.example.com/"\n'
                                     f'validation_key = "{VALIDATION_KEY}"\ndecryption_key = "0123456789ABCDEF"\n'
                                     'decryption = "Auto"\n')
    assert problems == ["sso.decryption: must be one of AES, 3DES, not 'DES'"]
