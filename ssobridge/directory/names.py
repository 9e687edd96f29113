"""Username forms people type, and the LDAP filter that finds them (values escaped by ldap3's escape_filter_chars).

DOMAIN\\user and DOMAIN/user name a NetBIOS domain, user@suffix a UPN suffix, a plain name neither.
The directory that claims the domain or suffix answers for the user; one that nobody claims is no
directory's user at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ldap3.utils.conv import escape_filter_chars

# sAMAccountName is at most 20 characters and a UPN at most 1024 in AD; longer input is nobody.
MAX_USERNAME_LENGTH = 1024

_PLACEHOLDERS = re.compile(r"\{(user|upn)\}")


@dataclass(frozen=True)
class LoginName:
    """A username as typed, split into its parts."""

    typed: str
    user: str  # the name without DOMAIN\ or @suffix
    domain: str | None = None  # NetBIOS domain, when typed as DOMAIN\user
    suffix: str | None = None  # UPN suffix, when typed as user@suffix

    def upn(self, default_suffix: str | None) -> str:
        """user@suffix as typed, else user@<the directory's first UPN suffix>."""
        suffix = self.suffix or default_suffix
        return f"{self.user}@{suffix}" if suffix else self.user


def parse_login_name(typed: str) -> LoginName | None:
    """Split a typed username; None when it cannot name anyone (empty, too long, control characters)."""
    typed = typed.strip()
    if not typed or len(typed) > MAX_USERNAME_LENGTH or any(ord(c) < 32 for c in typed):
        return None
    for separator in ("\\", "/"):
        domain, found, user = typed.partition(separator)
        if found:
            return LoginName(typed, user.strip(), domain=domain.strip()) if domain.strip() and user.strip() else None
    user, found, suffix = typed.rpartition("@")
    if found:
        return LoginName(typed, user, suffix=suffix) if user and suffix else None
    return LoginName(typed, typed)


def user_search_filter(template: str, name: LoginName, default_suffix: str | None) -> str:
    """Fill {user} and {upn} in the configured user_filter, each escaped exactly once."""
    values = {"user": name.user, "upn": name.upn(default_suffix)}
    # One pass, so a username containing "{upn}" stays text.
    # RFC 4515: backslash first, then * ( ) and NUL; other characters (UTF-8, any code point) need none.
    return _PLACEHOLDERS.sub(lambda m: escape_filter_chars(values[m.group(1)]), template)
