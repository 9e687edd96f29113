"""`ssobridge init [DOMAIN]`: from a DNS domain to a config that signs users in, each step said in one line.

1. the DCs, from DNS SRV records (directory/discovery.py); 2. TLS: the chain a DC presents, trusted only once
the admin confirms a fingerprint (trust.py); 3. the domain's facts, with one service-account bind
(directory/domaininfo.py);
4. ssobridge.toml, .env and ca_file, staged and moved into place at the end (write.py); 5. `ssobridge check`
on what was written, then what to type into SmarterTrack. Any refusal: a message, exit 1, nothing written.
"""

from __future__ import annotations

import argparse
import getpass
import socket
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from .. import logs
from ..config import ConfigError, load
from ..config.settings import DEFAULT_USER_FILTERS, DirectorySettings, DirectoryType
from ..directory.discovery import DiscoveryError, find_domain_controllers, host_addresses
from ..directory.domaininfo import DomainFacts, DomainInfoRefused, read_facts
from ..lockout.rules import soft_threshold, window_seconds
from .trust import Handshake, InitRefused, normal_fingerprint, presented_chain
from .write import Answers, Staging, new_web_service_password, render_config, render_env

DEFAULT_LISTEN = "127.0.0.1:8290"
TIMEOUT = 5.0  # seconds for each DNS lookup and each connection


def add_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("domain", nargs="?", metavar="DOMAIN",
                         help="the DNS domain, e.g. corp.example.com (default: this machine's own)")
    command.add_argument("--nameserver", action="append", default=[], metavar="IP",
                         help="ask this DNS server (repeatable; default: the system's resolver); the config "
                              "records it")
    command.add_argument("--service-account", metavar="NAME", help="sAMAccountName, UPN or DN")
    command.add_argument("--password-stdin", action="store_true",
                         help="read the service account's password from standard input")
    command.add_argument("--trust", metavar="SHA256", help="accept the DC's certificate chain when a certificate "
                                                           "in it has this SHA-256 fingerprint (hex, colons optional)")
    command.add_argument("--yes", action="store_true", help="take every discovered default without asking")
    command.add_argument("--listen", metavar="HOST:PORT", help=f"the address serve listens on (default {DEFAULT_LISTEN})")
    command.add_argument("--config", default="ssobridge.toml", metavar="PATH",
                         help="where to write (default ./ssobridge.toml, with .env beside it)")
    command.add_argument("--force", action="store_true", help="overwrite an existing config, .env and ca_file")


class Prompter:
    """Asks on the terminal, with the discovered value as the default; without a terminal (or with --yes)
    takes the default, and a value without one must come from its flag."""

    def __init__(self, interactive: bool, out: TextIO):
        self.interactive = interactive
        self.out = out
        self.asked = 0

    def value(self, question: str, default: str | None, flag: str) -> str:
        if not self.interactive:
            if default is None:
                raise InitRefused(f"{question}: give {flag} (no terminal to ask on, or --yes)")
            return default
        self.asked += 1
        answer = input(f"{question}{f' [{default}]' if default else ''}: ").strip()
        if not answer and default is None:
            raise InitRefused(f"{question}: no answer")
        return answer or default or ""

    def confirm(self, question: str) -> bool:
        self.asked += 1
        return input(f"{question} [y/N]: ").strip().lower() in ("y", "yes")

    def secret(self, question: str) -> str:
        self.asked += 1
        return getpass.getpass(f"{question}: ")


def init_command(arguments: argparse.Namespace, stdin: TextIO, out: TextIO) -> int:
    logs.configure(None)  # quiet, as every command: each step says what matters; the log would repeat it
    ask = Prompter(interactive=not arguments.yes and stdin.isatty(), out=out)
    say = lambda line: print(line, file=out, flush=True)  # noqa: E731
    config = Path(arguments.config).absolute()
    try:
        _refuse_overwrite(config, arguments.force)
        staging = Staging(config)
    except InitRefused as e:
        say(f"ssobridge init: {e}")
        return 1
    try:
        answers, passwords = _steps(arguments, ask, say, stdin, staging)
        staging.write(config.name, render_config(answers).encode())
        staging.write(".env", render_env(*passwords).encode(), mode=0o600)
        say(f"* Checking what will be written ({config.name}, .env, {answers.ca_file}), as `ssobridge check` does")
        code = _check(staging.path(config.name), config, out)
        if code != 0:
            raise InitRefused("the checks above failed: nothing was written")
        staging.commit()
    except (InitRefused, OSError, ValueError) as e:
        staging.discard()
        say(f"ssobridge init: {e}")
        return 1
    except BaseException:
        staging.discard()
        raise
    say(f"* Wrote {config}, {config.parent / '.env'} (mode 0600) and {config.parent / answers.ca_file}")
    say("")
    say("In SmarterTrack (Settings > Extras > External Providers), for each provider:")
    say(f"  Web Service URL:      {answers.public_url}")
    say(f"  Web Service Password: {passwords[1]}")
    name = f"{answers.netbios}\\someone" if answers.netbios else f"someone@{answers.upn_suffixes[0]}"
    say("Next, sign someone in as SmarterTrack would, then start the service:")
    config_option = "" if arguments.config == "ssobridge.toml" else f" --config {arguments.config}"
    say(f"  ssobridge test-login{config_option} '{name}'")
    say(f"  ssobridge serve{config_option}")
    if ask.interactive:
        say(f"({ask.asked} questions asked)")
    return 0


def _refuse_overwrite(config: Path, force: bool) -> None:
    existing = [p for p in (config, config.parent / ".env") if p.exists()]
    if existing and not force:
        raise InitRefused(f"{', '.join(map(str, existing))} already exist{'s' if len(existing) == 1 else ''}: "
                          "nothing was written (--force overwrites)")
    if not config.parent.is_dir():
        raise InitRefused(f"{config.parent}: no such folder")


def _steps(arguments, ask: Prompter, say, stdin: TextIO, staging: Staging) -> tuple[Answers, tuple[str, str]]:
    nameservers = tuple(arguments.nameserver)
    domain = arguments.domain or ask.value("DNS domain", _own_domain(), "DOMAIN")
    domain = domain.strip().rstrip(".").lower()
    say(f"* Looking up the domain controllers of {domain} in DNS "
        f"({'asking ' + ', '.join(nameservers) if nameservers else 'the system resolver'})")
    try:
        found = find_domain_controllers(domain, nameservers, TIMEOUT)
    except DiscoveryError as e:
        hint = "" if nameservers else "; give --nameserver IP (a DNS server of the domain)"
        raise InitRefused(f"{e}{hint}, or write the config by hand with urls = [\"ldaps://dc1.{domain}\"] "
                          "(README, \"Run it for real\")") from None
    for target in found.targets:
        say(f"* Found {target.host}:{target.port} (SRV {found.record}, priority {target.priority}, "
            f"weight {target.weight})")
    first = found.targets[0]
    try:
        addresses = host_addresses(first.host, nameservers, TIMEOUT) if nameservers else \
            tuple(dict.fromkeys(i[4][0] for i in socket.getaddrinfo(first.host, None, proto=socket.IPPROTO_TCP)))
    except (DiscoveryError, OSError) as e:
        raise InitRefused(f"{first.host}: cannot resolve its address: {e}") from None
    say(f"* Connecting to {first.host} ({', '.join(addresses)}): LDAPS on 636, else StartTLS on {first.port}")
    handshake = presented_chain(first.host, addresses, first.port, TIMEOUT)
    _trust(handshake, arguments.trust, ask, say)
    ca_name = f"{domain}-ca.pem" if not handshake.pinned else f"{first.host}.pem"
    if (Path(arguments.config).absolute().parent / ca_name).exists() and not arguments.force:
        raise InitRefused(f"{ca_name} already exists beside the config: nothing was written (--force overwrites)")
    ca_file = staging.write(ca_name, handshake.anchor.pem)
    url = (f"ldap://{first.host}:{first.port}" if handshake.start_tls else f"ldaps://{first.host}:636")
    account = arguments.service_account or ask.value("Service account (sAMAccountName, UPN or DN)", None,
                                                     "--service-account")
    password = _password(arguments.password_stdin, stdin, ask)
    say(f"* Reading the rootDSE of {first.host}, then binding once as {account}")
    kind = DirectoryType.ACTIVE_DIRECTORY
    probe = DirectorySettings(name=domain.split(".")[0], type=kind, urls=(url,), base_dn="",
                              bind_dn="", bind_password="", user_filter=DEFAULT_USER_FILTERS[kind],
                              ca_file=str(ca_file), start_tls=handshake.start_tls, nameservers=nameservers,
                              connect_timeout=TIMEOUT, timeout=TIMEOUT)
    try:
        facts = read_facts(probe, domain, account, password)
    except DomainInfoRefused as e:
        raise InitRefused(str(e)) from None
    _say_facts(facts, say)
    listen = arguments.listen or ask.value("Listen address for SmarterTrack (host:port)", DEFAULT_LISTEN, "--listen")
    answers = Answers(
        name=(facts.netbios or domain.split(".")[0]).lower(), active_directory=facts.active_directory,
        domain=domain, nameservers=nameservers, start_tls=handshake.start_tls, base_dn=facts.base_dn,
        bind_dn=facts.bind_dn, ca_file=ca_name, ca_pinned=handshake.pinned, netbios=facts.netbios,
        upn_suffixes=facts.upn_suffixes, listen=listen, public_url=f"http://{listen}/ExternalProvider.asmx")
    return answers, (password, new_web_service_password())


def _trust(handshake: Handshake, fingerprint: str | None, ask: Prompter, say) -> None:
    """Nothing is trusted, and no password sent, before the admin confirms a certificate of the chain."""
    how = "StartTLS" if handshake.start_tls else "LDAPS"
    say(f"* {handshake.host} presented {len(handshake.chain)} certificate(s) over {how}:")
    for index, presented in enumerate(handshake.chain, 1):
        for number, line in enumerate(presented.lines()):
            say(f"    {f'{index}.' if number == 0 else '  '} {line}")
    if handshake.pinned:
        say("  WARNING: the DC presented only its own certificate, no CA: it is pinned (trusted as itself), so "
            "when it is renewed the ca_file must be replaced (`ssobridge check` warns before it expires)")
    if fingerprint is not None:
        if not normal_fingerprint(fingerprint) or handshake.matching(fingerprint) is None:
            raise InitRefused(f"--trust {fingerprint} matches none of the certificates presented: "
                              f"{', '.join(p.sha256 for p in handshake.chain)}")
        say(f"* Trusted: --trust matches {handshake.matching(fingerprint).certificate.subject.rfc4514_string()}")
    elif not ask.interactive:
        raise InitRefused("the DC's certificate chain is not trusted without a confirmation: compare the SHA-256 "
                          "fingerprints above with your CA's (or the DC's) and give the one you know with --trust")
    elif not ask.confirm(f"Trust this chain? Compare the SHA-256 of {handshake.anchor.certificate.subject.rfc4514_string()} "
                         f"with your {'CA' if not handshake.pinned else 'DC'}'s"):
        raise InitRefused("the certificate chain was not trusted: nothing was written")
    anchor = handshake.anchor.certificate.subject.rfc4514_string()
    say(f"* ca_file: {'the DC certificate' if handshake.pinned else 'the CA certificate'} {anchor}")


def _password(from_stdin: bool, stdin: TextIO, ask: Prompter) -> str:
    if from_stdin:
        line = stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
    elif ask.interactive:
        password = ask.secret("Service account password")
    else:
        raise InitRefused("the service account's password: give it on standard input with --password-stdin")
    if not password:
        raise InitRefused("the service account's password is empty (AD would take that as an anonymous bind)")
    return password


def _say_facts(facts: DomainFacts, say) -> None:
    say(f"* {facts.dns_host_name or 'the DC'}: {'Active Directory' if facts.active_directory else 'LDAP'}, "
        f"base DN {facts.base_dn}")
    say(f"* Service account: {facts.bind_dn}")
    say(f"* NetBIOS name: {facts.netbios or '(none found)'}; UPN suffixes: {', '.join(facts.upn_suffixes)}")
    if facts.lockout_threshold:
        say(f"* Lockout policy: {facts.lockout_threshold} wrong passwords within "
            f"{facts.observation_seconds // 60} min lock an account; the lockout shield refuses passwords "
            f"without asking the DC after {soft_threshold(facts.lockout_threshold)} failures within "
            f"{window_seconds(facts.observation_seconds) // 60} min, before the domain locks anyone")
    else:
        say(f"* Lockout policy: the domain never locks accounts; the lockout shield still refuses passwords after "
            f"{soft_threshold(0)} failures within {window_seconds(facts.observation_seconds) // 60} min")


def _own_domain() -> str | None:
    name = socket.getfqdn()
    return name.partition(".")[2] or None


def _check(staged: Path, final: Path, out: TextIO) -> int:
    """`ssobridge check` on the staged files, its lines naming the final config."""
    from .. import diagnose
    try:
        config = load(str(staged))
    except ConfigError as e:
        print(f"ssobridge: {final}: {e}", file=out)
        return 2
    return diagnose.check(replace(config, source=str(final)), out)
