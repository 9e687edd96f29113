"""The directory layer: ldap3, AD quirks and connection handling; nothing about SmarterTrack."""

from .accounts import AccountState, AmbiguousUser, Directory, DirectorySet, UserEntry
from .connections import DirectoryUnavailable
from .names import LoginName, parse_login_name

__all__ = ["AccountState", "AmbiguousUser", "Directory", "DirectorySet", "DirectoryUnavailable", "LoginName",
           "UserEntry", "parse_login_name"]
