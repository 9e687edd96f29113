"""`ssobridge serve` (and the demo): the endpoint on cheroot until SIGTERM or Ctrl+C."""

from __future__ import annotations

import logging
import signal
import sqlite3
import sys

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from .app import build, configure_logging
from .config import Config
from .directory import DirectorySet

log = logging.getLogger("ssobridge")


def run_server(config: Config, banner: str | None = None, directories: DirectorySet | None = None) -> int:
    configure_logging(config.log_level)
    try:
        runtime = build(config, directories)
    except (sqlite3.Error, OSError) as e:
        print(f"ssobridge: events.database: cannot open {config.events.database if config.events else ''}: {e}",
              file=sys.stderr)
        return 2
    settings = config.server
    server = wsgi.Server((settings.host, settings.port), runtime.endpoint, numthreads=settings.threads,
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
    runtime.start()
    log.info("event=started listen=%s:%s public_url=%s directories=%s events=%s", settings.host,
             server.bind_addr[1], settings.public_url,
             ",".join(d.name for d in runtime.directories.directories) or "none",
             config.events.database if config.events else "off")
    if banner:
        print(banner, flush=True)
    try:
        server.serve()
    except SystemExit:
        pass
    finally:
        server.stop()
        runtime.close()
    return 0
