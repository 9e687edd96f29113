"""The configuration: one TOML file, read and validated once at start into immutable objects.

Every problem is collected (key and what is wrong) and reported together, so an operator fixes a
broken file in one pass. Nothing else in ssobridge reads the TOML file or the environment.

    settings.py        the settings dataclasses: each field with its default and a comment
    reader.py          reading the file, ${NAME} substitution, Table (typed reads, unknown keys)
    load.py            load(): the whole file into a Config
    sections.py        [server], [lockout], [events], [user_info]
    sso_table.py       [sso]: single sign-on, SmarterTrack's machine key and forms cookie
    machine_key.py     <machineKey>'s algorithm names and sizes, and the check of a key (no cryptography)
    directories.py     [[directory]], [attributes]
    policy_tables.py   [policy] and the rule tables (the rules themselves: ssobridge/policy.py)
"""

from .load import load
from .reader import ConfigError
from .sections import parse_listen
from .settings import (
                       DEFAULT_ATTRIBUTES,
                       DEFAULT_MESSAGES,
                       DEFAULT_USER_FILTERS,
                       LOG_LEVELS,
                       SYSLOG_FACILITIES,
                       USER_INFO_FIELDS,
                       Config,
                       DirectorySettings,
                       DirectoryType,
                       EventSettings,
                       LockoutSettings,
                       LogFormat,
                       LoginSettings,
                       ServerSettings,
                       SinkSettings,
                       SinkType,
                       SsoSettings,
                       TicketUsername,
                       UserInfoSettings,
                       defaults,
                       is_loopback,
)

__all__ = ["load", "ConfigError", "parse_listen", "DEFAULT_ATTRIBUTES", "DEFAULT_MESSAGES", "DEFAULT_USER_FILTERS",
           "LOG_LEVELS", "SYSLOG_FACILITIES", "USER_INFO_FIELDS", "Config", "DirectorySettings", "DirectoryType",
           "EventSettings", "LockoutSettings", "LoginSettings", "LogFormat", "ServerSettings", "SinkSettings",
           "SinkType", "SsoSettings", "TicketUsername", "UserInfoSettings", "defaults", "is_loopback"]
