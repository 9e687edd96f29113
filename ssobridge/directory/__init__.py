"""The directory layer: ldap3, AD quirks and connection handling; nothing about SmarterTrack."""

from .connections import DirectoryUnavailable, ServiceAccountRefused
from .directory import AmbiguousUser, Directory, DirectorySet
from .entries import UserEntry
from .flavour import AccountState, LockoutPolicy
from .names import LoginName, parse_login_name

__all__ = ["AccountState", "AmbiguousUser", "Directory", "DirectorySet", "DirectoryUnavailable", "LockoutPolicy",
           "LoginName", "ServiceAccountRefused", "UserEntry",
           "parse_login_name"]
