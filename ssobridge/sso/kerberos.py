"""Kerberos (HTTP Negotiate, RFC 4559) for /sso/login: a domain PC's browser signs its user in, no password.

The API the sign-in routes and `check` use:

    acceptor = KerberosAcceptor(keytab="/etc/ssobridge/http.keytab", principal="HTTP/sso.example.com@EXAMPLE.COM")
    result = acceptor.accept(request.headers.get("Authorization"))   # -> KerberosResult, never raises for a token
    result.principal        # "jdoe@EXAMPLE.COM" on success, else None
    result.response_token   # base64 for `WWW-Authenticate: Negotiate <token>` (mutual authentication), or None
    result.error            # None on success, else a plain reason ("no Negotiate token", "the ticket ...")
    acceptor.challenge_header()   # ("WWW-Authenticate", "Negotiate"): with the 401 that offers Kerberos
    acceptor.verify_keytab()      # None when the keytab works, else what is wrong, in words (for `check`)

The principal maps to its directory entry with DirectorySet.find_principal (ssobridge/directory/directory.py).

How: on Linux (and macOS) through GSSAPI (MIT krb5, Python `gssapi`, installed with pyspnego[kerberos]); the
keytab is named in the credential store of this acceptor only, so no process-wide KRB5_KTNAME is set and
two acceptors with different keytabs can live in one process (tests, `check`). GSSAPI's SPNEGO mechanism
unwraps the browser's Negotiate token. A `principal` of None accepts a ticket for any principal in the
keytab. On Windows through SSPI with pyspnego: the service account the process runs as decrypts the
ticket, the keytab is not used (SSPI gives its own name form, DOMAIN\\user, which find_principal maps too).

A Negotiate token that is not Kerberos (NTLM, from a PC outside the domain or a browser not trusting the
site) is an error like any other: the route then shows the sign-in form.

verify_keytab does what a browser would, with the keytab's own key as the client (`kinit -k`): a ticket-
granting ticket for the principal from the KDC, a service ticket for the principal itself, and accept().
The principal must be a client name the KDC knows: Windows' `ktpass -mapuser` sets the account's
userPrincipalName to it; with `samba-tool spn add`, set userPrincipalName as well (docs/smartertrack-setup.md).

The Python modules for all this come with ssobridge's optional `kerberos` extra (INSTALL_EXTRA); missing_modules()
says which of them do not import here, so serve, check and reload refuse a Kerberos config before they start
(app.require_installed) instead of every Negotiate attempt failing on an ImportError.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import os
import re
import sys
from dataclasses import dataclass

CHALLENGE = ("WWW-Authenticate", "Negotiate")
# What this module imports, from the extra (pyspnego[kerberos]: pyspnego, and on Linux gssapi and krb5, which
# build against MIT krb5). SSPI on Windows needs pyspnego only.
MODULES = ("spnego",) if sys.platform == "win32" else ("gssapi", "krb5", "spnego")
INSTALL_EXTRA = "pip install 'ssobridge[kerberos]'"


@dataclass(frozen=True)
class KerberosResult:
    """One Negotiate attempt: the client's principal, or the reason there is none."""

    principal: str | None = None  # "jdoe@EXAMPLE.TEST" (GSSAPI), "EXAMPLE\\jdoe" (SSPI)
    response_token: str | None = None  # base64 for "WWW-Authenticate: Negotiate <token>" on the answer
    error: str | None = None


class KerberosAcceptor:
    """The service side of Negotiate with one keytab (and optionally one principal in it)."""

    def __init__(self, keytab: str, principal: str | None):
        self.keytab = keytab
        self.principal = principal

    @staticmethod
    def challenge_header() -> tuple[str, str]:
        return CHALLENGE

    def accept(self, authorization_header: str | None) -> KerberosResult:
        """The principal of a one-round Negotiate exchange; an error in words for anything else."""
        token = _negotiate_token(authorization_header)
        if isinstance(token, str):
            return KerberosResult(error=token)
        try:
            if sys.platform == "win32":
                return _accept_sspi(token)
            return self._accept_gssapi(token)
        except Exception as error:  # the token is the client's to get wrong: a reason, not a traceback
            return KerberosResult(error=_reason(error))

    def _accept_gssapi(self, token: bytes) -> KerberosResult:
        import gssapi

        context = gssapi.SecurityContext(creds=self._credentials(), usage="accept")
        answer = context.step(token)
        if not context.complete:
            return KerberosResult(error="the Negotiate exchange needs more than one round (not Kerberos?)")
        principal = str(context.initiator_name).rstrip("\x00")  # python-gssapi may keep the C string's NUL
        return KerberosResult(principal=principal, response_token=base64.b64encode(answer).decode() if answer
                              else None)

    def _credentials(self):
        import gssapi

        name = gssapi.Name(self.principal, gssapi.NameType.kerberos_principal) if self.principal else None
        return gssapi.Credentials(name=name, usage="accept", store={"keytab": self.keytab})

    def verify_keytab(self) -> str | None:
        """None when a ticket the KDC issues for the principal is accepted with the keytab; else what is wrong."""
        if sys.platform == "win32":
            return None if not self.keytab else "a keytab is not used on Windows (SSPI uses the service account)"
        if not os.path.isfile(self.keytab):
            return f"the keytab {self.keytab} does not exist"
        if not os.access(self.keytab, os.R_OK):
            return f"the keytab {self.keytab} cannot be read by this process"
        held = _keytab_principals(self.keytab)
        if isinstance(held, str):
            return f"the keytab {self.keytab} cannot be read: {held}"
        if not held:
            return f"the keytab {self.keytab} holds no key"
        # krb5 looks a principal up in a keytab by its exact name; one without a realm gets the default realm.
        if self.principal and "@" in self.principal and self.principal not in held:
            return f"the keytab {self.keytab} holds no key for {self.principal}, only for {', '.join(held)}"
        principal = self.principal or held[0]
        service, _, host = principal.partition("@")[0].partition("/")
        if not host:
            return f"{principal} is not a service principal (SERVICE/host@REALM, e.g. HTTP/sso.example.com@REALM)"
        try:
            import spnego

            client = spnego.client(spnego.KerberosKeytab(keytab=f"FILE:{self.keytab}", principal=principal),
                                   hostname=host, service=service, protocol="kerberos")
            token = client.step()
        except Exception as error:
            reason = _reason(error)
            if "Preauthentication failed" in reason:
                reason += (" (the keytab's key is not the account's current one: was its password reset after "
                           "the keytab was made?)")
            return f"the KDC gave no ticket to {principal} with the keytab's key: {reason}"
        result = self.accept("Negotiate " + base64.b64encode(token).decode())
        if result.error:
            return f"the keytab cannot accept a ticket the KDC issued for {principal}: {result.error}"
        return None


def missing_modules() -> list[str]:
    """Each module of MODULES that does not import here: its name when it is not installed, else with why,
    e.g. ["gssapi (libgssapi_krb5.so.2: cannot open shared object file ...)"].

    Imported, not only looked up (importlib.util.find_spec): a module whose C library is missing (libgssapi_krb5
    removed after the build) is found, and fails only when imported. About 0.1 s, once per process."""
    missing = []
    for name in MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            missing.append(name if error.name == name else f"{name} ({error})")
        except (ImportError, OSError) as error:
            missing.append(f"{name} ({error})")
    return missing


def _negotiate_token(header: str | None) -> bytes | str:
    """The token of "Negotiate <base64>", or why there is none."""
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() != "negotiate" or not value.strip():
        return "no Negotiate token"
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return "the Negotiate token is not base64"


def _accept_sspi(token: bytes) -> KerberosResult:
    import spnego

    context = spnego.server(protocol="negotiate")
    answer = context.step(token)
    if not context.complete:
        return KerberosResult(error="the Negotiate exchange needs more than one round (NTLM?)")
    if context.negotiated_protocol != "kerberos":
        return KerberosResult(error=f"the client used {context.negotiated_protocol}, not Kerberos")
    return KerberosResult(principal=context.client_principal,
                          response_token=base64.b64encode(answer).decode() if answer else None)


def _keytab_principals(keytab: str) -> list[str] | str:
    """The principals the keytab holds keys for, each once, in its order; or why krb5 cannot read it."""
    import krb5

    try:
        entries = list(krb5.kt_resolve(krb5.init_context(), f"FILE:{keytab}".encode()))
    except krb5.Krb5Error as error:
        reason = _reason(error)
        if "format version" in reason:  # what krb5 says of any file that is not a keytab, an empty one too
            reason += " (not a keytab: make one with ktpass or `samba-tool domain exportkeytab`)"
        return reason
    names = (e.principal.name.decode() if isinstance(e.principal.name, bytes) else str(e.principal) for e in entries)
    return list(dict.fromkeys(names))


def _reason(error: BaseException) -> str:
    """The innermost plain message of GSSAPI, krb5 or pyspnego, without codes and boilerplate."""
    while getattr(error, "base_error", None) is not None:  # pyspnego wraps the library's error
        error = error.base_error
    if hasattr(error, "get_all_statuses"):  # gssapi's GSSError: the mechanism's (minor) words say most
        minor = error.get_all_statuses(error.min_code, False) if error.min_code else []
        text = "; ".join(minor or error.get_all_statuses(error.maj_code, True))
    else:
        text = re.sub(r" -?\d+$", "", str(error))  # krb5.Krb5Error ends with its error code
    return " ".join(text.split()) or type(error).__name__
