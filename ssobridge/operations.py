"""The seven SOAP operations SmarterTrack calls, each said once: config, providers and wire read this table.

A leaf module (it imports nothing from ssobridge), so every layer may use it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Operation:
    name: str  # the SOAP operation, as SmarterTrack.Connector names it
    tab: str  # its provider tab in SmarterTrack's Settings > Tools > External Providers, as named in messages
    password_key: str  # its key in [smartertrack.passwords]
    handler: str  # "<module>.<method>" of ssobridge/providers/ that answers it


OPERATIONS: dict[str, Operation] = {op.name: op for op in (
    Operation("Authenticate", "login", "login", "login.authenticate"),
    Operation("GetSignInCookieInfo", "login", "login", "login.sign_in_cookie"),
    Operation("GetCustomFieldOptions", "custom field", "custom_fields", "requests.custom_field_options"),
    Operation("StartTicket", "ticket", "ticket", "requests.start_ticket"),
    Operation("StartChat", "live chat", "chat", "requests.start_chat"),
    Operation("GetUserDetails", "user information", "user_info", "userinfo.user_details"),
    Operation("NotifyEventFired", "event", "events", "events.notify_event_fired"),
)}

# The [smartertrack.passwords] keys, in table order: one per provider tab, each with its own password.
PASSWORD_KEYS: tuple[str, ...] = tuple(dict.fromkeys(op.password_key for op in OPERATIONS.values()))
