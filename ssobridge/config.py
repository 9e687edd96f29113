"""The configuration: one TOML file, read and validated once at start into immutable objects.

Every problem is collected (key and what is wrong) and reported together, so an operator fixes a
broken file in one pass. Nothing else in ssobridge reads the TOML file or the environment.

"${NAME}" inside a string value is replaced from the environment, else from a .env file beside the
config file; the environment wins. An undefined NAME is a config error. Any other '$' is literal.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from .mapping import Candidate, OutputMapping
from .operations import PASSWORD_KEYS
from .policy import Policy, parse_policy

DIRECTORY_TYPES = ("active_directory", "ldap")

DEFAULT_USER_FILTERS = {
    "active_directory": "(&(objectCategory=person)(objectClass=user)"
    "(|(sAMAccountName={user})(userPrincipalName={upn})))",
    "ldap": "(&(objectClass=inetOrgPerson)(uid={user}))",
}

# SmarterTrack output variable -> directory attributes tried in order; the first non-empty wins.
DEFAULT_ATTRIBUTES = (
    OutputMapping("EmailAddress", (Candidate("mail"), Candidate("userPrincipalName"))),
    OutputMapping("DisplayName", (Candidate("displayName"), Candidate("cn"))),
)

# The Message of each Authentication=FAIL reason; keys are the [messages] keys.
DEFAULT_MESSAGES = {
    "wrong_credentials": "Wrong username or password.",
    "account_disabled": "Your account is disabled. Contact your IT helpdesk.",
    "account_locked": "Your account is locked. Try again later or contact your IT helpdesk.",
    "account_expired": "Your account has expired. Contact your IT helpdesk.",
    "password_expired": "Your password has expired. Change it, then sign in again.",
    "must_change_password": "You must change your password before signing in.",
    "logon_restricted": "Your account may not sign in at this time or from here. Contact your IT helpdesk.",
    "directory_unavailable": "The directory is unavailable. Please try again in a few minutes.",
    "login_ok": "Login Successful",
}

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_USER_FILTER_FIELDS = re.compile(r"\{([^{}]*)\}")


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists each one as 'key: what is wrong'."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class ServerSettings:
    host: str
    port: int
    public_url: str
    max_body_bytes: int
    max_variables: int
    threads: int
    tls_cert: str | None
    tls_key: str | None
    allow_plaintext_http: bool

    @property
    def is_loopback(self) -> bool:
        return is_loopback(self.host)


@dataclass(frozen=True)
class DirectorySettings:
    name: str
    type: str  # "active_directory" | "ldap"
    urls: tuple[str, ...]
    base_dn: str
    bind_dn: str
    bind_password: str = field(repr=False)
    ca_file: str | None
    start_tls: bool
    allow_plaintext: bool
    connect_timeout: float
    timeout: float
    netbios_domain: str | None
    upn_suffixes: tuple[str, ...]
    user_filter: str
    default: bool
    retry_down_after: float
    ppolicy_default_dn: str | None
    group_base_dn: str | None  # where groups are searched; default base_dn
    membership_cache_seconds: float  # a user's groups are cached this long
    group_name_cache_seconds: float  # AD group SID -> name, cached longer: group names rarely change
    attributes: tuple[OutputMapping, ...]  # [attributes], overridden by this directory's [directory.attributes]

    @property
    def is_active_directory(self) -> bool:
        return self.type == "active_directory"


@dataclass(frozen=True)
class LoginSettings:
    # GetSignInCookieInfo has no password to check, so these account states are read, not bound:
    # a single sign-on for a user who must change (or has an expired) password is refused unless allowed.
    sso_allow_must_change: bool
    sso_allow_password_expired: bool


SINK_TYPES = ("jsonl", "webhook", "syslog")
SYSLOG_FACILITIES = {"user": 1, "daemon": 3, "auth": 4, "local0": 16, "local1": 17, "local2": 18, "local3": 19,
                     "local4": 20, "local5": 21, "local6": 22, "local7": 23}


@dataclass(frozen=True)
class SinkSettings:
    name: str
    type: str  # "jsonl" | "webhook" | "syslog"
    event_types: tuple[str, ...] = ()  # IDs or names; empty: every event
    path: str | None = None  # jsonl
    url: str | None = None  # webhook
    secret: str | None = field(default=None, repr=False)  # webhook: HMAC-SHA256 key of the signature header
    timeout: float = 10.0  # webhook
    address: str | None = None  # syslog: "host:port" (UDP) or a unix socket such as /dev/log
    facility: int = 16  # syslog: local0

    def wants(self, event_type: str, event_name: str) -> bool:
        return not self.event_types or any(t == event_type or t.lower() == event_name.lower()
                                           for t in self.event_types)


@dataclass(frozen=True)
class EventSettings:
    database: str  # the SQLite outbox
    sinks: tuple[SinkSettings, ...]
    max_attempts: int
    retry_initial_seconds: float
    retry_max_seconds: float


USER_INFO_FIELDS = ("display_name", "title", "department", "company", "email", "phone", "mobile", "office",
                    "manager", "account_state", "password_expires", "last_logon", "groups", "photo")


@dataclass(frozen=True)
class UserInfoSettings:
    fields: tuple[str, ...]  # which lines the card shows, in this order (USER_INFO_FIELDS)
    groups_pattern: re.Pattern  # the user's groups shown: names matching this
    template: str | None  # an operator's Jinja2 template file; None: the one shipped
    date_format: str
    time_zone: str
    cache_seconds: float  # a card is fresh this long
    stale_seconds: float  # an older card is still shown this long when the directory cannot answer
    latency_budget_ms: float  # GetUserDetails answers within this, with a notice if it must
    photo_max_bytes: int  # larger photos are left out
    unavailable_notice: str


@dataclass(frozen=True)
class Config:
    server: ServerSettings
    web_service_password: str = field(repr=False)
    provider_passwords: Mapping[str, str] = field(repr=False)  # provider key -> its own password
    directories: tuple[DirectorySettings, ...]
    attributes: tuple[OutputMapping, ...]
    messages: Mapping[str, str]
    login: LoginSettings
    log_level: str
    source: str
    policy: Policy = Policy()
    events: EventSettings | None = None  # None: the event provider is not enabled
    user_info: UserInfoSettings | None = None  # None: the user information provider is not enabled


def load(path: str | os.PathLike) -> Config:
    """Read, substitute and validate the config file; raise ConfigError listing every problem."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([f"{path}: cannot read: {e}"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path}: not valid TOML: {e}"]) from None
    problems: list[str] = []
    env = _Environment(path.parent / ".env")
    raw = _substitute(raw, "", env, problems)
    config = _build(raw, str(path), problems)
    if problems:
        raise ConfigError(problems)
    return config


class _Environment:
    """Looks NAME up in os.environ, then in the .env file beside the config (read once, lazily)."""

    def __init__(self, dotenv_path: Path):
        self._path = dotenv_path
        self._dotenv: dict[str, str | None] | None = None

    def get(self, name: str) -> str | None:
        if name in os.environ:
            return os.environ[name]
        if self._dotenv is None:
            self._dotenv = dotenv_values(self._path) if self._path.is_file() else {}
        return self._dotenv.get(name)


def _substitute(value: Any, key: str, env: _Environment, problems: list[str]) -> Any:
    if isinstance(value, str):
        def replace(match: re.Match) -> str:
            found = env.get(match.group(1))
            if found is None:
                problems.append(f"{key}: ${{{match.group(1)}}} is not defined in the environment or in .env")
                return match.group(0)  # left as is, so the one problem is not reported twice
            return found
        return _PLACEHOLDER.sub(replace, value)
    if isinstance(value, dict):
        return {k: _substitute(v, f"{key}.{k}" if key else k, env, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, f"{key}[{i}]", env, problems) for i, v in enumerate(value)]
    return value


class _Table:
    """Typed reads from one TOML table; wrong types and unknown keys become problems, not exceptions."""

    def __init__(self, data: Any, key: str, problems: list[str]):
        self.key = key
        self.problems = problems
        if not isinstance(data, dict):
            self.problem("", "must be a table")
            data = {}
        self.data = data
        self.used: set[str] = set()

    def problem(self, name: str, text: str) -> None:
        self.problems.append(f"{self.key}.{name}: {text}" if name else f"{self.key}: {text}")

    def get(self, name: str, kind: type | tuple, default: Any = None, required: bool = False) -> Any:
        self.used.add(name)
        if name not in self.data:
            if required:
                self.problem(name, "is required")
            return default
        value = self.data[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            self.problem(name, f"must be a {_TYPE_WORDS.get(names, names)}, not {value!r}")
            return default
        return value

    def text(self, name: str, default: str | None = None, required: bool = False) -> str | None:
        value = self.get(name, str, default, required)
        if required and value is not None and not value.strip():
            self.problem(name, "must not be empty")
        return value

    def texts(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.get(name, list, list(default))
        if not all(isinstance(v, str) for v in value):
            self.problem(name, "must be a list of strings")
            return default
        return tuple(value)

    def positive(self, name: str, kind: type, default: float) -> Any:
        value = self.get(name, kind, default)
        if value <= 0:
            self.problem(name, "must be greater than 0")
            return default
        return value

    def reject_unknown(self) -> None:
        for name in self.data:
            if name not in self.used:
                self.problem(name, "unknown key (misspelt?)")


_TYPE_WORDS = {"str": "string", "int": "whole number", "float": "number", "bool": "true or false",
               "list": "list", "dict": "table"}


def _build(raw: dict, source: str, problems: list[str]) -> Config:
    top = _Table(raw, "(top level)", problems)
    server = _server(_Table(top.get("server", dict, {}), "server", problems))
    smartertrack = _Table(top.get("smartertrack", dict, {}), "smartertrack", problems)
    password = smartertrack.text("web_service_password", required=True) or ""
    provider_passwords = _provider_passwords(
        _Table(smartertrack.get("passwords", dict, {}), "smartertrack.passwords", problems))
    smartertrack.reject_unknown()
    attributes = _attributes(_Table(top.get("attributes", dict, {}), "attributes", problems), DEFAULT_ATTRIBUTES)
    directories = _directories(top.get("directory", list, []), attributes, problems)
    messages = _messages(_Table(top.get("messages", dict, {}), "messages", problems))
    login_table = _Table(top.get("login", dict, {}), "login", problems)
    login = LoginSettings(
        sso_allow_must_change=login_table.get("sso_allow_must_change", bool, False),
        sso_allow_password_expired=login_table.get("sso_allow_password_expired", bool, False),
    )
    login_table.reject_unknown()
    logging_table = _Table(top.get("logging", dict, {}), "logging", problems)
    log_level = (logging_table.text("level", "INFO") or "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        logging_table.problem("level", "must be one of DEBUG, INFO, WARNING, ERROR")
    logging_table.reject_unknown()
    top.used.update(("policy", "department", "field", "ticket_rule", "chat_rule"))
    policy = parse_policy(raw, problems)
    events = None
    if "events" in raw:
        events = _events(_Table(top.get("events", dict, {}), "events", problems), Path(source).parent)
    user_info = None
    if "user_info" in raw:
        user_info = _user_info(_Table(top.get("user_info", dict, {}), "user_info", problems), Path(source).parent)
    top.reject_unknown()
    return Config(server=server, web_service_password=password, provider_passwords=provider_passwords,
                  directories=directories, attributes=attributes, messages=messages, login=login,
                  log_level=log_level, source=source, policy=policy, events=events, user_info=user_info)


def _server(t: _Table) -> ServerSettings:
    listen = t.text("listen", "127.0.0.1:8290") or "127.0.0.1:8290"
    host, port = parse_listen(listen, t)
    tls_cert, tls_key = t.text("tls_cert"), t.text("tls_key")
    for key, path in (("tls_cert", tls_cert), ("tls_key", tls_key)):
        if path and not Path(path).is_file():
            t.problem(key, f"file not found: {path}")
    if bool(tls_cert) != bool(tls_key):
        t.problem("tls_cert" if not tls_cert else "tls_key", "tls_cert and tls_key must be set together")
    scheme = "https" if tls_cert else "http"
    public_url = t.text("public_url") or f"{scheme}://{_url_host(host)}:{port}/ExternalProvider.asmx"
    if urlsplit(public_url).scheme not in ("http", "https") or not urlsplit(public_url).netloc:
        t.problem("public_url", f"must be an http:// or https:// URL, not {public_url!r}")
    allow_plaintext_http = t.get("allow_plaintext_http", bool, False)
    if not tls_cert and not is_loopback(host) and not allow_plaintext_http:
        t.problem("listen", f"{listen} is reachable from other machines, and without tls_cert/tls_key the "
                            "passwords SmarterTrack sends would cross the network in clear text: set tls_cert "
                            "and tls_key, or (behind a TLS proxy) allow_plaintext_http = true")
    settings = ServerSettings(
        host=host, port=port, public_url=public_url,
        max_body_bytes=t.positive("max_body_bytes", int, 1024 * 1024),
        max_variables=t.positive("max_variables", int, 1000),
        threads=t.positive("threads", int, 16),
        tls_cert=tls_cert, tls_key=tls_key, allow_plaintext_http=allow_plaintext_http,
    )
    t.reject_unknown()
    return settings


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _provider_passwords(t: _Table) -> Mapping[str, str]:
    passwords = {}
    for key in PASSWORD_KEYS:
        value = t.text(key)
        if value is not None:
            if not value.strip():
                t.problem(key, "must not be empty (leave it out to use web_service_password)")
            passwords[key] = value
    for name in t.data:
        if name not in t.used:
            t.problem(name, f"unknown provider; use one of {', '.join(PASSWORD_KEYS)}")
    return MappingProxyType(passwords)


def parse_listen(listen: str, t: _Table | None = None) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        if t is not None:
            t.problem("listen", f"must be host:port, for example 127.0.0.1:8290, not {listen!r}")
        return "127.0.0.1", 8290
    return host, int(port)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _directories(entries: list, attributes: tuple[OutputMapping, ...],
                 problems: list[str]) -> tuple[DirectorySettings, ...]:
    if not entries:
        return ()
    result = []
    for index, entry in enumerate(entries):
        t = _Table(entry, f"directory[{index}]", problems)
        result.append(_directory(t, index, attributes))
        t.reject_unknown()
    names = [d.name.lower() for d in result]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(f"directory: the name {name!r} is used twice")
    if sum(d.default for d in result) > 1:
        problems.append("directory: more than one directory has default = true")
    _claims_unique([(d.name, d.netbios_domain) for d in result if d.netbios_domain], "netbios_domain", problems)
    _claims_unique([(d.name, s) for d in result for s in d.upn_suffixes], "upn_suffixes", problems)
    return tuple(result)


def _claims_unique(claims: list[tuple[str, str]], key: str, problems: list[str]) -> None:
    seen: dict[str, str] = {}
    for name, claim in claims:
        if claim.lower() in seen and seen[claim.lower()] != name:
            problems.append(f"directory.{key}: {claim!r} is claimed by both {seen[claim.lower()]!r} and {name!r}")
        seen[claim.lower()] = name


def _directory(t: _Table, index: int, attributes: tuple[OutputMapping, ...]) -> DirectorySettings:
    kind = t.text("type", required=True)
    if kind is not None and kind not in DIRECTORY_TYPES:
        t.problem("type", f"must be one of {', '.join(DIRECTORY_TYPES)}, not {kind!r}")
        kind = None
    urls = t.texts("urls")
    if not urls:
        t.problem("urls", 'is required: a list such as ["ldaps://dc1.example.com"]')
    start_tls = t.get("start_tls", bool, False)
    allow_plaintext = t.get("allow_plaintext", bool, False)
    for url in urls:
        _check_url(t, url, start_tls, allow_plaintext)
    ca_file = t.text("ca_file")
    if ca_file and not Path(ca_file).is_file():
        t.problem("ca_file", f"file not found: {ca_file}")
    bind_dn = t.text("bind_dn", "") or ""
    bind_password = t.text("bind_password", "") or ""
    if bind_dn and not bind_password:
        t.problem("bind_password", "is required when bind_dn is set")
    if not bind_dn:
        t.problem("bind_dn", "is required: the service account that searches for users")
    user_filter = t.text("user_filter") or DEFAULT_USER_FILTERS.get(kind or "ldap")
    _check_user_filter(t, user_filter)
    netbios = t.text("netbios_domain")
    suffixes = tuple(s.lstrip("@").lower() for s in t.texts("upn_suffixes"))
    settings = DirectorySettings(
        name=t.text("name", f"directory{index + 1}") or f"directory{index + 1}",
        type=kind or "ldap",
        urls=urls,
        base_dn=t.text("base_dn", required=True) or "",
        bind_dn=bind_dn,
        bind_password=bind_password,
        ca_file=ca_file,
        start_tls=start_tls,
        allow_plaintext=allow_plaintext,
        connect_timeout=t.positive("connect_timeout", float, 5.0),
        timeout=t.positive("timeout", float, 10.0),
        netbios_domain=netbios.upper() if netbios else None,
        upn_suffixes=suffixes,
        user_filter=user_filter,
        default=t.get("default", bool, False),
        retry_down_after=t.positive("retry_down_after", float, 30.0),
        ppolicy_default_dn=t.text("ppolicy_default_dn"),
        group_base_dn=t.text("group_base_dn"),
        membership_cache_seconds=t.positive("membership_cache_seconds", float, 300.0),
        group_name_cache_seconds=t.positive("group_name_cache_seconds", float, 3600.0),
        attributes=_attributes(_Table(t.get("attributes", dict, {}), f"{t.key}.attributes", t.problems), attributes),
    )
    return settings


def _check_url(t: _Table, url: str, start_tls: bool, allow_plaintext: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
        t.problem("urls", f"{url!r} is not an ldap:// or ldaps:// URL with a host")
        return
    try:
        parts.port
    except ValueError:
        t.problem("urls", f"{url!r} has an invalid port")
    if parts.scheme == "ldaps" and start_tls:
        t.problem("start_tls", f"{url!r} is already TLS (ldaps://); start_tls is for ldap:// URLs")
    if parts.scheme == "ldap" and not start_tls and not allow_plaintext:
        t.problem("urls", f"{url!r} would send passwords in clear text: use ldaps://, or set "
                          "start_tls = true, or (not recommended) allow_plaintext = true")


def _check_user_filter(t: _Table, user_filter: str) -> None:
    if not (user_filter.startswith("(") and user_filter.endswith(")")):
        t.problem("user_filter", "must be an LDAP filter in parentheses")
    if user_filter.count("(") != user_filter.count(")"):
        t.problem("user_filter", "has unbalanced parentheses")
    fields = set(_USER_FILTER_FIELDS.findall(user_filter))
    if not fields & {"user", "upn"}:
        t.problem("user_filter", "must contain {user} or {upn}")
    if fields - {"user", "upn"}:
        t.problem("user_filter", f"unknown placeholders: {', '.join(sorted(fields - {'user', 'upn'}))}; "
                                 "only {user} and {upn} exist")


def _attributes(t: _Table, inherited: tuple[OutputMapping, ...]) -> tuple[OutputMapping, ...]:
    """An [attributes] table over the mappings it inherits; a key given here replaces the inherited one.

    A value is an attribute name, a list of candidates (attribute names or "{givenName} {sn}" templates),
    or a table {from = [...], join = "; "} that joins the values of multi-valued attributes.
    """
    mapping = {m.name: m for m in inherited}
    for name in t.data:
        t.used.add(name)
        if name not in ("EmailAddress", "DisplayName") and not (name.startswith("cf_") and len(name) > 3):
            t.problem(name, "must be EmailAddress, DisplayName or a cf_<Field> name")
            continue
        value = t.data[name]
        join = None
        if isinstance(value, dict):
            join = value.get("join")
            unknown = set(value) - {"from", "join"}
            if unknown or (join is not None and not isinstance(join, str)):
                t.problem(name, 'as a table takes from = [...] and optionally join = "separator"')
                continue
            value = value.get("from")
        candidates = [value] if isinstance(value, str) else value
        if not isinstance(candidates, list) or not candidates or \
                not all(isinstance(c, str) and c.strip() for c in candidates):
            t.problem(name, "must be an attribute name, a list of attribute names or templates, or a table "
                            "with from = [...]")
            continue
        parsed = tuple(Candidate(c.strip()) for c in candidates)
        for candidate in parsed:
            if candidate.problem():
                t.problem(name, candidate.problem())
        mapping[name] = OutputMapping(name, parsed, join)
    return tuple(mapping.values())


def _events(t: _Table, folder: Path) -> EventSettings:
    database = t.text("database", "ssobridge-events.db") or "ssobridge-events.db"
    sinks = []
    for index, raw in enumerate(t.get("sink", list, [])):
        sink = _Table(raw, f"events.sink[{index}]", t.problems)
        kind = sink.text("type", required=True)
        if kind is not None and kind not in SINK_TYPES:
            sink.problem("type", f"must be one of {', '.join(SINK_TYPES)}, not {kind!r}")
        name = sink.text("name", f"{kind}{index + 1}") or f"sink{index + 1}"
        path, url = sink.text("path"), sink.text("url")
        if kind == "jsonl" and not path:
            sink.problem("path", "is required for a jsonl sink")
        if kind == "webhook" and (not url or urlsplit(url).scheme not in ("http", "https")):
            sink.problem("url", "is required for a webhook sink: an http:// or https:// URL")
        facility = sink.text("facility", "local0") or "local0"
        if facility not in SYSLOG_FACILITIES:
            sink.problem("facility", f"must be one of {', '.join(SYSLOG_FACILITIES)}")
        sinks.append(SinkSettings(
            name=name, type=kind or "jsonl", event_types=sink.texts("event_types"),
            path=str(folder / path) if path else None, url=url, secret=sink.text("secret"),
            timeout=sink.positive("timeout", float, 10.0), address=sink.text("address"),
            facility=SYSLOG_FACILITIES.get(facility, 16)))
        sink.reject_unknown()
    names = [s.name for s in sinks]
    for duplicate in {n for n in names if names.count(n) > 1}:
        t.problem("sink", f"the sink name {duplicate!r} is used twice")
    settings = EventSettings(database=str(folder / database), sinks=tuple(sinks),
                             max_attempts=t.positive("max_attempts", int, 10),
                             retry_initial_seconds=t.positive("retry_initial_seconds", float, 2.0),
                             retry_max_seconds=t.positive("retry_max_seconds", float, 600.0))
    t.reject_unknown()
    return settings


def _user_info(t: _Table, folder: Path) -> UserInfoSettings:
    fields = t.texts("fields", USER_INFO_FIELDS)
    for name in fields:
        if name not in USER_INFO_FIELDS:
            t.problem("fields", f"{name!r} is not one of {', '.join(USER_INFO_FIELDS)}")
    pattern = t.text("groups_pattern", ".*") or ".*"
    try:
        groups_pattern = re.compile(pattern, re.IGNORECASE)
    except re.error as e:
        t.problem("groups_pattern", f"is not a valid regular expression: {e}")
        groups_pattern = re.compile(".*")
    template = t.text("template")
    if template and not (folder / template).is_file():
        t.problem("template", f"file not found: {folder / template}")
    time_zone = t.text("time_zone", "UTC") or "UTC"
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        t.problem("time_zone", f"unknown time zone {time_zone!r} (use a name such as Europe/Berlin)")
        time_zone = "UTC"
    settings = UserInfoSettings(
        fields=fields, groups_pattern=groups_pattern, template=str(folder / template) if template else None,
        date_format=t.text("date_format", "%Y-%m-%d %H:%M") or "%Y-%m-%d %H:%M", time_zone=time_zone,
        cache_seconds=t.positive("cache_seconds", float, 300.0), stale_seconds=t.positive("stale_seconds", float,
                                                                                            86400.0),
        latency_budget_ms=t.positive("latency_budget_ms", float, 800.0),
        photo_max_bytes=t.positive("photo_max_bytes", int, 100_000),
        unavailable_notice=t.text("unavailable_notice", "Directory information is not available right now.")
        or "Directory information is not available right now.")
    t.reject_unknown()
    return settings


def _messages(t: _Table) -> Mapping[str, str]:
    messages = dict(DEFAULT_MESSAGES)
    for key in DEFAULT_MESSAGES:
        messages[key] = t.text(key, DEFAULT_MESSAGES[key]) or DEFAULT_MESSAGES[key]
    t.reject_unknown()
    return MappingProxyType(messages)
