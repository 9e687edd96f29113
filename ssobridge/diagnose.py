"""`ssobridge check`, `test-login` and `explain`: what an administrator runs when something is wrong.

All three print plain sentences: which directory and server, what was tried, which rule decided, what
went wrong and what to change. They use the same directory layer and providers as the service, so what
they show is what SmarterTrack would get.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, TextIO
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from .app import shield
from .certificates import expiry_line, pinned_certificate, server_certificate_line
from .config import Config, DirectorySettings
from .directory import DirectorySet, DirectoryUnavailable, parse_login_name
from .directory.directory import service_guard
from .directory.discovery import DiscoveryError, describe_found, find_domain_controllers, server_urls
from .directory.probes import ServerProbe, peer_certificate, probe_server
from .providers.base import Variables
from .policy import Explanation
from .providers.login import LoginProvider, LoginTrace
from .providers.requests import Lookup, RequestProvider
from .sso.kerberos import KerberosAcceptor

# The user_filter with a wildcard for the name: does it match anyone at all?
WILDCARD = "*"

Print = Callable[[str], None]


def check(config: Config, out: TextIO, force: bool = False) -> int:
    """Reach every server of every directory; 0 when all is well, 1 when anything is not. A certificate (the
    servers', ssobridge's own) that expires within WARN_DAYS is a WARNING line, not a problem.

    One connection per server does every probe, so the service account binds at most once per server,
    and not at all after a refusal: within a directory the first refusal stops the check (the other
    servers would refuse too, and each refused bind counts toward the lockout), and a refusal recorded
    by any process within service_retry_seconds is reported instead of binding again, unless `force`.
    """
    say: Print = lambda line: print(line, file=out, flush=True)  # noqa: E731
    say(f"config: {config.source}: OK")
    now, problems, warnings = time.time(), 0, 0
    if config.server.tls_cert:
        line = server_certificate_line(config.server.tls_cert, now)
        problems, warnings = int(line.startswith("PROBLEM")), int(line.startswith("WARNING"))
        say(line)
    if config.sso.enabled and config.sso.kerberos_keytab:
        for line in kerberos_lines(config.sso.kerberos_keytab, config.sso.kerberos_principal):
            problems += "PROBLEM" in line
            say(line)
    if config.policy.enabled:
        say(f"rules: {len(config.policy.departments)} department(s), {len(config.policy.fields)} field rule(s), "
            f"{len(config.policy.ticket_rules)} ticket rule(s), {len(config.policy.chat_rules)} chat rule(s)")
    if not config.directories:
        say("no [[directory]] configured: the login provider is not enabled")
        return 1 if problems else 0
    group_names = sorted(config.policy.group_names(), key=str.lower)
    found_in: dict[str, list[str]] = {name: [] for name in group_names}
    not_looked_up: list[str] = []  # directories whose groups could not be looked up, with the reason
    say("directories:")
    for settings in config.directories:
        say(f"directory {settings.name} ({settings.type}), base DN {settings.base_dn}")
        settings, line = discovered(settings)
        if line:
            say(f"  {line}")
        if not settings.urls:
            problems += 1
            not_looked_up.append(f"{settings.name}: no server found in DNS")
            continue
        if settings.ca_file and (pinned := pinned_certificate(settings.ca_file)) is not None:
            say(f"  ca_file {settings.ca_file}: the server's own certificate ({pinned.subject.rfc4514_string()}), "
                "not a CA: it is trusted as itself, so when it is renewed ca_file must be replaced")
        guard = service_guard(settings, config.server.data_dir, since=time.time() if force else 0.0)
        earlier = guard.refusal()
        if earlier is not None:
            problems += 1
            say(f"  service account: PROBLEM: {earlier.describe()}")
            say(f"    not bound again, so that it is not locked out (service_retry_seconds = "
                f"{settings.service_retry_seconds:g}); {FIX_SERVICE_ACCOUNT}")
            not_looked_up.append(f"{settings.name}: the service account was refused")
            continue
        groups_pending, unreached = bool(group_names), "no server could be reached"
        counters_line = None
        for url in settings.urls:
            refusal = guard.refusal()
            if refusal is not None:
                problems, unreached = problems + 1, "the service account was refused"
                say(f"  {url}: NOT TRIED: the service account was refused by {refusal.server}; the other servers "
                    f"would refuse it too, and each refused bind counts toward its lockout")
                continue
            probe = probe_server(settings, url, guard, _wildcard_filter(settings),
                                 group_names if groups_pending else (), lockout_counters=counters_line is None)
            counters_line = counters_line or lockout_counters_line(probe.lockout_counters)
            lines = server_lines(settings, url, probe)
            if probe.certificate_expires is not None:
                lines.insert(1 if probe.problem is None else len(lines),
                             expiry_line("certificate", probe.certificate_expires, now))
            problems += sum(line.startswith("PROBLEM") for line in lines) + (probe.problem is not None)
            warnings += sum(line.startswith("WARNING") for line in lines)
            say(f"  {url}: {'OK' if probe.problem is None else 'PROBLEM'}")
            for line in lines:
                say(f"    {line}")
            if probe.problem is None and groups_pending and probe.groups_problem is None:
                groups_pending = False
                for name, found in probe.groups.items():
                    if found:
                        found_in[name].append(settings.name)
            elif probe.refused or probe.groups_problem is not None:
                unreached = "the service account was refused" if probe.refused else probe.groups_problem
        if counters_line:
            say(f"  {counters_line}")
        if groups_pending:
            not_looked_up.append(f"{settings.name}: {unreached}")
    problems += report_policy_groups(found_in, not_looked_up, say)
    noted = f", {warnings} warning(s)" if warnings else ""
    say(("all checks passed" if not problems else f"{problems} problem(s) found") + noted)
    return 1 if problems else 0  # a warning (a certificate expiring soon) alone leaves it 0


def discovered(settings: DirectorySettings) -> tuple[DirectorySettings, str]:
    """With a domain: the settings with the DCs DNS lists now as urls, and the line saying what was found
    ("" without a domain)."""
    if not settings.domain or settings.urls:
        return settings, ""
    try:
        found = find_domain_controllers(settings.domain, settings.nameservers, settings.connect_timeout)
    except DiscoveryError as e:
        return settings, f"discovery: PROBLEM: {e}"
    urls = server_urls(found, settings.start_tls)
    return replace(settings, urls=urls), f"discovery: {describe_found(found)}: {', '.join(urls)}"


def kerberos_lines(keytab: str, principal: str | None) -> list[str]:
    """`check`'s line for [sso] kerberos_keytab: does the KDC's ticket for the principal decrypt with it?
    The keytab is named by its absolute path: the config names it relative to the config file's folder."""
    keytab = os.path.abspath(keytab)
    problem = KerberosAcceptor(keytab, principal).verify_keytab()
    subject = f"kerberos: keytab {keytab}" + (f", principal {principal}" if principal else "")
    return [f"{subject}: OK" if problem is None else f"{subject}: PROBLEM: {problem}"]


FIX_SERVICE_ACCOUNT = ("fix bind_dn / bind_password (or the account in the directory), then run "
                       "`ssobridge check --force` to bind now")


def lockout_counters_line(counters: dict[str, bool]) -> str | None:
    """Whether the lockout shield reads the directory's own counters and policies, in one line; None when
    they were not probed (no server answered, the user_filter found nobody)."""
    if not counters:
        return None
    unreadable = [name for name, readable in counters.items() if not readable]
    if not unreadable:
        return (f"lockout counters: read by the service account ({', '.join(counters)}): the lockout shield "
                f"follows the directory's own counts")
    return (f"lockout counters: NOT readable by the service account: {', '.join(unreadable)}; ssobridge counts "
            f"wrong passwords itself instead (in data_dir: shared by this host's workers, not with other hosts), "
            f"and an unreadable policy counts as the strictest. Grant the service account read access to them.")


def report_policy_groups(found_in: dict[str, list[str]], not_looked_up: list[str], say: Print) -> int:
    """Every group the rules name must exist in some directory; a typo would silently match nobody."""
    missing = 0
    for name, directories in found_in.items():
        if directories:
            say(f"  group {name!r}: found in {', '.join(directories)}")
        elif not_looked_up:
            say(f"  group {name!r}: could not be looked up: {'; '.join(not_looked_up)}")
            missing += 1
        else:
            say(f"  group {name!r}: PROBLEM: named in the rules but not found in any directory "
                f"(by DN, cn or sAMAccountName): the rule will match nobody")
            missing += 1
    return missing


def search_lines(settings: DirectorySettings, data_dir: str) -> list[str]:
    """For test-login's "no such user": does base_dn exist, does user_filter find anyone at all? On the
    first server that answers, with one service bind (none while a refusal is remembered)."""
    guard = service_guard(settings, data_dir)
    settings = discovered(settings)[0]
    for url in settings.urls:
        probe = probe_server(settings, url, guard, _wildcard_filter(settings))
        if probe.problem is None or probe.refused or url == settings.urls[-1]:
            return server_lines(settings, url, probe)
    return []


def _wildcard_filter(settings: DirectorySettings) -> str:
    return settings.user_filter.replace("{user}", WILDCARD).replace("{upn}", WILDCARD)


def server_lines(settings: DirectorySettings, url: str, probe: ServerProbe) -> list[str]:
    """What one server's probe found, in words: what works, then the first problem."""
    if probe.problem is not None:
        text = probe.problem
        if probe.refused:
            text += f"\n{FIX_SERVICE_ACCOUNT}"
        elif "certificate" in text.lower():
            text += "\n" + explain_certificate(replace(settings, urls=(url,)))
        return text.splitlines()
    lines = ["TLS handshake and certificate OK" if _uses_tls(settings) else "plain LDAP (no TLS!)",
             f"service account {settings.bind_dn} bound"]
    if probe.base_problem is not None:
        return lines + [f"PROBLEM: base_dn {settings.base_dn!r} cannot be read: {probe.base_problem}"]
    lines.append("base_dn exists")
    if probe.filter_problem is not None:
        return lines + [f"PROBLEM: user_filter is not a valid LDAP filter: {probe.filter_problem}"]
    if probe.example_dn is None:
        return lines + [f"PROBLEM: user_filter matches no entry under base_dn, whatever the username "
                        f"({_wildcard_filter(settings)}). Check the objectClass and the attribute names: Active "
                        f"Directory uses sAMAccountName and userPrincipalName, OpenLDAP usually uid; and check "
                        f"that base_dn holds the users."]
    return lines + [f"user_filter finds users (for example {probe.example_dn})"]


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
    directories = DirectorySet.from_settings(config.directories, data_dir=config.server.data_dir)
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
        for line in search_lines(trace.directory.settings, config.server.data_dir):
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
    directories = DirectorySet.from_settings(config.directories, config.policy.attributes(),
                                             data_dir=config.server.data_dir)
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
        requester = provider.identify(None if as_email else who, who if as_email else None)
        say(f"{requester.lookup.value}: {requester.describe()}")
        if requester.lookup is Lookup.OUTAGE:
            say(f"on_directory_unavailable = {config.policy.on_directory_unavailable}: every request is "
                f"{'allowed' if requester.outage_allows else 'refused'} without checks")
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
