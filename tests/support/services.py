"""ssobridge as the tests run it: started as an operator would (`python -m ssobridge serve --config FILE`),
configured for the test directories, and called with a plain Python SOAP client (for the tests that look at
raw HTTP; the .NET client is tests/support/dotnet_client.py). tests/conftest.py imports the fixtures below.

Fixtures (module-scoped services; each starts on first use in a test module and stops after it):

  ad_service    Service: ssobridge on samba_ad (ad_config(samba_ad) + ATTRIBUTES).
  ldap_service  Service: ssobridge on openldap (openldap_config(openldap) + ATTRIBUTES).
  site          (directory fixture, running ssobridge), parametrized: ("ad": samba_ad, ad_service)
                and ("openldap": openldap, ldap_service). directory.kind tells them apart.

Running the service:
  start_service(workdir, body, password=WEB_SERVICE_PASSWORD, tls=None, smartertrack="", log_level="DEBUG",
                server="", python=sys.executable)
      -> Service(url, process, log_path) with log() and stop(); body is the config after the generated
      [server], [smartertrack] and [logging] sections. A test that starts one stops it (try/finally).
  WEB_SERVICE_PASSWORD (the [smartertrack] web_service_password), free_port(), toml_string(value).

Configs (TOML text for a [[directory]] section):
  directory_toml(name, kind, urls, base_dn, bind_dn, bind_password, ca_file=None, **extra)
  ad_config(samba_ad, **overrides), openldap_config(openldap, **overrides): the fixture's directory with
      ca_file, connect_timeout=3, timeout=5 (and AD's netbios_domain and upn_suffixes); an override replaces
      a setting or adds one, urls=[...] replaces the LDAPS URL.
  ATTRIBUTES: an [attributes] section mapping cf_Department and "cf_Job Title" (as ad_service and
      ldap_service use).

SOAP, raw: envelope(operation, variables, soap12=False) -> bytes; post(url, body, soap12, operation,
headers) -> (status, bytes); call(url, operation, variables, soap12=False) -> the result as a dict
(Success a bool, OutputVariables a list; asserts HTTP 200); fault_text(bytes); NS, SOAP11, SOAP12.

Logging in, and what the answer must be:
  AUTH                                   "authPW=" + WEB_SERVICE_PASSWORD, the first input variable
  authenticate(service, username, password, soap12=False) -> call(...) of Authenticate
  sign_in_cookie(service, username)      -> call(...) of GetSignInCookieInfo
  ok(*outputs)                           the Authentication=OK result with these OutputVariables after it
  fail(message)                          the Authentication=FAIL result with this Message
  identity(directory, key)               the OutputVariables after Authentication=OK that the mapping
                                         (ATTRIBUTES) promises for directory.users[key]
  WRONG, MESSAGES[reason]                the Messages: wrong username or password; disabled, locked,
                                         account_expired, password_expired, must_change, unavailable
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from lxml import etree

from ssobridge.config import DEFAULT_USER_FILTERS, DirectorySettings

NS = "http://tempuri.org/"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WEB_SERVICE_PASSWORD = "st-secret-Passw0rd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def directory_toml(name: str, kind: str, urls: list[str], base_dn: str, bind_dn: str, bind_password: str,
                   ca_file: str | None = None, **extra) -> str:
    lines = ["[[directory]]", f"name = {toml_string(name)}", f"type = {toml_string(kind)}",
             "urls = [" + ", ".join(toml_string(u) for u in urls) + "]", f"base_dn = {toml_string(base_dn)}",
             f"bind_dn = {toml_string(bind_dn)}", f"bind_password = {toml_string(bind_password)}"]
    if ca_file:
        lines.append(f"ca_file = {toml_string(ca_file)}")
    for key, value in extra.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, (int, float)):
            lines.append(f"{key} = {value}")
        elif isinstance(value, list):
            lines.append(f"{key} = [" + ", ".join(toml_string(v) for v in value) + "]")
        else:
            lines.append(f"{key} = {toml_string(value)}")
    return "\n".join(lines) + "\n"


@dataclass
class Service:
    """A running `ssobridge serve`; its log is kept in a file so tests can read what it wrote."""

    url: str
    process: subprocess.Popen
    log_path: Path
    python: str = sys.executable  # the interpreter of the virtualenv it runs in

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def command(self, *arguments: str) -> subprocess.CompletedProcess:
        """`ssobridge ARGUMENTS --config` this service's config (e.g. "unlock", login), output captured."""
        config = self.log_path.parent / "ssobridge.toml"
        return subprocess.run([self.python, "-m", "ssobridge", *arguments, "--config", str(config)],
                              capture_output=True, text=True, timeout=60)

    def unlock(self, login: str) -> None:
        """Lift the shield's soft lock (tests that lock somebody restore it with this and the directory's)."""
        self.command("unlock", login)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_service(workdir: Path, body: str, password: str = WEB_SERVICE_PASSWORD, tls=None,
                  smartertrack: str = "", log_level: str = "DEBUG", server: str = "",
                  python: str = sys.executable) -> Service:
    """Write a config (a [server] and [smartertrack] section are added) and start the service on it.

    tls: a key pair (cert_file, key_file) to serve HTTPS with; smartertrack: more lines for [smartertrack];
    server: more lines for [server] (e.g. "request_timeout = 3\n"); python: the interpreter of another
    virtualenv to run it in (tests/support/installs.py).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    scheme = "https" if tls else "http"
    tls_lines = f'tls_cert = {toml_string(str(tls.cert_file))}\ntls_key = {toml_string(str(tls.key_file))}\n' \
        if tls else ""
    config = workdir / "ssobridge.toml"
    config.write_text(f'[server]\nlisten = "127.0.0.1:{port}"\n{server}{tls_lines}'
                      f'public_url = "{scheme}://sso.example.test:{port}/ExternalProvider.asmx"\n'
                      f'[smartertrack]\nweb_service_password = {toml_string(password)}\n{smartertrack}'
                      f'[logging]\nlevel = "{log_level}"\n{body}', encoding="utf-8")
    return serve(config, port, scheme, python)


def serve(config: Path, port: int, scheme: str = "http", python: str = sys.executable) -> Service:
    """`ssobridge serve --config CONFIG` (which listens on 127.0.0.1:port), its log beside the config, once it
    listens; RuntimeError with the log when it exits or does not listen within 30 s."""
    workdir = config.parent
    log_path = workdir / "ssobridge.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([python, "-m", "ssobridge", "serve", "--config", str(config)],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=workdir)
    service = Service(f"{scheme}://127.0.0.1:{port}/ExternalProvider.asmx", process, log_path, python)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ssobridge exited with {process.returncode}:\n{service.log()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return service
        except OSError:
            time.sleep(0.05)
    service.stop()
    raise RuntimeError(f"ssobridge did not listen within 30 s:\n{service.log()}")


def envelope(operation: str, variables: list[str | None], soap12: bool = False) -> bytes:
    items = "".join('<string xsi:nil="true" />' if v is None else f"<string>{escape(v)}</string>" for v in variables)
    return (f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP12 if soap12 else SOAP11}" '
            f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
            f'<soap:Body><{operation} xmlns="{NS}"><inputs><InputVariables>{items}</InputVariables></inputs>'
            f'</{operation}></soap:Body></soap:Envelope>').encode("utf-8")


def post(url: str, body: bytes, soap12: bool = False, operation: str = "Authenticate",
         headers: dict | None = None) -> tuple[int, bytes]:
    if soap12:
        content_type = f'application/soap+xml; charset=utf-8; action="{NS}{operation}"'
        default_headers = {"Content-Type": content_type}
    else:
        default_headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{NS}{operation}"'}
    request = urllib.request.Request(url, data=body, headers={**default_headers, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def call(url: str, operation: str, variables: list[str | None], soap12: bool = False) -> dict:
    """One SOAP call; the result element as a dict (Success as bool, OutputVariables as a list)."""
    status, data = post(url, envelope(operation, variables, soap12), soap12, operation)
    assert status == 200, (status, data)
    result = etree.fromstring(data).find(f".//{{{NS}}}{operation}Result")
    parsed: dict = {}
    for child in result:
        name = etree.QName(child).localname
        if name == "Success":
            parsed[name] = child.text == "true"
        elif name == "OutputVariables":
            parsed[name] = [item.text for item in child]
        else:
            parsed[name] = child.text
    return parsed


def fault_text(data: bytes) -> str:
    root = etree.fromstring(data)
    found = root.find(".//faultstring")
    if found is None:
        found = root.find(f".//{{{SOAP12}}}Text")
    return found.text


# --- ssobridge on the test directories: configs, service fixtures, call helpers ----------------------

AUTH = f"authPW={WEB_SERVICE_PASSWORD}"
WRONG = "Wrong username or password."
MESSAGES = {
    "disabled": "Your account is disabled. Contact your IT helpdesk.",
    "locked": "Your account is locked. Try again later or contact your IT helpdesk.",
    "account_expired": "Your account has expired. Contact your IT helpdesk.",
    "password_expired": "Your password has expired. Change it, then sign in again.",
    "must_change": "You must change your password before signing in.",
    "unavailable": "The directory is unavailable. Please try again in a few minutes.",
}
ATTRIBUTES = '[attributes]\n"cf_Department" = ["department", "departmentNumber"]\n"cf_Job Title" = ["title"]\n'


def ad_config(ad, **overrides) -> str:
    settings = dict(ca_file=str(ad.ca_file), netbios_domain=ad.netbios_domain, upn_suffixes=[ad.upn_suffix],
                    connect_timeout=3, timeout=5)
    settings.update(overrides)
    urls = settings.pop("urls", [ad.ldaps_url])
    return directory_toml("example-ad", "active_directory", urls, ad.base_dn, ad.service_dn,
                          settings.pop("bind_password", ad.service_password), **settings)


def openldap_config(ldap, **overrides) -> str:
    settings = dict(ca_file=str(ldap.ca_file), connect_timeout=3, timeout=5)
    settings.update(overrides)
    urls = settings.pop("urls", [ldap.ldaps_url])
    return directory_toml("example-openldap", "ldap", urls, ldap.base_dn, ldap.service_dn,
                          settings.pop("bind_password", ldap.service_password), **settings)


@pytest.fixture(scope="module")
def ad_service(samba_ad, tmp_path_factory):
    service = start_service(tmp_path_factory.mktemp("ad"), ad_config(samba_ad) + ATTRIBUTES)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def ldap_service(openldap, tmp_path_factory):
    service = start_service(tmp_path_factory.mktemp("openldap"), openldap_config(openldap) + ATTRIBUTES)
    yield service
    service.stop()


@pytest.fixture(params=["ad", "openldap"])
def site(request):
    """(directory fixture, running ssobridge) for each kind of directory."""
    if request.param == "ad":
        return request.getfixturevalue("samba_ad"), request.getfixturevalue("ad_service")
    return request.getfixturevalue("openldap"), request.getfixturevalue("ldap_service")


def authenticate(service, username: str, password: str, soap12: bool = False) -> dict:
    return call(service.url, "Authenticate", [AUTH, f"loginUsername={username}", f"loginPassword={password}"],
                soap12=soap12)


def sign_in_cookie(service, username: str) -> dict:
    return call(service.url, "GetSignInCookieInfo", [AUTH, f"loginUsername={username}"])


def ok(*outputs: str) -> dict:
    return {"Success": True, "Message": "Login Successful", "OutputVariables": ["Authentication=OK", *outputs]}


def fail(message: str) -> dict:
    return {"Success": True, "Message": message, "OutputVariables": ["Authentication=FAIL"]}


def identity(directory, key: str) -> list[str]:
    """The OutputVariables after Authentication=OK that the mapping promises for this person."""
    user = directory.users[key]
    outputs = []
    email = user.mail or user.upn
    if email:
        outputs.append(f"EmailAddress={email}")
    outputs.append(f"DisplayName={user.display_name or user.cn}")
    if user.attributes.get("department"):
        outputs.append(f"cf_Department={user.attributes['department']}")
    if user.attributes.get("title"):
        outputs.append(f"cf_Job Title={user.attributes['title']}")
    return outputs


# --- shared by several test modules ---------------------------------------------------------------------

TWO_WORKERS = "workers = 2\n"
JSONL_ONLY = ('[events]\ndatabase = "events.db"\n'
              '[[events.sink]]\nname = "archive"\ntype = "jsonl"\npath = "events.jsonl"\n')
LOCKOUT = "Too many failed sign-ins. Try again later or contact your IT helpdesk."
NO_SHIELD = "[lockout]\nenabled = false\n"  # many wrong passwords in a row, on purpose


def settings_for(directory, **overrides) -> DirectorySettings:
    kind = "active_directory" if directory.kind == "ad" else "ldap"
    values = dict(name=directory.kind, type=kind, urls=(directory.ldaps_url,), base_dn=directory.base_dn,
                  bind_dn=directory.service_dn, bind_password=directory.service_password,
                  ca_file=str(directory.ca_file), connect_timeout=3, timeout=5,
                  netbios_domain=directory.netbios_domain,
                  upn_suffixes=(directory.upn_suffix,) if directory.upn_suffix else (),
                  user_filter=DEFAULT_USER_FILTERS[kind], membership_cache_seconds=60, group_name_cache_seconds=600)
    values.update(overrides)
    return DirectorySettings(**values)


def ssobridge(*arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ssobridge", *arguments], input=stdin, capture_output=True,
                          encoding="utf-8", timeout=60)


def pids_of(log: str, marker: str) -> list[int]:
    """The process id at the start of every log line containing `marker`, in order."""
    return [int(m.group(1)) for m in re.finditer(r"^\S+ \S+ (\d+) .*" + re.escape(marker), log, re.MULTILINE)]


def get(service, path: str, headers: dict | None = None) -> tuple[int, dict, str]:
    url = service.url.replace("/ExternalProvider.asmx", path)
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode("utf-8")


def scrape(service, headers: dict | None = None) -> dict[tuple[str, frozenset], float]:
    """Every sample of one GET /metrics: (name, labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families
    status, response_headers, text = get(service, "/metrics", headers)
    assert status == 200, (status, text)
    assert response_headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, frozenset(labels.items())))
