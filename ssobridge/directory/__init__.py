"""The directory layer: ldap3, AD quirks and connection handling; nothing about SmarterTrack."""

from .connections import DirectoryUnavailable, ServiceAccountRefused
from .directory import Directory, DirectorySet, Finding, Outcome
from .entries import UserEntry
from .flavour import AccountState, LockoutPolicy
from .names import LoginName, parse_login_name

__all__ = ["AccountState", "Directory", "DirectorySet", "DirectoryUnavailable", "Finding", "LockoutPolicy",
           "LoginName", "Outcome", "ServiceAccountRefused", "UserEntry", "parse_login_name"]
