"""Kerberos configured where ssobridge is installed without its `kerberos` extra (no gssapi, krb5, pyspnego):
serve, check and reload refuse the config, naming [sso] kerberos_keytab and the fix, as for any config problem.

ssobridge runs from a virtualenv of its own without the extra (tests/support/installs.py, built once per session),
with the `kerberos` fixture's real keytab and principal: the same config works in the test virtualenv, so the
missing extra is the only thing wrong.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.events import wait_for
from tests.support.installs import install_without_extras, run_in
from tests.support.services import WEB_SERVICE_PASSWORD, ad_config, free_port, get, start_service, toml_string
from tests.support.sso import sso_toml

PORTAL = "https://helpdesk.example.test/"
PROBLEM = ("sso.kerberos_keytab: Kerberos sign-in needs ssobridge's kerberos extra, and gssapi, krb5, spnego "
           "cannot be imported here: install it with pip install 'ssobridge[kerberos]', or leave kerberos_keytab "
           "out (the sign-in form only)")


@pytest.fixture(scope="session")
def without_extras(tmp_path_factory) -> Path:
    """The bin folder of a virtualenv with ssobridge and no extra (9-10 s, once)."""
    return install_without_extras(tmp_path_factory.mktemp("no-extras"))


def kerberos_lines(kerberos) -> str:
    return f"kerberos_keytab = {toml_string(kerberos.keytab)}\nkerberos_principal = {toml_string(kerberos.principal)}\n"


def write_config(folder: Path, samba_ad, kerberos) -> Path:
    """A config that is right in every way, with Kerberos sign-in on."""
    section, _ = sso_toml(PORTAL)
    config = folder / "ssobridge.toml"
    config.write_text(f'[server]\nlisten = "127.0.0.1:{free_port()}"\ndata_dir = {toml_string(str(folder))}\n'
                      f"[smartertrack]\nweb_service_password = {toml_string(WEB_SERVICE_PASSWORD)}\n"
                      + ad_config(samba_ad) + section + kerberos_lines(kerberos))
    return config


def refusal(config: Path) -> str:
    return f"ssobridge: {config}: invalid configuration:\n  - {PROBLEM}\n"


def test_serve_refuses_to_start_naming_the_key_and_the_extra(without_extras, samba_ad, kerberos, tmp_path):
    config = write_config(tmp_path, samba_ad, kerberos)

    served = run_in(without_extras, "serve", "--config", str(config), timeout=30)

    # Exits at once: before granian starts, listens or spawns a worker (no other line on stderr).
    assert (served.returncode, served.stdout, served.stderr) == (2, "", refusal(config))
    assert not (tmp_path / "ssobridge.pid").exists()


def test_check_fails_naming_the_key_and_the_extra_and_passes_with_it(without_extras, samba_ad, kerberos, tmp_path):
    config = write_config(tmp_path, samba_ad, kerberos)

    checked = run_in(without_extras, "check", "--config", str(config))

    assert (checked.returncode, checked.stdout, checked.stderr) == (2, "", refusal(config))
    with_extra = subprocess.run([sys.executable, "-m", "ssobridge", "check", "--config", str(config)],
                                capture_output=True, text=True, timeout=120)
    assert f"kerberos: keytab {kerberos.keytab}, principal {kerberos.principal}: OK" in with_extra.stdout.splitlines()
    assert (with_extra.returncode, with_extra.stderr) == (0, "")


def test_a_reload_that_turns_kerberos_on_is_refused_and_the_form_goes_on(without_extras, samba_ad, kerberos,
                                                                         tmp_path):
    section, _ = sso_toml(PORTAL)
    service = start_service(tmp_path, ad_config(samba_ad) + section, server="workers = 2\n", log_level="INFO",
                            python=str(without_extras / "python"))
    try:
        form_only = get(service, "/sso/login")
        assert (form_only[0], "www-authenticate" in form_only[1]) == (200, False)
        config = tmp_path / "ssobridge.toml"
        config.write_text(config.read_text() + kerberos_lines(kerberos))

        service.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "event=reload_refused" in service.log(), timeout=15)
        problems = re.findall(r"ERROR ssobridge event=reload_problem config=(\S+) problem=(.*)", service.log())
        assert problems == [(str(config), PROBLEM)]
        reload = service.command("reload")  # the command checks the file itself, and signals nobody
        assert (reload.returncode, reload.stdout, reload.stderr) == (2, "", refusal(config))
        assert service.log().count("event=reload_requested") == 1

        assert service.process.poll() is None
        for _ in range(4):  # new connections: both workers still serve the form without Kerberos
            status, headers, page = get(service, "/sso/login")
            assert (status, "www-authenticate" in headers, 'name="password"' in page) == (200, False, True)
    finally:
        service.stop()
