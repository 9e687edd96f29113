"""`ssobridge check` and `ssobridge test-login`: what an administrator runs when something is wrong.

Both print plain sentences: which directory and server, what was tried, what went wrong and what to
change. They use the same directory layer and login provider as the service, so what they show is
what SmarterTrack would get.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, TextIO
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from .app import shield
from .config import Config, DirectorySettings
from .directory import DirectorySet, DirectoryUnavailable, parse_login_name
from .directory.probes import peer_certificate, probe_searches, service_bind_problem
from .providers.base import Variables
from .policy import Explanation
from .providers.login import LoginProvider, LoginTrace
from .providers.requests import RequestProvider

# The user_filter with a wildcard for the name: does it match anyone at all?
WILDCARD = "*"

Print = Callable[[str], None]


def check(config: Config, out: TextIO) -> int:
    """Reach every server of every directory; 0 when all is well, 1 when anything is not."""
    say: Print = lambda line: print(line, file=out, flush=True)  # noqa: E731
    say(f"config: {config.source}: OK")
    if config.policy.enabled:
        say(f"rules: {len(config.policy.departments)} department(s), {len(config.policy.fields)} field rule(s), "
            f"{len(config.policy.ticket_rules)} ticket rule(s), {len(config.policy.chat_rules)} chat rule(s)")
    if not config.directories:
        say("no [[directory]] configured: the login provider is not enabled")
        return 0
    problems = 0
    say("directories:")
    for settings in config.directories:
        say(f"directory {settings.name} ({settings.type}), base DN {settings.base_dn}")
        for url in settings.urls:
            verdict = check_server(replace(settings, urls=(url,)))
            problems += verdict is not None
            say(f"  {url}: {'OK' if verdict is None else 'PROBLEM'}")
            for line in (verdict or "").splitlines():
                say(f"    {line}")
            if verdict is None:
                for line in check_searches(replace(settings, urls=(url,))):
                    problems += line.startswith("PROBLEM")
                    say(f"    {line}")
    problems += check_policy_groups(config, say)
    say("all checks passed" if not problems else f"{problems} problem(s) found")
    return 1 if problems else 0


def check_policy_groups(config: Config, say: Print) -> int:
    """Every group the rules name must exist in some directory; a typo would silently match nobody."""
    names = sorted(config.policy.group_names(), key=str.lower)
    if not names:
        return 0
    directories = DirectorySet.from_settings(config.directories)
    missing = 0
    try:
        for name in names:
            try:
                found = [d.name for d in directories.directories if d.group_exists(name)]
            except DirectoryUnavailable as e:
                say(f"  group {name!r}: could not be looked up: {e}")
                missing += 1
                continue
            if found:
                say(f"  group {name!r}: found in {', '.join(found)}")
            else:
                say(f"  group {name!r}: PROBLEM: named in the rules but not found in any directory "
                    f"(by DN, cn or sAMAccountName): the rule will match nobody")
                missing += 1
    finally:
        directories.close()
    return missing


def check_server(settings: DirectorySettings) -> str | None:
    """None when the TLS handshake and the service-account bind work; else what is wrong, in words."""
    problem = service_bind_problem(settings)
    if problem is None:
        return None
    text = problem.split(": ", 1)[-1]
    if "certificate" in text.lower():
        text += "\n" + explain_certificate(settings)
    return text


def check_searches(settings: DirectorySettings) -> list[str]:
    """TLS and service bind worked: does base_dn exist, and does user_filter find anyone at all?"""
    lines = ["TLS handshake and certificate OK" if _uses_tls(settings) else "plain LDAP (no TLS!)",
             f"service account {settings.bind_dn} bound"]
    probe = settings.user_filter.replace("{user}", WILDCARD).replace("{upn}", WILDCARD)
    found = probe_searches(settings, probe)
    if found.base_problem is not None:
        return lines + [f"PROBLEM: base_dn {settings.base_dn!r} cannot be read: {found.base_problem}"]
    lines.append("base_dn exists")
    if found.filter_problem is not None:
        return lines + [f"PROBLEM: user_filter is not a valid LDAP filter: {found.filter_problem}"]
    if found.example_dn is None:
        return lines + [f"PROBLEM: user_filter matches no entry under base_dn, whatever the username "
                        f"({probe}). Check the objectClass and the attribute names: Active Directory uses "
                        f"sAMAccountName and userPrincipalName, OpenLDAP usually uid; and check that "
                        f"base_dn holds the users."]
    return lines + [f"user_filter finds users (for example {found.example_dn})"]


def _uses_tls(settings: DirectorySettings) -> bool:
    return settings.start_tls or all(url.startswith("ldaps://") for url in settings.urls)


def explain_certificate(settings: DirectorySettings) -> str:
    """The certificate the server presents, next to what ca_file trusts, so the mismatch is visible."""
    url = urlsplit(settings.urls[0])
    try:
        der = peer_certificate(settings)
    except DirectoryUnavailable as e:
        return f"(could not fetch the server's certificate to show it: {e})"
    certificate = x509.load_der_x509_certificate(der)
    try:
        names = certificate.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        alternative = ", ".join(str(n.value) for n in names)
    except x509.ExtensionNotFound:
        alternative = "none (Python requires the host name in subjectAltName)"
    lines = [f"The server presents: subject {certificate.subject.rfc4514_string()}",
             f"  issued by {certificate.issuer.rfc4514_string()}",
             f"  names (subjectAltName): {alternative}",
             f"  valid until {certificate.not_valid_after_utc:%Y-%m-%d}",
             f"  the URL's host name is {url.hostname}"]
    if settings.ca_file:
        lines.append(f"ca_file {settings.ca_file} trusts: {'; '.join(_ca_subjects(settings.ca_file)) or 'nothing'}")
        lines.append("The certificate's issuer (or its root) must be in ca_file; the URL's host name must be "
                     "one of the certificate's names.")
    else:
        lines.append("No ca_file is set, so only the system trust store is used: set ca_file to the PEM file of "
                     "the CA that issued the certificate.")
    return "\n".join(lines)


def _ca_subjects(path: str) -> list[str]:
    try:
        certificates = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError):
        return []
    return [c.subject.rfc4514_string() for c in certificates]


def test_login(config: Config, username: str, password: str | None, out: TextIO) -> int:
    """One login as SmarterTrack would make it, explained. 0 = OK, 1 = FAIL, 2 = error."""
    say: Print = lambda line: print(line, file=out, flush=True)  # noqa: E731
    if not config.directories:
        say("no [[directory]] configured: the login provider is not enabled")
        return 2
    directories = DirectorySet.from_settings(config.directories)
    provider = LoginProvider(directories, config.messages, config.login, shield(config))
    operation = "GetSignInCookieInfo" if password is None else "Authenticate"
    trace = LoginTrace(operation, username)
    pairs = [("loginUsername", username)] + ([("loginPassword", password)] if password is not None else [])
    try:
        result = (provider.sign_in_cookie if password is None else provider.authenticate)(
            Variables.from_pairs(pairs), trace)
    finally:
        directories.close()
    note = "; no password: single sign-on" if password is None else ""
    say(f"operation:  {operation} (as SmarterTrack calls it{note})")
    say(f"username:   {username!r}")
    if trace.directory is not None:
        say(f"directory:  {trace.directory.name} ({trace.directory.settings.type}), "
            f"base DN {trace.directory.settings.base_dn}")
    if trace.search_filter:
        say(f"filter:     {trace.search_filter}")
    if trace.entry is not None:
        say(f"server:     {trace.entry.server}")
        say(f"entry:      {trace.entry.dn}")
    if trace.state is not None:
        how = "bind as the entry's DN" if password is not None else "account state read from its attributes"
        say(f"check:      {how}: {trace.state.name}")
    if trace.reason:
        say(f"reason:     {trace.reason}")
    if trace.error:
        say(f"error:      {trace.error}")
    if trace.reason == "no such user" and trace.directory is not None:
        for line in check_searches(trace.directory.settings):
            say(f"            {line}")
    say(f"result:     Success={str(result.success).lower()} Message={result.message!r}")
    for name, value in result.outputs:
        say(f"            {name}={value}")
    if not result.success or trace.reason == "directory unavailable":
        return 2
    return 0 if ("Authentication", "OK") in result.outputs else 1


def explain(config: Config, who: str, department: str, location: str, subject: str, custom: list[str],
            out: TextIO) -> int:
    """How GetCustomFieldOptions, StartTicket and StartChat decide for this person and department."""
    say: Print = lambda line: print(line, file=out, flush=True)  # noqa: E731
    if not config.directories or not config.policy.enabled:
        say("no [[directory]] or no rules ([[department]], [[field]], [[ticket_rule]], [[chat_rule]]) configured")
        return 2
    directories = DirectorySet.from_settings(config.directories, config.policy.attributes())
    provider = RequestProvider(directories, config.policy)
    as_email = "@" in who and not any(d.claims(parse_login_name(who)) for d in directories.directories
                                      if parse_login_name(who))
    base = [("emailFrom" if as_email else "loginUsername", who), ("departmentName", department)]
    fields = [tuple(item.split("=", 1)) for item in custom]
    pairs = base + [(f"cf_{name}", value) for name, value in fields]
    calls = [
        ("GetCustomFieldOptions", provider.custom_field_options, [("location", location)]),
        ("StartTicket", provider.start_ticket, [("subject", subject), ("ticketNumber", "EXPLAIN")]),
        ("StartChat", provider.start_chat, []),
    ]
    say(f"{'email' if as_email else 'username'}: {who!r}, department {department!r}, location {location}"
        + (f", subject {subject!r}" if subject else "") + "".join(f", cf_{n}={v!r}" for n, v in fields))
    try:
        for operation, handler, extra in calls:
            explanation = Explanation()
            result = handler(Variables.from_pairs(pairs + extra), explanation)
            say(f"\n{operation}:")
            for decision in explanation.decisions:
                mark = "->" if decision.applied else "  "
                say(f"  {mark} {decision.rule}: {decision.why}")
            say(f"  result: Success={str(result.success).lower()} Message={result.message!r}")
            for name, value in result.outputs:
                say(f"    {name}={value}")
            for change in result.fields:
                say(f"    field {change.name!r}: first_step={change.first_step} "
                    f"options={list(change.list_options) if change.list_options is not None else 'unchanged'} "
                    f"required={_maybe(change.required)} visible={_maybe(change.visible)}")
    finally:
        directories.close()
    return 0


def _maybe(value: bool | None) -> str:
    return "unchanged" if value is None else str(value).lower()
