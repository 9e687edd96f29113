"""The sign-in site in tests: an [sso] section with fresh random keys, and a small HTTP client that does not
follow redirects (tests look at the 302 and its Set-Cookie themselves).

  sso_toml(portal_url, return_hosts=(), **extra) -> (TOML text of [sso], MachineKey of its keys)
  Browser: get(path, headers) / post(path, fields, headers) -> Reply(status, headers, text), with cookies kept
      like a browser would (for the CSRF cookie); sign_in(username, password, return_url) does GET + POST.
  Reply.cookie(name) -> the Set-Cookie line for `name` (or None); form_value(html, name) -> a hidden field's value.
"""

from __future__ import annotations

import html
import http.client
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from email.utils import format_datetime
from urllib.parse import quote, urlencode, urlsplit

from ssobridge.sso.cookie import MachineKey, Ticket, read_cookie

from .services import WEB_SERVICE_PASSWORD, toml_string


def sso_toml(portal_url: str, return_hosts: tuple[str, ...] = (), **extra) -> tuple[str, MachineKey]:
    validation, decryption = secrets.token_hex(64), secrets.token_hex(32)
    lines = ["[sso]", "enabled = true", f"portal_url = {toml_string(portal_url)}",
             "return_hosts = [" + ", ".join(toml_string(h) for h in return_hosts) + "]",
             f'validation_key = "{validation}"', f'decryption_key = "{decryption}"', 'validation = "HMACSHA512"']
    for key, value in extra.items():
        text = str(value).lower() if isinstance(value, bool) else value if isinstance(value, int) else toml_string(value)
        lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n", MachineKey.from_hex(validation, decryption, validation="HMACSHA512")


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    text: str

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def cookie(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == "set-cookie" and v.startswith(name + "=")), None)


def form_value(page: str, name: str) -> str:
    found = re.search(rf'name="{re.escape(name)}"[^>]*? value="([^"]*)"', page)
    assert found, f"no field {name} in the page"
    return html.unescape(found.group(1))


class Browser:
    def __init__(self, service_url: str):
        parts = urlsplit(service_url)
        self.host, self.port = parts.hostname, parts.port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Reply:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        sent = dict(headers or {})
        if self.cookies:
            sent.setdefault("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            reply = Reply(response.status, response.getheaders(), response.read().decode("utf-8"))
        finally:
            connection.close()
        for name, value in reply.headers:
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.partition(";")[0]
        return reply

    def get(self, path: str, headers: dict | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, fields: dict[str, str], headers: dict | None = None) -> Reply:
        return self.request("POST", path, urlencode(fields).encode("utf-8"),
                            {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})

    def sign_in(self, username: str, password: str, return_url: str | None = None) -> tuple[Reply, Reply]:
        """The sign-in page, then its form posted: (page, answer)."""
        page = self.get("/sso/login" + (f"?ReturnUrl={quote(return_url, safe='')}" if return_url else ""))
        answer = self.post("/sso/login", {"csrf": form_value(page.text, "csrf"),
                                          "ReturnUrl": form_value(page.text, "ReturnUrl"),
                                          "username": username, "password": password})
        return page, answer


def signed_in(cookie: str, key: MachineKey, name: str, minutes: int, service, dotnet, outputs: list[str]) -> Ticket:
    """The .ASPXAUTH Set-Cookie line of a sign-in: its ticket names `name` for `minutes`, the cookie carries the
    configured attributes, and GetSignInCookieInfo through the .NET client signs `name` in with `outputs`."""
    value = re.match(r"\.ASPXAUTH=([0-9A-F]+); ", cookie).group(1)
    ticket = read_cookie(key, value)
    assert ticket.name == name
    assert ticket.expiration - ticket.issue_date == timedelta(minutes=minutes)
    expires = format_datetime(ticket.expiration, usegmt=True)
    assert cookie == f".ASPXAUTH={value}; Expires={expires}; Domain=example.test; Path=/; HttpOnly; SameSite=Lax"
    result = dotnet.call(service.url, "GetSignInCookieInfo",
                         [f"authPW={WEB_SERVICE_PASSWORD}", f"loginUsername={ticket.name}"])
    assert result == {"Success": True, "Message": "Login Successful",
                      "OutputVariables": ["Authentication=OK", *outputs]}
    return ticket
