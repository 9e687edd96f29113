"""The settings: frozen dataclasses, each field with its default and a one-line comment.

The type is the documentation (config.example.toml mirrors it), and the parser takes every default from
here, so code and tests that build settings pass only what differs.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import MISSING, dataclass, field, fields
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Mapping

from ..mapping import Candidate, OutputMapping
from ..policy import Policy
from .machine_key import CompatibilityMode, Decryption, Validation


class DirectoryType(StrEnum):
    """[[directory]] type: which flavour of directory (directory.FLAVOURS) answers."""

    ACTIVE_DIRECTORY = "active_directory"
    LDAP = "ldap"


DEFAULT_USER_FILTERS = {
    DirectoryType.ACTIVE_DIRECTORY: "(&(objectCategory=person)(objectClass=user)"
    "(|(sAMAccountName={user})(userPrincipalName={upn})))",
    DirectoryType.LDAP: "(&(objectClass=inetOrgPerson)(uid={user}))",
}

# SmarterTrack output variable -> directory attributes tried in order; the first non-empty wins.
DEFAULT_ATTRIBUTES = (
    OutputMapping("EmailAddress", (Candidate("mail"), Candidate("userPrincipalName"))),
    OutputMapping("DisplayName", (Candidate("displayName"), Candidate("cn"))),
)

# The Message of each Authentication=FAIL reason; keys are the [messages] keys.
DEFAULT_MESSAGES = MappingProxyType({
    "wrong_credentials": "Wrong username or password.",
    "account_disabled": "Your account is disabled. Contact your IT helpdesk.",
    "account_locked": "Your account is locked. Try again later or contact your IT helpdesk.",
    "account_expired": "Your account has expired. Contact your IT helpdesk.",
    "password_expired": "Your password has expired. Change it, then sign in again.",
    "must_change_password": "You must change your password before signing in.",
    "logon_restricted": "Your account may not sign in at this time or from here. Contact your IT helpdesk.",
    "directory_unavailable": "The directory is unavailable. Please try again in a few minutes.",
    "login_ok": "Login Successful",
})

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class LogFormat(StrEnum):
    """[server] log_format."""

    TEXT = "text"  # one event=name key=value line
    JSON = "json"  # one JSON object a line



class SinkType(StrEnum):
    """[[events.sink]] type: where events are delivered."""

    JSONL = "jsonl"
    WEBHOOK = "webhook"
    SYSLOG = "syslog"

SYSLOG_FACILITIES = {"user": 1, "daemon": 3, "auth": 4, "local0": 16, "local1": 17, "local2": 18, "local3": 19,
                     "local4": 20, "local5": 21, "local6": 22, "local7": 23}

USER_INFO_FIELDS = ("display_name", "title", "department", "company", "email", "phone", "mobile", "office",
                    "manager", "account_state", "password_expires", "last_logon", "groups", "photo")


def defaults(settings: type) -> Mapping[str, Any]:
    """Field name -> default of a settings dataclass (fields without a default are left out)."""
    values = {}
    for f in fields(settings):
        if f.default is not MISSING:
            values[f.name] = f.default
        elif f.default_factory is not MISSING:
            values[f.name] = f.default_factory()
    return MappingProxyType(values)


def _members(settings: Any, **kinds: type[StrEnum]) -> None:
    """The fields typed as a StrEnum hold its members, also when code or a test gave them as text (the config
    reader gives members; a value that is not one is a ValueError here, never a setting that matches nothing)."""
    for name, kind in kinds.items():
        object.__setattr__(settings, name, kind(getattr(settings, name)))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, kw_only=True)
class ServerSettings:
    public_url: str  # the Web Service URL SmarterTrack is given; default from listen and TLS
    host: str = "127.0.0.1"  # [server] listen = "host:port"
    port: int = 8290
    max_body_bytes: int = 1024 * 1024  # larger requests are refused before parsing
    max_variables: int = 1000  # more InputVariables are refused
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)  # processes serving; default: one per CPU
    threads: int = 16  # requests processed at once per worker (slow clients wait without holding one)
    request_timeout: float = 30.0  # seconds a request has to arrive whole (headers and body); then it is closed
    tls_cert: str | None = None  # PEM files; without them, plain HTTP (loopback or allow_plaintext_http)
    tls_key: str | None = None
    allow_plaintext_http: bool = False  # plain HTTP beyond loopback, behind a TLS proxy
    # State shared by every worker and command (lockout shield, guards, the events outbox by default);
    # left out: $SSOBRIDGE_DATA_DIR, else the config file's folder.
    data_dir: str = ""
    metrics: bool = True  # GET /metrics (Prometheus text format) on the listen address
    metrics_token: str | None = field(default=None, repr=False)  # then /metrics wants "Authorization: Bearer <it>"
    log_format: LogFormat = LogFormat.TEXT  # "text": one event=name key=value line; "json": one JSON object a line

    def __post_init__(self) -> None:
        _members(self, log_format=LogFormat)

    @property
    def is_loopback(self) -> bool:
        return is_loopback(self.host)


@dataclass(frozen=True, kw_only=True)
class DirectorySettings:
    name: str  # named in logs and messages; default directory1, directory2, ...
    type: DirectoryType  # "active_directory" | "ldap"
    urls: tuple[str, ...]  # servers tried in order: ldaps://, or ldap:// with start_tls; () with domain
    base_dn: str  # where users are searched
    bind_dn: str  # the service account that searches
    bind_password: str = field(repr=False)
    user_filter: str  # {user} and {upn} filled in, escaped; default DEFAULT_USER_FILTERS[type]
    ca_file: str | None = None  # PEM CAs trusted for the servers' certificates; None: the system store
    start_tls: bool = False  # upgrade ldap:// URLs to TLS
    allow_plaintext: bool = False  # ldap:// without TLS (passwords in clear text; not recommended)
    connect_timeout: float = 5.0  # seconds to reach a server
    timeout: float = 10.0  # seconds for one LDAP operation
    netbios_domain: str | None = None  # DOMAIN\user names this directory (upper case)
    upn_suffixes: tuple[str, ...] = ()  # user@suffix names this directory (lower case, no @)
    default: bool = False  # bare usernames go here first
    retry_down_after: float = 30.0  # seconds a server that failed is skipped
    service_retry_seconds: float = 60.0  # after a refused service-account bind, no service bind this long
    pdc_emulator_first: bool = True  # AD: logins search and bind on the PDC emulator first when it is in urls
    ppolicy_default_dn: str | None = None  # OpenLDAP: the default password policy entry
    group_base_dn: str | None = None  # where groups are searched; None: base_dn
    membership_cache_seconds: float = 300.0  # a user's groups are cached this long
    group_name_cache_seconds: float = 3600.0  # AD group SID -> name, cached longer: group names rarely change
    attributes: tuple[OutputMapping, ...] = DEFAULT_ATTRIBUTES  # [attributes] under [directory.attributes]
    # Instead of urls: the DNS domain whose DCs are found by SRV records (directory/discovery.py), at start and
    # again every discovery_refresh_seconds; each DC by host name, LDAPS on 636 (StartTLS with start_tls).
    domain: str | None = None
    nameservers: tuple[str, ...] = ()  # IP addresses asked for the SRV records and the DCs' addresses; (): the system's
    discovery_refresh_seconds: float = 300.0

    def __post_init__(self) -> None:
        _members(self, type=DirectoryType)

    @property
    def is_active_directory(self) -> bool:
        return self.type is DirectoryType.ACTIVE_DIRECTORY


@dataclass(frozen=True, kw_only=True)
class LoginSettings:
    # GetSignInCookieInfo has no password to check, so these account states are read, not bound:
    # a single sign-on for a user who must change (or has an expired) password is refused unless allowed.
    sso_allow_must_change: bool = False
    sso_allow_password_expired: bool = False


DEFAULT_LOCKOUT_MESSAGE = "Too many failed sign-ins. Try again later or contact your IT helpdesk."


@dataclass(frozen=True, kw_only=True)
class LockoutSettings:
    enabled: bool = True  # the lockout shield (docs/security.md); off: every password goes to the directory
    threshold: int | None = None  # failures within the window before passwords are refused; None ("auto"): from T
    window_seconds: int | None = None  # None ("auto"): max(30 minutes, the directory's observation window + 1 min)
    known_password: bool = True  # while soft-locked, the password of the last good login is still tried
    message: str = DEFAULT_LOCKOUT_MESSAGE  # the Message of a login refused by the shield


@dataclass(frozen=True)
class SinkSettings:
    name: str  # named in logs and `ssobridge events`; default <type><n>
    type: SinkType  # "jsonl" | "webhook" | "syslog"
    event_types: tuple[str, ...] = ()  # IDs or names; empty: every event
    path: str | None = None  # jsonl
    url: str | None = None  # webhook
    secret: str | None = field(default=None, repr=False)  # webhook: HMAC-SHA256 key of the signature header
    timeout: float = 10.0  # webhook
    address: str | None = None  # syslog: "host:port" (UDP) or a unix socket such as /dev/log
    facility: int = SYSLOG_FACILITIES["local0"]  # syslog

    def __post_init__(self) -> None:
        _members(self, type=SinkType)

    def wants(self, event_type: str, event_name: str) -> bool:
        return not self.event_types or any(t == event_type or t.lower() == event_name.lower()
                                           for t in self.event_types)


@dataclass(frozen=True, kw_only=True)
class EventSettings:
    database: str = "ssobridge-events.db"  # the SQLite outbox; relative: to the config file; left out: in data_dir
    sinks: tuple[SinkSettings, ...] = ()  # where events are delivered
    max_attempts: int = 10  # deliveries tried before an event is dead for that sink
    retry_initial_seconds: float = 2.0  # first wait before a retry, doubled each time
    retry_max_seconds: float = 600.0  # the longest wait between retries
    keep_days: int = 30  # delivered and dead events older than this are pruned (pending ones never)


@dataclass(frozen=True, kw_only=True)
class UserInfoSettings:
    fields: tuple[str, ...] = USER_INFO_FIELDS  # which lines the card shows, in this order
    groups_pattern: re.Pattern = re.compile(".*", re.IGNORECASE)  # the user's groups shown: names matching
    template: str | None = None  # an operator's Jinja2 template file; None: the one shipped
    date_format: str = "%Y-%m-%d %H:%M"  # strftime, for password expiry and last logon
    time_zone: str = "UTC"  # dates are shown in this zone
    cache_seconds: float = 300.0  # a card is fresh this long, for every worker (data_dir/ssobridge-cards.db)
    stale_seconds: float = 86400.0  # an older card is still shown this long when the directory cannot answer
    cache_size: int = 10_000  # at most this many cards are kept; the least recently written or viewed go first
    latency_budget_ms: float = 800.0  # GetUserDetails answers within this, with a notice if it must
    photo_max_bytes: int = 100_000  # larger photos are left out
    unavailable_notice: str = "Directory information is not available right now."  # when nothing is known


class TicketUsername(StrEnum):
    """[sso] ticket_username: the name in the forms ticket (what GetSignInCookieInfo receives)."""

    NETBIOS = "netbios"  # DOMAIN\user
    UPN = "upn"  # user@suffix



@dataclass(frozen=True, kw_only=True)
class SsoSettings:
    enabled: bool = False  # ssobridge signs people in and issues SmarterTrack's forms authentication cookie
    portal_url: str = ""  # SmarterTrack's address: where sign-ins land without a (permitted) ReturnUrl
    return_hosts: tuple[str, ...] = ()  # host names ReturnUrl may lead to besides portal_url's
    cookie_name: str = ".ASPXAUTH"  # must equal SmarterTrack's <forms name>
    cookie_domain: str = ""  # <forms domain>, e.g. "example.com"; empty: only the host that set it
    cookie_path: str = "/"  # <forms path>
    ticket_minutes: int = 30  # how long a ticket is valid, as <forms timeout> (ASP.NET's default: 30)
    validation_key: str = field(default="", repr=False)  # <machineKey validationKey>, hex
    decryption_key: str = field(default="", repr=False)  # <machineKey decryptionKey>, hex
    validation: Validation = Validation.HMACSHA256  # <machineKey validation>: SHA1, HMACSHA256, HMACSHA384, HMACSHA512
    decryption: Decryption = Decryption.AES  # <machineKey decryption>: AES or 3DES
    compatibility_mode: CompatibilityMode = CompatibilityMode.FRAMEWORK20SP1  # <machineKey compatibilityMode>
    ticket_username: TicketUsername = TicketUsername.NETBIOS  # "netbios" (DOMAIN\user) or "upn" (user@suffix)
    kerberos_keytab: str | None = None  # Negotiate (Kerberos) sign-in from domain PCs; None: no Kerberos
    kerberos_principal: str | None = None  # HTTP/host@REALM in the keytab; None: any principal it holds
    form: bool = True  # the username and password page for whoever has no Kerberos ticket
    page_title: str = "Sign in to the helpdesk"  # the sign-in page's title and heading
    logo_url: str | None = None  # an image shown above the form; None: no logo
    accent_color: str = "#1f5fa8"  # the button and link colour (#rgb or #rrggbb)

    def __post_init__(self) -> None:
        _members(self, validation=Validation, decryption=Decryption, compatibility_mode=CompatibilityMode,
                 ticket_username=TicketUsername)


@dataclass(frozen=True, kw_only=True)
class Config:
    server: ServerSettings
    web_service_password: str = field(repr=False)  # authPW of every provider without its own password
    source: str  # the config file, as named in messages
    # provider key ([smartertrack.passwords], see operations.py) -> its own password
    provider_passwords: Mapping[str, str] = field(repr=False, default_factory=lambda: MappingProxyType({}))
    directories: tuple[DirectorySettings, ...] = ()  # [[directory]], in order
    attributes: tuple[OutputMapping, ...] = DEFAULT_ATTRIBUTES  # [attributes]: output variable -> attributes
    messages: Mapping[str, str] = field(default_factory=lambda: DEFAULT_MESSAGES)  # [messages]: FAIL texts
    login: LoginSettings = LoginSettings()  # [login]
    lockout: LockoutSettings = LockoutSettings()  # [lockout]
    log_level: str = "INFO"  # one of LOG_LEVELS
    policy: Policy = Policy()  # [policy] and the rule tables
    events: EventSettings | None = None  # None: the event provider is not enabled
    user_info: UserInfoSettings | None = None  # None: the user information provider is not enabled
    sso: SsoSettings = SsoSettings()  # [sso]: signing people in for SmarterTrack (disabled by default)
    audit_file: str | None = None  # [audit] file: one JSON line per login and policy decision; None: none
