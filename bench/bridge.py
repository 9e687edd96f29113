"""The ssobridge under test: its configs, composed from data, and its processes.

Every config the bench runs is built here, from dicts written out as TOML: the bench [[directory]], the
group rules read from docs/examples/group-rules.toml with tomllib, and the user-info and events tables.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

from ssobridge.config import load
from ssobridge.directory import Directory, parse_login_name
from tests.support.services import Service, start_service

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = ROOT / "docs" / "examples" / "group-rules.toml"

# The tables of docs/examples/group-rules.toml that make up its group rules (the policy the bench measures).
POLICY_TABLES = ("policy", "department", "field", "ticket_rule", "chat_rule")

USER_INFO_AND_EVENTS = {
    "user_info": {"cache_seconds": 600},
    "events": {"database": "events.db", "sink": [{"name": "archive", "type": "jsonl", "path": "events.jsonl"}]},
}


def directory_table(directory, first_url: str | None = None, **settings) -> dict:
    """The [[directory]] for the bench slapd; first_url (a dead server) goes before the live one; `settings`
    replace or add keys (urls=[...] replaces the URL list)."""
    return {"name": "bench", "type": "ldap",
            "urls": ([first_url] if first_url else []) + [directory.ldaps_url],
            "base_dn": directory.base_dn, "bind_dn": directory.service_dn,
            "bind_password": directory.service_password, "ca_file": str(directory.ca_file),
            "connect_timeout": 1, "timeout": 5, **settings}


def example_policy() -> dict | None:
    """The group rules of docs/examples/group-rules.toml, as data; None when it has no [policy]."""
    try:
        example = tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    except OSError:
        return None
    if "policy" not in example:
        return None
    return {name: example[name] for name in POLICY_TABLES if name in example}


def start_bridge(workdir: Path, directory: dict, tables: dict | None = None, data_dir: Path | None = None,
                 python: str = sys.executable) -> Service:
    """`python -m ssobridge serve --config FILE`, as an operator runs it (INFO logging, the default), on
    the [[directory]] `directory` and more top-level `tables`. start_service adds [server], [smartertrack]
    and [logging]. data_dir: [server] data_dir (the lockout shield's state), shared by the bench's
    ssobridges as by a restarted service: a person's first good login writes the shield's known-password
    verifier (an scrypt, ~50 ms), once a day, and a fresh ssobridge finds those already written.
    python: the interpreter that runs it (default: the bench's own)."""
    body = toml_document({"directory": [directory], **(tables or {})})
    server = ""
    if data_dir:
        data_dir.mkdir(parents=True, exist_ok=True)
        server = f"data_dir = {_string(str(data_dir))}\n"
    return start_service(workdir, body, log_level="INFO", server=server, python=python)


def ldap_settings(service: Service, login: str) -> tuple[str, list[str]]:
    """The search filter and attribute list `service` uses for `login`, so the raw loop does the same work."""
    config = service.log_path.with_name("ssobridge.toml")  # start_service writes it beside the log
    directory = Directory(load(config).directories[0])
    return directory.user_filter(parse_login_name(login)), list(directory.search_attributes)


def lockout_shield(service: Service) -> str:
    """"on" or "off": the lockout shield of `service`, as its config (defaults included) says."""
    config = service.log_path.with_name("ssobridge.toml")
    return "on" if load(config).lockout.enabled else "off"


# --- a small TOML writer --------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_document(data: dict) -> str:
    """`data` as TOML: each dict a [table], each list of dicts an [[array of tables]], at any depth."""
    lines: list[str] = []
    _write_table(lines, [], data)
    return "\n".join(lines) + "\n"


def _write_table(lines: list[str], path: list[str], table: dict) -> None:
    # A table's own keys come before its subtables: after a header, every key belongs to that header.
    subtables = {key: value for key, value in table.items() if _is_table(value)}
    for key, value in table.items():
        if key not in subtables:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in subtables.items():
        name = ".".join(_key(part) for part in [*path, key])
        for item in (value if isinstance(value, list) else [value]):
            lines.append(f"[[{name}]]" if isinstance(value, list) else f"[{name}]")
            _write_table(lines, [*path, key], item)


def _is_table(value) -> bool:
    """A dict, or a non-empty list of dicts (an array of tables)."""
    if isinstance(value, list):
        return bool(value) and all(isinstance(item, dict) for item in value)
    return isinstance(value, dict)


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string (the same escapes)


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"no TOML value for {value!r}")
