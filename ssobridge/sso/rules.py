"""The sign-in page's rules, pure and small: where a sign-in may go back to, the CSRF token, the cookies.

- `return_target(return_url, portal_url, return_hosts)`: a ReturnUrl is followed only to portal_url's host
  or a host in return_hosts; a path (/Main/Default.aspx, as ASP.NET's forms authentication sends) is taken
  on portal_url's site, since the sign-in page is on ssobridge's host and the path is SmarterTrack's.
  Anything else (another host, //host, backslashes, control characters, user info, javascript: and every
  other scheme) goes to portal_url: no open redirect.
- `Csrf`: a double-submit token. The browser holds a random nonce in a cookie (HttpOnly, SameSite=Strict,
  __Host- over HTTPS so no sibling subdomain can plant one); the form carries when it was issued and an
  HMAC of (nonce, issued) under a key derived from the host's secret in data_dir. A POST counts only with
  both, matching, younger than CSRF_SECONDS.
- `set_cookie(...)` / `clear_cookie(...)`: the Set-Cookie header values.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from datetime import datetime, timezone
from email.utils import format_datetime
from urllib.parse import quote, urljoin, urlsplit

CSRF_SECONDS = 20 * 60  # a sign-in page may wait this long before it is submitted
CSRF_FIELD = "csrf"
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_NONCE = re.compile(r"[A-Za-z0-9_-]{22,64}")


def return_target(return_url: str | None, portal_url: str, return_hosts: tuple[str, ...] = ()) -> str:
    """Where to send the browser after signing in: `return_url` when it is safe, else portal_url."""
    return follow(return_url, portal_url, return_hosts)[0]


def follow(return_url: str | None, portal_url: str, return_hosts: tuple[str, ...] = ()) -> tuple[str, str | None]:
    """(return_target, why `return_url` was refused): the reason is None when it is followed or absent."""
    if not return_url:
        return portal_url, None
    if _CONTROL_OR_SPACE.search(return_url) or "\\" in return_url:
        # browsers drop tabs and newlines and read \ as /: "/\t/evil" would be "//evil"
        return portal_url, "it holds a space, a control character or a backslash"
    # Non-ASCII is percent-encoded (as a browser would) so that the Location header stays ASCII.
    url = quote(return_url, safe="!#$%&'()*+,-./:;=?@[]~_")
    parts = urlsplit(url)
    if not parts.scheme and (parts.netloc or url.startswith("//")):
        return portal_url, "it names another host (//...)"
    if not parts.scheme:
        url = urljoin(portal_url, url)  # a path is SmarterTrack's, on portal_url's site
        parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return portal_url, f"its scheme is not http or https ({parts.scheme or 'none'})"
    if "@" in parts.netloc:
        return portal_url, "it holds user information (@)"
    if not _allowed(parts, portal_url, return_hosts):
        return portal_url, "its host is neither portal_url's nor one of [sso] return_hosts"
    return url, None


def _allowed(parts, portal_url: str, return_hosts: tuple[str, ...]) -> bool:
    try:
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:  # a port that is not a number
        return False
    if not host:
        return False
    port = port or (443 if parts.scheme == "https" else 80)
    if host == (urlsplit(portal_url).hostname or "").lower():
        return True
    for allowed in return_hosts:  # "host" (any port) or "host:port", as [sso] return_hosts validated them
        entry = urlsplit("//" + allowed)
        if entry.hostname == host and entry.port in (None, port):
            return True
    return False


class Csrf:
    """Issues and checks the double-submit token; `key` is the host's secret (lockout.store.secret_key)."""

    def __init__(self, key: bytes, seconds: int = CSRF_SECONDS):
        self._key = hmac.new(key, b"ssobridge sso csrf", hashlib.sha256).digest()  # its own key, not the shield's
        self.seconds = seconds

    @staticmethod
    def cookie_name(https: bool) -> str:
        return "__Host-ssobridge-csrf" if https else "ssobridge-csrf"

    @staticmethod
    def nonce(current: str | None) -> str:
        """The browser's nonce, kept when it has a well-formed one (two open tabs both stay valid)."""
        return current if current and _NONCE.fullmatch(current) else secrets.token_urlsafe(24)

    def token(self, nonce: str, now: float | None = None) -> str:
        issued = str(int(now if now is not None else time.time()))
        return f"{issued}.{self._mac(nonce, issued)}"

    def valid(self, nonce: str | None, token: str | None, now: float | None = None) -> bool:
        if not nonce or not token or not _NONCE.fullmatch(nonce):
            return False
        issued, _, mac = token.partition(".")
        if not issued.isdigit() or not hmac.compare_digest(mac.encode(), self._mac(nonce, issued).encode()):
            return False
        age = (now if now is not None else time.time()) - int(issued)
        return 0 <= age <= self.seconds

    def _mac(self, nonce: str, issued: str) -> str:
        return hmac.new(self._key, f"{nonce}|{issued}".encode(), hashlib.sha256).hexdigest()

    def set_cookie(self, nonce: str, https: bool) -> str:
        secure = "; Secure" if https else ""
        return f"{self.cookie_name(https)}={nonce}; Max-Age={self.seconds}; Path=/{secure}; HttpOnly; SameSite=Strict"


def set_cookie(name: str, value: str, expires: datetime, domain: str, path: str, https: bool) -> str:
    """The forms authentication cookie: HttpOnly, SameSite=Lax (it must come along when SmarterTrack is
    reached by a link), Secure over HTTPS, Expires = the ticket's expiration."""
    parts = [f"{name}={value}", f"Expires={format_datetime(expires.astimezone(timezone.utc), usegmt=True)}"]
    if domain:
        parts.append(f"Domain={domain}")
    parts.append(f"Path={path}")
    if https:
        parts.append("Secure")
    parts += ["HttpOnly", "SameSite=Lax"]
    return "; ".join(parts)


def clear_cookie(name: str, domain: str, path: str, https: bool) -> str:
    """The same cookie (name, domain, path), empty and expired: the browser drops it."""
    return set_cookie(name, "", datetime(1970, 1, 1, tzinfo=timezone.utc), domain, path, https) \
        .replace("; Path=", "; Max-Age=0; Path=", 1)
