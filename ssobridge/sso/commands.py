"""`ssobridge sso decode-cookie VALUE` and `ssobridge sso import-machinekey PATH`: the administrator's tools.

decode-cookie answers "why does SmarterTrack not accept it?": what the cookie holds, or exactly why it is
refused with the [sso] machine key, and whether another mode or algorithm would have read it.
import-machinekey reads SmarterTrack's web.config and prints the [sso] lines and the .env lines for the
keys, so nobody copies 128 hex digits by hand.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import replace
from datetime import datetime, timezone
from typing import TextIO

from ..config import Config
from ..config.machine_key import CompatibilityMode, Validation, decryption_of, machine_key_problems
from .cookie import CookieRefused, MachineKey, Ticket, describe, read_cookie
from .ticket import exact_ticks

VALIDATION_KEY_VARIABLE = "SSOBRIDGE_SSO_VALIDATION_KEY"
DECRYPTION_KEY_VARIABLE = "SSOBRIDGE_SSO_DECRYPTION_KEY"


def decode_cookie_command(config: Config, value: str, out: TextIO, now: datetime | None = None) -> int:
    """0: the cookie is accepted; 1: refused (the reason printed); 2: no machine key in [sso]."""
    sso = config.sso
    if not sso.validation_key or not sso.decryption_key:
        print(f"{config.source} has no [sso] validation_key and decryption_key: "
              f"`ssobridge sso import-machinekey web.config` prints them from SmarterTrack's web.config.", file=out)
        return 2
    key = MachineKey.from_settings(sso)
    value = value.strip()
    if value.startswith(sso.cookie_name + "="):  # pasted as name=value from the browser's tools
        value = value[len(sso.cookie_name) + 1:]
    print(f"Machine key: {describe(key)} (from {config.source})", file=out)
    try:
        ticket = read_cookie(key, value, now)
    except CookieRefused as refused:
        if refused.ticket is not None:
            _print_ticket(refused.ticket, out)
        print(f"Refused: {refused}", file=out)
        for other in _other_keys(key) if refused.ticket is None else ():
            try:
                read_cookie(other, value, datetime.min.replace(tzinfo=timezone.utc))
            except CookieRefused:
                continue
            print(f"Hint: it decodes as {describe(other)}: set [sso] validation = \"{other.validation}\" and "
                  f"compatibility_mode = \"{other.compatibility_mode}\" as SmarterTrack's <machineKey> has them.",
                  file=out)
            break
        return 1
    _print_ticket(ticket, out)
    print(f"Accepted: valid until {_utc(ticket.expiration)}", file=out)
    return 0


def _print_ticket(ticket: Ticket, out: TextIO) -> None:
    issued, expires = exact_ticks(ticket)
    rows = [("Version", str(ticket.version)), ("Name", ticket.name),
            ("Issued", f"{_utc(ticket.issue_date)} ({_local(ticket.issue_date)}; .NET ticks {issued})"),
            ("Expires", f"{_utc(ticket.expiration)} ({_local(ticket.expiration)}; .NET ticks {expires})"),
            ("Persistent", "yes" if ticket.is_persistent else "no"), ("Path", ticket.cookie_path),
            ("User data", repr(ticket.user_data))]
    for label, text in rows:
        print(f"{label + ':':<12}{text}", file=out)


def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _local(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z local")


def _other_keys(key: MachineKey) -> list[MachineKey]:
    """The same keys under the other modes and validation algorithms (a usual mismatch with web.config)."""
    others = []
    for mode in CompatibilityMode:
        for validation in Validation:
            if (mode, validation) == (key.compatibility_mode, key.validation):
                continue
            try:
                others.append(replace(key, compatibility_mode=mode, validation=validation))
            except ValueError:
                continue  # a key length that algorithm or mode does not take
    return others


def import_machinekey_command(path: str, out: TextIO) -> int:
    """0: the lines printed; 1: the web.config cannot give a machine key ssobridge can share (said why)."""
    try:
        root = ElementTree.parse(path).getroot()
    except FileNotFoundError:
        print(f"{path}: file not found (SmarterTrack's web.config is in its MRS folder, e.g. "
              f"C:\\Program Files (x86)\\SmarterTools\\SmarterTrack\\MRS\\web.config)", file=out)
        return 1
    except (OSError, ElementTree.ParseError) as e:
        print(f"{path}: cannot read it as XML: {e}", file=out)
        return 1
    machine_key = _first(root, "system.web", "machineKey")
    if machine_key is None:
        print(f"{path} has no <machineKey> under <system.web>: SmarterTrack then uses keys ASP.NET generates "
              f"and keeps to itself, which no other site can share. Generate keys in IIS Manager (the site > "
              f"Machine Key > Generate Keys > Apply), which writes a <machineKey> into this web.config, and "
              f"run this command again.", file=out)
        return 1
    found = _machine_key_values(root, machine_key)
    problems = machine_key_problems(found["validation_key"], found["decryption_key"], found["validation"],
                                    found["decryption"], found["compatibility_mode"])
    if problems:
        print(f"{path}: the <machineKey> cannot be shared with ssobridge:", file=out)
        for key, text in problems:
            print(f"  - {_ATTRIBUTES[key]}: {text}", file=out)
        return 1
    forms = _first(root, "authentication", "forms")
    forms = forms.attrib if forms is not None else {}
    key = MachineKey.from_hex(found["validation_key"], found["decryption_key"], validation=found["validation"],
                              decryption=found["decryption"], compatibility_mode=found["compatibility_mode"])
    _print_import(path, key, found["mode_source"], forms, out)
    return 0


_ATTRIBUTES = {"validation_key": "validationKey", "decryption_key": "decryptionKey", "validation": "validation",
               "decryption": "decryption", "compatibility_mode": "compatibilityMode"}


def _machine_key_values(root: ElementTree.Element, element: ElementTree.Element) -> dict[str, str]:
    attributes = element.attrib
    values = {"validation_key": attributes.get("validationKey", "AutoGenerate,IsolateApps"),
              "decryption_key": attributes.get("decryptionKey", "AutoGenerate,IsolateApps"),
              "validation": attributes.get("validation", Validation.HMACSHA256),
              "decryption": attributes.get("decryption", "Auto")}
    values["decryption"] = decryption_of(values["decryption"], values["decryption_key"])
    if "compatibilityMode" in attributes:
        values["compatibility_mode"] = attributes["compatibilityMode"]
        values["mode_source"] = "its compatibilityMode attribute"
    else:
        runtime = _first(root, "system.web", "httpRuntime")
        target = runtime.attrib.get("targetFramework", "") if runtime is not None else ""
        if _version(target) >= (4, 5):
            values["compatibility_mode"] = CompatibilityMode.FRAMEWORK45
            values["mode_source"] = f"no compatibilityMode, and <httpRuntime targetFramework=\"{target}\">"
        else:
            values["compatibility_mode"] = CompatibilityMode.FRAMEWORK20SP1
            values["mode_source"] = "no compatibilityMode attribute: ASP.NET's default"
    return values


def _print_import(path: str, key: MachineKey, mode_source: str, forms: dict[str, str], out: TextIO) -> None:
    domain = forms.get("domain", "")
    lines = [
        f"# From {path}: <machineKey> {describe(key)} ({mode_source}).",
        "# Add to ssobridge.toml:",
        "[sso]",
        "enabled = true",
        'portal_url = "https://helpdesk.example.com/"   # SmarterTrack\'s address: change this',
        f'cookie_name = "{forms.get("name", ".ASPXAUTH")}"',
        f'cookie_domain = "{domain}"',
        f'cookie_path = "{forms.get("path", "/")}"',
        f'ticket_minutes = {forms.get("timeout", "30")}',
        f'validation_key = "${{{VALIDATION_KEY_VARIABLE}}}"',
        f'decryption_key = "${{{DECRYPTION_KEY_VARIABLE}}}"',
        f'validation = "{key.validation}"',
        f'decryption = "{key.decryption}"',
        f'compatibility_mode = "{key.compatibility_mode}"',
        "",
        "# Add to .env beside ssobridge.toml (readable by ssobridge only; never commit it):",
        f"{VALIDATION_KEY_VARIABLE}={key.validation_key.hex().upper()}",
        f"{DECRYPTION_KEY_VARIABLE}={key.decryption_key.hex().upper()}",
    ]
    if not domain:
        lines += ["", "# Note: SmarterTrack's <forms> has no domain, so browsers return its cookie only to "
                      "SmarterTrack's own host name. Set <forms domain=\"example.com\"> there (the base domain "
                      "of SmarterTrack and ssobridge) and the same cookie_domain here."]
    if forms.get("protection", "All") != "All":
        lines += ["", f"# Note: <forms protection=\"{forms['protection']}\">: ssobridge writes cookies that are "
                      "encrypted and signed (protection=\"All\", ASP.NET's default) and SmarterTrack must "
                      "expect the same."]
    print("\n".join(lines), file=out)


def _first(root: ElementTree.Element, parent: str, name: str) -> ElementTree.Element | None:
    """The first <name> directly under a <parent>, anywhere (also inside <location>), namespaces ignored."""
    for element in root.iter():
        if _local_name(element.tag) == parent:
            for child in element:
                if _local_name(child.tag) == name:
                    return child
    return None


def _local_name(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return ()

