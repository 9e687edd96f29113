"""Command line: serve, reload, check, test-login, explain, events, lockouts, unlock, sso, healthcheck, demo."""

from __future__ import annotations

import argparse
import getpass
import os
import ssl
import sys
import urllib.request

from . import logs, version
from .app import require_installed
from .config import Config, ConfigError, load
from .serve import run_server, signal_reload

DEFAULT_CONFIG = "ssobridge.toml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ssobridge", description="Active Directory / LDAP for SmarterTrack.")
    parser.add_argument("--version", action="version", version=f"ssobridge {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(name: str, text: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("--config", default=os.environ.get("SSOBRIDGE_CONFIG", DEFAULT_CONFIG),
                             help="config file (default: $SSOBRIDGE_CONFIG, else ./ssobridge.toml)")
        return command

    with_config("serve", "serve the SmarterTrack external provider endpoint")
    with_config("reload", "validate the config and have the running serve take it (SIGHUP through the pid file "
                          "in data_dir), without dropping a request; a broken config is refused")
    check = with_config("check", "validate the config and reach every directory server (TLS, service account, "
                                 "base DN, user_filter)")
    check.add_argument("--force", action="store_true",
                       help="bind the service account even though it was refused within service_retry_seconds")
    login = with_config("test-login", "sign a user in as SmarterTrack would, and explain every step")
    login.add_argument("username", help="as typed at the portal: DOMAIN\\user, user@suffix or user")
    login.add_argument("--sso", action="store_true", help="GetSignInCookieInfo: no password, account state only")
    login.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    explain = with_config("explain", "show how the rules decide GetCustomFieldOptions, StartTicket and StartChat "
                                     "for a person and a department")
    explain.add_argument("who", metavar="USERNAME|EMAIL")
    explain.add_argument("--department", required=True, help="the SmarterTrack department name")
    explain.add_argument("--location", default="PRE", type=str.upper, choices=["PRE", "REGULAR", "NORMAL"])
    explain.add_argument("--subject", default="", help="the ticket subject")
    explain.add_argument("--cf", action="append", default=[], metavar="FIELD=VALUE",
                         help="a custom field value already chosen (repeatable)")
    events = with_config("events", "the event outbox: list what arrived and its deliveries, tail new events, "
                                   "count by sink and state (stats), retry dead deliveries")
    events.add_argument("action", choices=["list", "tail", "stats", "retry"])
    events.add_argument("--limit", type=int, default=20, help="list: how many of the newest events")
    events.add_argument("--sink", help="retry: only this sink's dead deliveries")
    with_config("lockouts", "list the accounts the lockout shield refuses passwords for (soft-locked)")
    unlock = with_config("unlock", "lift the lockout shield's soft lock of an account")
    unlock.add_argument("user", help="as typed at the portal, or the entry's DN")
    with_config("healthcheck", "exit 0 when the service of this config answers on its listen address (Docker)")
    sso = commands.add_parser("sso", help="single sign-on tools: decode-cookie, import-machinekey")
    sso_commands = sso.add_subparsers(dest="sso_command", required=True, metavar="SSO_COMMAND")
    decode = sso_commands.add_parser("decode-cookie", help="show what a SmarterTrack sign-in cookie holds, or why "
                                                           "it is refused with the [sso] machine key")
    decode.add_argument("value", help="the cookie's value (hex), or name=value")
    decode.add_argument("--config", default=os.environ.get("SSOBRIDGE_CONFIG", DEFAULT_CONFIG),
                        help="config file (default: $SSOBRIDGE_CONFIG, else ./ssobridge.toml)")
    machine_key = sso_commands.add_parser("import-machinekey", help="print the [sso] lines and .env lines for "
                                                                    "SmarterTrack's <machineKey> and <forms>")
    machine_key.add_argument("path", help="SmarterTrack's web.config")
    from .init import add_arguments as init_arguments
    init_arguments(commands.add_parser("init", help="find a domain's DCs, trust their TLS, write ssobridge.toml and "
                                                    ".env, and check them", description="ssobridge init [DOMAIN]"))
    demo = commands.add_parser("demo", help="serve on an embedded sample directory, to try ssobridge without one")
    demo.add_argument("--listen", default="127.0.0.1:8290", help="host:port (default 127.0.0.1:8290)")
    arguments = parser.parse_args(argv)

    if arguments.command == "init":
        from .init import init_command
        return init_command(arguments, sys.stdin, sys.stdout)
    if arguments.command == "demo":
        from .demo import demo_start
        return run_server(*demo_start(arguments.listen))
    if arguments.command == "sso" and arguments.sso_command == "import-machinekey":
        from .sso.commands import import_machinekey_command
        return import_machinekey_command(arguments.path, sys.stdout)
    if not os.path.exists(arguments.config):
        print(f"ssobridge: config file not found: {os.path.abspath(arguments.config)}\n"
              f"  (from {_config_source(arguments.config)}; name the file with --config FILE or $SSOBRIDGE_CONFIG)",
              file=sys.stderr)
        return 2
    try:
        config = load(arguments.config)
        if arguments.command in ("serve", "check", "reload"):  # those that serve or test the whole config
            require_installed(config)
    except ConfigError as e:
        print(f"ssobridge: {arguments.config}: {e}", file=sys.stderr)
        return 2
    if arguments.command == "serve":
        return run_server(config, {"config": os.path.abspath(arguments.config)})
    if arguments.command == "sso":
        from .sso.commands import decode_cookie_command
        return decode_cookie_command(config, arguments.value, sys.stdout)
    if arguments.command == "reload":
        code, text = signal_reload(config)
        print(f"ssobridge: {text}", file=sys.stdout if code == 0 else sys.stderr)
        return code
    if arguments.command == "healthcheck":
        return healthcheck(config)
    if arguments.command == "events":
        from .events.commands import events_command
        return events_command(config, arguments.action, arguments.limit, arguments.sink, sys.stdout)
    if arguments.command in ("lockouts", "unlock"):
        from .lockout.commands import lockouts_command, unlock_command
        return lockouts_command(config, sys.stdout) if arguments.command == "lockouts" else \
            unlock_command(config, arguments.user, sys.stdout)
    from . import diagnose
    logs.configure(None)  # the command prints what matters; the log would repeat it
    if arguments.command == "check":
        return diagnose.check(config, sys.stdout, arguments.force)
    if arguments.command == "explain":
        if any("=" not in item for item in arguments.cf):
            print("ssobridge: --cf takes FIELD=VALUE", file=sys.stderr)
            return 2
        return diagnose.explain(config, arguments.who, arguments.department, arguments.location,
                                arguments.subject, arguments.cf, sys.stdout)
    password = None
    if not arguments.sso:
        password = _read_password(arguments.password_stdin)
        if password is None:
            print("ssobridge: no password given (use --sso for single sign-on without one)", file=sys.stderr)
            return 2
    return diagnose.test_login(config, arguments.username, password, sys.stdout)


def healthcheck(config: Config) -> int:
    """GET /healthz on the listen address: the process is up and serves (liveness; /readyz is for a load
    balancer and needs the directories)."""
    settings = config.server
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(settings.host, settings.host)
    scheme = "https" if settings.tls_cert else "http"
    context = None
    if scheme == "https":
        # Our own process on this machine, dialled by address while the certificate names public_url's host:
        # OpenSSL checks that the listener presents tls_cert itself (a trust anchor here, hence partial
        # chain), and no name.
        context = ssl.create_default_context(cafile=settings.tls_cert)
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        context.check_hostname = False
    url = f"{scheme}://{'[' + host + ']' if ':' in host else host}:{settings.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            return 0 if response.status == 200 else 1
    except OSError as e:
        print(f"ssobridge healthcheck: {url}: {e}", file=sys.stderr)
        return 1


def _config_source(path: str) -> str:
    """Where --config's value came from: the option, else $SSOBRIDGE_CONFIG, else the default."""
    if "SSOBRIDGE_CONFIG" in os.environ:
        return "--config" if path != os.environ["SSOBRIDGE_CONFIG"] else "$SSOBRIDGE_CONFIG"
    return "--config" if path != DEFAULT_CONFIG else f"the default, {DEFAULT_CONFIG} in the working directory"


def _read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    try:
        return getpass.getpass("Password: ")
    except (EOFError, KeyboardInterrupt):
        return None
