"""The sign-in site: GET/POST /sso/login and GET /sso/logout, a small WSGI application (app.py routes /sso/ here).

    /sso/login?ReturnUrl=...
      with a kerberos_keytab: no Authorization header -> 401, WWW-Authenticate: Negotiate, and the sign-in
        form as the body (a browser without a Kerberos ticket shows it: IIS's Negotiate-with-fallback);
        a Negotiate token -> the principal -> its directory entry -> the name for the ticket, which must then
        pass GetSignInCookieInfo's own check (LoginProvider.sign_in_cookie: disabled, locked, expired, ...)
        -> the cookie. A token that fails, or a principal with no entry, falls back to the form.
      the form (POST): CSRF-checked (rules.Csrf), then Authenticate's path (LoginProvider.authenticate, the
        lockout shield included); a refusal shows its Message with the username kept, never the password.
      success: the forms authentication cookie (rules.set_cookie) and 302 to rules.return_target(ReturnUrl).
    /sso/logout: the cookie cleared, 302 to portal_url.

The name in the ticket is what SmarterTrack passes to GetSignInCookieInfo: DOMAIN\\account (netbios_domain
and sAMAccountName or uid; the account alone when the directory has no netbios_domain) or, with
ticket_username = "upn", userPrincipalName (else account@first upn_suffix).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import parse_qs, urlencode

import jinja2

from ..config import SsoSettings, TicketUsername
from ..directory import Directory, DirectorySet, Outcome, UserEntry
from ..lockout.store import secret_key
from ..providers.base import ProviderResult, Variables
from ..providers.login import UNAVAILABLE, LoginProvider, LoginTrace
from .cookie import MachineKey, Ticket, issue_cookie
from .rules import CSRF_FIELD, Csrf, clear_cookie, follow, set_cookie

log = logging.getLogger("ssobridge.sso")

# Read with every user search when [sso] is enabled: what ticket_name builds the name from.
SIGN_IN_ATTRIBUTES = ("sAMAccountName", "uid", "userPrincipalName")
MAX_FORM_BYTES = 16 * 1024
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
KERBEROS_FAILED = "Automatic sign-in did not work on this computer. Sign in with your username and password."
NO_ACCOUNT = "Your Windows sign-in has no helpdesk account. Sign in with your username and password."
CSRF_REFUSED = "This sign-in page has expired or was not sent by this site. Please sign in again."
KERBEROS_ONLY = "Sign-in here works only from the company's computers. Contact your IT helpdesk."
NO_NAME = "Your account has no account name the helpdesk can use. Contact your IT helpdesk."
# Inline styles only; no script, no frames; images (the logo) from anywhere.
SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; "
                                "frame-ancestors 'none'; base-uri 'none'"),
    ("X-Frame-Options", "DENY"), ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
]


def ticket_name(directory: Directory, entry: UserEntry, username_form: TicketUsername) -> str | None:
    """The name GetSignInCookieInfo will receive for this entry; None when the entry has no account name."""
    account = entry.first_text("sAMAccountName") or entry.first_text("uid")
    if username_form is TicketUsername.UPN:
        upn = entry.first_text("userPrincipalName")
        suffixes = directory.settings.upn_suffixes
        if upn or (account and suffixes):
            return upn or f"{account}@{suffixes[0]}"
    if account is None:
        return None
    domain = directory.settings.netbios_domain
    return f"{domain}\\{account}" if domain else account


@dataclass
class Response:
    status: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class Request:
    def __init__(self, environ: dict):
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET")
        self.https = environ.get("wsgi.url_scheme") == "https"
        try:
            self.query = parse_qs(environ.get("QUERY_STRING", ""), max_num_fields=20)
        except ValueError:  # more fields than any sign-in link has: read as none
            self.query = {}

    def param(self, name: str, values: dict[str, list[str]] | None = None) -> str | None:
        """The first value of `name` (case-insensitively, as ASP.NET reads ReturnUrl)."""
        values = self.query if values is None else values
        return next((v[0] for k, v in values.items() if k.lower() == name.lower()), None)

    def cookie(self, name: str) -> str | None:
        """The first cookie of this name. Not http.cookies: SimpleCookie drops the whole header for one cookie it
        cannot parse (a neighbour's JSON value, a space, no "="), which would refuse every sign-in as expired."""
        for pair in self.environ.get("HTTP_COOKIE", "").split(";"):
            key, _, value = pair.strip().partition("=")
            if key == name:
                return value
        return None

    def form(self) -> dict[str, list[str]] | None:
        """The urlencoded body; None when it is not one (or too large)."""
        try:
            length = int(self.environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if length > MAX_FORM_BYTES or "x-www-form-urlencoded" not in self.environ.get("CONTENT_TYPE", ""):
            return None
        try:
            body = self.environ["wsgi.input"].read(length).decode("utf-8")
            return parse_qs(body, keep_blank_values=True, max_num_fields=20, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            return None


class SignIn:
    """The WSGI application of /sso/."""

    def __init__(self, settings: SsoSettings, login: LoginProvider, directories: DirectorySet, data_dir: str):
        self.settings = settings
        self.key = MachineKey.from_settings(settings)
        self.login = login
        self.directories = directories
        self.csrf = Csrf(secret_key(Path(data_dir or ".")))
        self.acceptor = None
        if settings.kerberos_keytab:
            from .kerberos import KerberosAcceptor  # pyspnego and GSSAPI only where Kerberos is configured
            self.acceptor = KerberosAcceptor(settings.kerberos_keytab, settings.kerberos_principal)
        environment = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                                         undefined=jinja2.StrictUndefined)
        self._login_page = environment.get_template("sso_login.html.j2")
        self._notice_page = environment.get_template("sso_notice.html.j2")
        link = settings.accent_color if _contrast(settings.accent_color, "#ffffff") >= 4.5 else "#1b1f24"
        self.look = {"page_title": settings.page_title, "logo_url": settings.logo_url,
                     "accent": settings.accent_color, "on_accent": _readable_on(settings.accent_color), "link": link}

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        path = environ.get("PATH_INFO", "").lower().rstrip("/")
        if path == "/sso/login" and request.method in ("GET", "HEAD"):
            response = self.get(request)
        elif path == "/sso/login" and request.method == "POST":
            response = self.post(request)
        elif path == "/sso/logout" and request.method in ("GET", "HEAD", "POST"):
            response = self.logout(request)
        elif path in ("/sso/login", "/sso/logout"):
            response = Response("405 Method Not Allowed", [("Allow", "GET, HEAD, POST")])
        else:
            response = self.notice(request, "404 Not Found", "There is no such page.", None)
        headers = [*response.headers, *SECURITY_HEADERS, ("Content-Length", str(len(response.body)))]
        start_response(response.status, headers)
        return [b"" if request.method == "HEAD" else response.body]

    def get(self, request: Request) -> Response:
        return_url = request.param("ReturnUrl")
        if self.acceptor is None:
            return self.form(request, return_url)
        authorization = request.environ.get("HTTP_AUTHORIZATION")
        if authorization and authorization.lower().startswith("negotiate "):
            return self.kerberos(request, authorization, return_url)
        challenge = [self.acceptor.challenge_header()]
        if not self.settings.form:
            return self.notice(request, "401 Unauthorized", KERBEROS_ONLY, return_url, challenge)
        return self.form(request, return_url, status="401 Unauthorized", headers=challenge)

    def kerberos(self, request: Request, authorization: str, return_url: str | None) -> Response:
        result = self.acceptor.accept(authorization)
        if result.principal is None:
            log.warning("event=sso_kerberos outcome=FAIL error=%r note=%r", result.error,
                        "the sign-in form is offered instead")
            return self.fallback(request, return_url, KERBEROS_FAILED)
        found = self.directories.find_principal(result.principal)
        if found.outcome is Outcome.UNAVAILABLE:
            log.error("event=directory_unavailable operation=SignInPage principal=%r error=%r", result.principal,
                      found.error)
            return self.notice(request, "503 Service Unavailable", self.login.messages[UNAVAILABLE], return_url)
        if found.outcome is Outcome.AMBIGUOUS:
            log.error("event=ambiguous_user operation=SignInPage principal=%r error=%r", result.principal, found.error)
        if found.outcome is not Outcome.FOUND:
            log.warning("event=sso_kerberos outcome=FAIL principal=%r reason='no directory entry'", result.principal)
            return self.fallback(request, return_url, NO_ACCOUNT)
        name = ticket_name(found.directory, found.entry, self.settings.ticket_username)
        if name is not None:  # the cookie only if GetSignInCookieInfo will accept its name: the same check, now
            checked = self.login.sign_in_cookie(Variables.from_pairs([("loginUsername", name)]))
            if not _ok(checked):
                return self.notice(request, "403 Forbidden", checked.message, return_url)
        mutual = [("WWW-Authenticate", f"Negotiate {result.response_token}")] if result.response_token else []
        return self.signed_in(request, name, return_url, "kerberos", mutual)

    def fallback(self, request: Request, return_url: str | None, note: str) -> Response:
        if not self.settings.form:
            return self.notice(request, "403 Forbidden", KERBEROS_ONLY, return_url)
        return self.form(request, return_url, note=note)

    def post(self, request: Request) -> Response:
        values = request.form()
        if values is None:
            return self.notice(request, "400 Bad Request", CSRF_REFUSED, None)
        return_url = request.param("ReturnUrl", values)
        if not self.settings.form:
            return self.notice(request, "403 Forbidden", KERBEROS_ONLY, return_url)
        if not self.csrf.valid(request.cookie(Csrf.cookie_name(request.https)), request.param(CSRF_FIELD, values)):
            log.warning("event=sso_csrf_refused remote=%s", request.environ.get("REMOTE_ADDR"))
            return self.notice(request, "403 Forbidden", CSRF_REFUSED, return_url)
        username = request.param("username", values) or ""
        trace = LoginTrace("SignInPage", username)
        result = self.login.authenticate(Variables.from_pairs(
            [("loginUsername", username), ("loginPassword", request.param("password", values) or "")]), trace)
        if not result.success:  # an input missing
            return self.form(request, return_url, username=username,
                             message="Enter your username and password.", status="400 Bad Request")
        if not _ok(result):
            return self.form(request, return_url, username=username, message=result.message)
        return self.signed_in(request, ticket_name(trace.directory, trace.entry, self.settings.ticket_username),
                              return_url, "form")

    def signed_in(self, request: Request, name: str | None, return_url: str | None, method: str,
                  headers: list[tuple[str, str]] = ()) -> Response:
        if name is None:
            log.error("event=sso_no_account_name note=%r", "the entry has no sAMAccountName or uid")
            return self.notice(request, "403 Forbidden", NO_NAME, return_url)
        s = self.settings
        ticket = Ticket.new(name, minutes=s.ticket_minutes, cookie_path=s.cookie_path)
        target, refused = follow(return_url, s.portal_url, s.return_hosts)
        if refused:
            log.warning("event=sso_return_url_refused return_url=%r target=%r reason=%r", return_url, target, refused)
        log.info("event=sso_sign_in method=%s name=%r expires=%s target=%r", method, name,
                 ticket.expiration.strftime("%Y-%m-%dT%H:%M:%SZ"), target)
        cookie = set_cookie(s.cookie_name, issue_cookie(self.key, ticket), ticket.expiration, s.cookie_domain,
                            s.cookie_path, request.https)
        return Response("302 Found", [("Location", target), ("Set-Cookie", cookie), *headers])

    def logout(self, request: Request) -> Response:
        s = self.settings
        return Response("302 Found", [("Location", s.portal_url),
                                      ("Set-Cookie", clear_cookie(s.cookie_name, s.cookie_domain, s.cookie_path,
                                                                  request.https))])

    def form(self, request: Request, return_url: str | None, username: str = "", message: str | None = None,
             note: str | None = None, status: str = "200 OK", headers: list[tuple[str, str]] = ()) -> Response:
        nonce = Csrf.nonce(request.cookie(Csrf.cookie_name(request.https)))
        html = self._login_page.render(**self.look, csrf=self.csrf.token(nonce), return_url=return_url or "",
                                       username=username, message=message, note=note)
        return _html(status, html, [("Set-Cookie", self.csrf.set_cookie(nonce, request.https)), *headers])

    def notice(self, request: Request, status: str, message: str, return_url: str | None,
               headers: list[tuple[str, str]] = ()) -> Response:
        retry = "login?" + urlencode({"ReturnUrl": return_url}) if return_url else "login"
        html = self._notice_page.render(**self.look, message=message, retry=retry,
                                        portal_url=self.settings.portal_url)
        return _html(status, html, list(headers))


def _ok(result: ProviderResult) -> bool:
    return result.success and ("Authentication", "OK") in result.outputs


def _html(status: str, html: str, headers: list[tuple[str, str]]) -> Response:
    return Response(status, [("Content-Type", "text/html; charset=utf-8"), *headers], html.encode("utf-8"))


def _luminance(color: str) -> float:
    """WCAG relative luminance of #rgb or #rrggbb."""
    digits = color[1:] if len(color) == 7 else "".join(c * 2 for c in color[1:])
    channels = [int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(first: str, second: str) -> float:
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _readable_on(color: str) -> str:
    """White or near-black text on the accent colour, whichever contrasts more."""
    return "#ffffff" if _contrast(color, "#ffffff") >= _contrast(color, "#1b1f24") else "#1b1f24"
