"""Step 4 of `ssobridge init`: ssobridge.toml (commented like config.example.toml, no secret in it), .env
(mode 0600: the service account's password and a generated Web Service Password) and the trusted CA
certificate, all written into a staging folder beside the config and moved into place only at the end, so
that a failed step leaves nothing behind."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

BIND_PASSWORD_VARIABLE = "SSOBRIDGE_BIND_PASSWORD"
WEB_SERVICE_PASSWORD_VARIABLE = "SSOBRIDGE_WEB_SERVICE_PASSWORD"


@dataclass(frozen=True)
class Answers:
    """Everything the written config says, discovered or confirmed."""

    name: str  # the [[directory]] name
    active_directory: bool
    domain: str
    nameservers: tuple[str, ...]
    start_tls: bool
    base_dn: str
    bind_dn: str
    ca_file: str  # file name beside the config
    ca_pinned: bool  # ca_file holds the DC's own certificate
    netbios: str | None
    upn_suffixes: tuple[str, ...]
    listen: str  # host:port
    public_url: str


def _toml(value: object) -> str:
    """A TOML basic string or array of them (JSON's escapes are TOML's for these)."""
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def render_config(a: Answers) -> str:
    pinned = ("# It is the DC's own certificate (the DC presented no CA): when the DC's certificate is renewed,\n"
              "# replace this file (`ssobridge check` warns before it expires).\n") if a.ca_pinned else ""
    nameservers = f"nameservers = {_toml(a.nameservers)}\n" if a.nameservers else \
        "# nameservers = [\"10.0.0.1\"]  # asked instead of the system's resolver\n"
    netbios = f"netbios_domain = {_toml(a.netbios)}\n" if a.netbios else "# netbios_domain = \"CORP\"\n"
    return f"""# ssobridge configuration written by `ssobridge init` for {a.domain}.
# docs/configuration.md explains each key; config.example.toml lists every one. The secrets are in .env beside
# this file ("${{NAME}}" below is replaced from it, or from the environment, which wins).

[server]
# Address and port to listen on. Keep 127.0.0.1 unless SmarterTrack runs on another machine (then serve
# HTTPS: tls_cert and tls_key, see config.example.toml).
listen = {_toml(a.listen)}
# The Web Service URL typed in SmarterTrack; it is the address in the WSDL (?wsdl).
public_url = {_toml(a.public_url)}

[smartertrack]
# The "Web Service Password" typed in SmarterTrack's External Providers settings.
web_service_password = "${{{WEB_SERVICE_PASSWORD_VARIABLE}}}"

[[directory]]
# A name for logs and messages.
name = {_toml(a.name)}
type = {_toml("active_directory" if a.active_directory else "ldap")}
# The DNS domain whose domain controllers are found by SRV records, at start and again every
# discovery_refresh_seconds: a DC added later is used, one removed is dropped, each DC's certificate is
# checked against its host name. (Or list the servers instead: urls = ["ldaps://dc1.{a.domain}"].)
domain = {_toml(a.domain)}
{nameservers}# discovery_refresh_seconds = 300
# Upgrade ldap:// to TLS with StartTLS (the DCs' port 636 was closed); false: LDAPS on port 636.
start_tls = {str(a.start_tls).lower()}
# Where users are searched (whole subtree).
base_dn = {_toml(a.base_dn)}
# The service account that searches for users; its password is in .env.
bind_dn = {_toml(a.bind_dn)}
bind_password = "${{{BIND_PASSWORD_VARIABLE}}}"
# The certificate trusted for the DCs' TLS, confirmed when init ran (relative to this file).
{pinned}ca_file = {_toml(a.ca_file)}
# DOMAIN\\user is accepted for this NetBIOS domain; user@suffix for these UPN suffixes (the first builds {{upn}}).
{netbios}upn_suffixes = {_toml(a.upn_suffixes)}
# Plain usernames (no DOMAIN\\ and no @suffix) go to this directory.
default = true

# SmarterTrack output variables, each from the first of its candidates that has a value.
[attributes]
EmailAddress = ["mail", "userPrincipalName"]
DisplayName = ["displayName", "{{givenName}} {{sn}}", "cn"]

[lockout]
# The lockout shield (docs/security.md): "auto" reads the domain's own lockout policy.
threshold = "auto"
window_seconds = "auto"
"""


def env_value(value: str) -> str:
    """A .env value read back exactly (docs/configuration.md, "Quoting in .env"): single quotes, in which
    nothing is special, unless it holds one; then double quotes with \\ and \" escaped."""
    if "\n" in value or "\r" in value:
        raise ValueError("a line break cannot be written to .env")
    if "'" not in value:
        return f"'{value}'"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_env(bind_password: str, web_service_password: str) -> str:
    return ("# Secrets for ssobridge.toml, written by `ssobridge init`. Keep this file readable by ssobridge only.\n"
            f"{BIND_PASSWORD_VARIABLE}={env_value(bind_password)}\n"
            f"{WEB_SERVICE_PASSWORD_VARIABLE}={env_value(web_service_password)}\n")


def new_web_service_password() -> str:
    return secrets.token_urlsafe(24)  # 32 characters of A-Z a-z 0-9 - _: no quoting trouble in SmarterTrack


class Staging:
    """The files being written, in a folder beside the config; commit() moves them into place, discard()
    removes them."""

    def __init__(self, config: Path):
        self.config = config
        self.folder = Path(tempfile.mkdtemp(prefix=".ssobridge-init-", dir=config.parent))
        self.names: list[str] = []

    def path(self, name: str) -> Path:
        return self.folder / name

    def write(self, name: str, data: bytes, mode: int = 0o644) -> Path:
        target = self.folder / name
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        self.names.append(name)
        return target

    def commit(self) -> None:
        """The config last: whoever sees it sees the files it names."""
        for name in sorted(self.names, key=lambda n: n == self.config.name):
            os.replace(self.folder / name, self.config.parent / name)
        self.discard()

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
