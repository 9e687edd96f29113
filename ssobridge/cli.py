"""Command line: `ssobridge serve --config FILE`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from . import __version__
from .app import build, configure_logging
from .config import Config, ConfigError, load

log = logging.getLogger("ssobridge")

DEFAULT_CONFIG = "ssobridge.toml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ssobridge", description="Active Directory / LDAP for SmarterTrack.")
    parser.add_argument("--version", action="version", version=f"ssobridge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the SmarterTrack external provider endpoint")
    serve.add_argument("--config", default=os.environ.get("SSOBRIDGE_CONFIG", DEFAULT_CONFIG),
                       help="config file (default: $SSOBRIDGE_CONFIG or ./ssobridge.toml)")
    arguments = parser.parse_args(argv)
    try:
        config = load(arguments.config)
    except ConfigError as e:
        print(f"ssobridge: {arguments.config}: {e}", file=sys.stderr)
        return 2
    return run_server(config)


def run_server(config: Config) -> int:
    configure_logging(config.log_level)
    endpoint, directories = build(config)
    settings = config.server
    server = wsgi.Server((settings.host, settings.port), endpoint, numthreads=settings.threads,
                         server_name="ssobridge", timeout=30, shutdown_timeout=5)
    if settings.tls_cert:
        server.ssl_adapter = BuiltinSSLAdapter(settings.tls_cert, settings.tls_key)
    elif not settings.is_loopback:
        log.warning("event=plaintext_http listen=%s:%s note=%r", settings.host, settings.port,
                    "passwords from SmarterTrack cross the network unencrypted unless a TLS proxy is in front")

    def stop(signum, frame):
        # Leave serve() in the main thread; the finally below stops the worker threads.
        log.info("event=stopping signal=%s", signal.Signals(signum).name)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.prepare()
    except OSError as e:
        log.error("event=listen_failed listen=%s:%s error=%r", settings.host, settings.port, str(e))
        return 1
    log.info("event=started listen=%s:%s public_url=%s directories=%s", settings.host, server.bind_addr[1],
             settings.public_url, ",".join(d.name for d in directories.directories) or "none")
    try:
        server.serve()
    except SystemExit:
        pass
    finally:
        server.stop()
        directories.close()
    return 0
