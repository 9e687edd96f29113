"""Parsing [sso] into SsoSettings: the machine key checked as ASP.NET would, the keys the sign-in needs.

Every key is read (and type-checked) whether or not single sign-on is enabled; the keys it cannot work
without are required only when enabled = true.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from .keytab import keytab_principals
from .machine_key import CompatibilityMode, Decryption, Validation, decryption_of, machine_key_problems
from .reader import Table
from .settings import SsoSettings, TicketUsername

_COLOR = re.compile(r"#(?:[0-9A-Fa-f]{3}){1,2}")
_HOST = re.compile(r"[A-Za-z0-9.-]+(?::\d+)?|\[[0-9A-Fa-f:.]+\](?::\d+)?")


def sso_table(t: Table, folder: Path) -> SsoSettings:
    enabled = t.get("enabled", bool)
    portal_url = t.text_or_default("portal_url")
    if portal_url and not _is_http_url(portal_url):
        t.problem("portal_url", f"must be an http:// or https:// URL, not {portal_url!r}")
    elif enabled and not portal_url:
        t.problem("portal_url", "is required: SmarterTrack's address, where a sign-in lands by default")
    return_hosts = tuple(host.lower() for host in t.texts("return_hosts"))
    for host in return_hosts:
        if not _HOST.fullmatch(host):
            t.problem("return_hosts", f"{host!r} is not a host name (give helpdesk.example.com, without "
                                      "https:// or a path)")
    cookie_domain = t.text_or_default("cookie_domain").lstrip(".").lower()
    if cookie_domain and portal_url and _is_http_url(portal_url):
        portal_host = (urlsplit(portal_url).hostname or "").lower()
        if portal_host != cookie_domain and not portal_host.endswith("." + cookie_domain):
            t.problem("cookie_domain", f"{cookie_domain!r} does not cover portal_url's host {portal_host!r}: "
                                       "the browser would never send SmarterTrack the cookie")
    cookie_path = t.text_or_default("cookie_path")
    if not cookie_path.startswith("/"):
        t.problem("cookie_path", f"must start with /, not {cookie_path!r}")
    settings = SsoSettings(
        enabled=enabled, portal_url=portal_url, return_hosts=return_hosts,
        cookie_name=_cookie_name(t), cookie_domain=cookie_domain, cookie_path=cookie_path,
        ticket_minutes=t.positive("ticket_minutes", int),
        **_machine_key(t, enabled),
        ticket_username=t.member("ticket_username", TicketUsername, t.text_or_default("ticket_username")),
        **_kerberos(t, folder),
        form=t.get("form", bool),
        page_title=t.text_or_default("page_title"), logo_url=t.text("logo_url") or None,
        accent_color=_accent_color(t))
    if enabled and not settings.form and not settings.kerberos_keytab:
        t.problem("form", "is false and no kerberos_keytab is set: nobody could sign in")
    t.reject_unknown()
    return settings


def _machine_key(t: Table, enabled: bool) -> dict[str, str]:
    """validation_key, decryption_key, validation, decryption, compatibility_mode, checked together."""
    values = {"validation_key": t.text("validation_key") or "", "decryption_key": t.text("decryption_key") or ""}
    for name in ("validation_key", "decryption_key"):
        if enabled and not values[name].strip():
            t.problem(name, "is required")
    for name in ("validation", "decryption", "compatibility_mode"):
        values[name] = t.text_or_default(name)
    values["decryption"] = decryption_of(values["decryption"], values["decryption_key"])  # "Auto", as web.config
    if values["validation_key"] or values["decryption_key"] or enabled:
        for key, text in machine_key_problems(**values):
            if key.endswith("_key") and not values[key]:
                continue  # a missing key: "is required" already says so
            t.problem(key, text)
    # As members; a name that is none of them was a problem above (or [sso] is unused): the default then.
    for name, kind in (("validation", Validation), ("decryption", Decryption),
                       ("compatibility_mode", CompatibilityMode)):
        values[name] = kind(values[name]) if values[name] in tuple(kind) else t.default(name)
    return values


def _kerberos(t: Table, folder: Path) -> dict[str, str | None]:
    keytab = t.text("kerberos_keytab") or None
    principal = t.text("kerberos_principal") or None
    if keytab:
        keytab = str((folder / keytab).absolute())  # shown where it was looked for, whatever the cwd
        if not Path(keytab).is_file():
            t.problem("kerberos_keytab", f"file not found: {keytab}")
        else:
            _check_keytab(t, keytab, principal)
    if principal and not keytab:
        t.problem("kerberos_principal", "is set but kerberos_keytab is not: the principal's key is in the keytab")
    return {"kerberos_keytab": keytab, "kerberos_principal": principal}


def _check_keytab(t: Table, keytab: str, principal: str | None) -> None:
    """The file is read now: a wrong one is a config problem at start, not a form instead of every Kerberos sign-in."""
    try:
        principals = keytab_principals(keytab)
    except (OSError, ValueError) as e:
        t.problem("kerberos_keytab", f"{keytab}: {e.strerror if isinstance(e, OSError) else e}")
        return
    if not principals:
        t.problem("kerberos_keytab", f"{keytab} holds no key")
    elif principal and principal.lower() not in {p.lower() for p in principals}:
        t.problem("kerberos_keytab", f"{keytab} holds no key for {principal}, only for {', '.join(sorted(principals))}"
                                     ": export the keytab again after the SPN and userPrincipalName are set")


def _cookie_name(t: Table) -> str:
    name = t.text_or_default("cookie_name")
    # RFC 6265 token characters, as ASP.NET's <forms name> must be to reach the browser unchanged.
    if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
        t.problem("cookie_name", f"{name!r} is not a valid cookie name")
    return name


def _accent_color(t: Table) -> str:
    value = t.text_or_default("accent_color")
    if not _COLOR.fullmatch(value):
        t.problem("accent_color", f"must be a colour as #rgb or #rrggbb, not {value!r}")
        return t.default("accent_color")
    return value


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
