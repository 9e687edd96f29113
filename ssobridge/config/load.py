"""load(): the config file, read and validated once into a Config; every problem is reported together."""

from __future__ import annotations

import os
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from ..operations import PASSWORD_KEYS
from .directories import attributes_table, directories_list
from .policy_tables import POLICY_TABLES, parse_policy
from .reader import ConfigError, Table, read_toml
from .sections import events_table, lockout_table, server_table, user_info_table
from .settings import (
    DEFAULT_ATTRIBUTES,
    DEFAULT_MESSAGES,
    LOG_LEVELS,
    Config,
    EventSettings,
    LockoutSettings,
    LoginSettings,
    ServerSettings,
    SsoSettings,
    UserInfoSettings,
)
from .sso_table import sso_table


def load(path: str | os.PathLike) -> Config:
    """Read, substitute and validate the config file; raise ConfigError listing every problem."""
    path = Path(path)
    problems: list[str] = []
    raw = read_toml(path, problems)
    config = _build(raw, str(path), problems)
    if problems:
        raise ConfigError(problems)
    return config


def _build(raw: dict, source: str, problems: list[str]) -> Config:
    folder = Path(source).parent
    top = Table(raw, "(top level)", problems, Config)
    server = server_table(Table(top.get("server", dict, {}), "server", problems, ServerSettings), folder)
    smartertrack = Table(top.get("smartertrack", dict, {}), "smartertrack", problems)
    password = smartertrack.text("web_service_password", required=True) or ""
    provider_passwords = _provider_passwords(
        Table(smartertrack.get("passwords", dict, {}), "smartertrack.passwords", problems))
    smartertrack.reject_unknown()
    attributes = attributes_table(Table(top.get("attributes", dict, {}), "attributes", problems), DEFAULT_ATTRIBUTES)
    directories = directories_list(top.get("directory", list, []), attributes, problems, folder)
    messages = _messages(Table(top.get("messages", dict, {}), "messages", problems))
    login_table = Table(top.get("login", dict, {}), "login", problems, LoginSettings)
    login = LoginSettings(sso_allow_must_change=login_table.get("sso_allow_must_change", bool),
                          sso_allow_password_expired=login_table.get("sso_allow_password_expired", bool))
    login_table.reject_unknown()
    lockout = lockout_table(Table(top.get("lockout", dict, {}), "lockout", problems, LockoutSettings))
    logging_table = Table(top.get("logging", dict, {}), "logging", problems)
    log_level = logging_table.text_or_default("level", top.default("log_level")).upper()
    if log_level not in LOG_LEVELS:
        logging_table.problem("level", f"must be one of {', '.join(LOG_LEVELS)}")
    logging_table.reject_unknown()
    audit = Table(top.get("audit", dict, {}), "audit", problems)
    audit_file = audit.text("file", None)
    audit.reject_unknown()
    top.knows(*POLICY_TABLES, "events", "user_info")
    policy = parse_policy(raw, problems)
    events = None
    if "events" in raw:
        events = events_table(Table(top.get("events", dict, {}), "events", problems, EventSettings), folder,
                              server.data_dir)
    user_info = None
    if "user_info" in raw:
        user_info = user_info_table(Table(top.get("user_info", dict, {}), "user_info", problems,
                                         UserInfoSettings), folder)
    sso = sso_table(Table(top.get("sso", dict, {}), "sso", problems, SsoSettings), folder)
    top.reject_unknown()
    return Config(server=server, web_service_password=password, provider_passwords=provider_passwords,
                  directories=directories, attributes=attributes, messages=messages, login=login, lockout=lockout,
                  log_level=log_level, source=source, policy=policy, events=events, user_info=user_info, sso=sso,
                  audit_file=str(folder / audit_file) if audit_file else None)


def _provider_passwords(t: Table) -> Mapping[str, str]:
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


def _messages(t: Table) -> Mapping[str, str]:
    messages = {key: t.text_or_default(key, default) for key, default in DEFAULT_MESSAGES.items()}
    t.reject_unknown()
    return MappingProxyType(messages)
