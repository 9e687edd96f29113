"""app.require_installed and sso.kerberos.missing_modules: a config that enables Kerberos is refused where a module
of the kerberos extra does not import. The modules are swapped for stand-ins here (the test virtualenv has the
extra); tests/test_kerberos_extra.py shows the same in a virtualenv really without it."""

from __future__ import annotations

import struct

import pytest

from ssobridge.app import require_installed
from ssobridge.config import ConfigError, load
from ssobridge.sso import kerberos

SSO = """
[smartertrack]
web_service_password = "x"
[sso]
enabled = {enabled}
portal_url = "https://helpdesk.example.test/"
validation_key = "{validation}"
decryption_key = "{decryption}"
"""


def keytab_with(principal: str) -> bytes:
    """A keytab (format 0x0502) with one entry for `principal`: what the config reader reads of it."""
    names, realm = principal.split("@")
    counted = lambda text: struct.pack(">H", len(text)) + text.encode()  # noqa: E731
    entry = (struct.pack(">H", len(names.split("/"))) + counted(realm) + b"".join(map(counted, names.split("/")))
             + struct.pack(">IIB", 1, 0, 3) + struct.pack(">H", 18) + counted("k" * 32) + struct.pack(">I", 3))
    return b"\x05\x02" + struct.pack(">i", len(entry)) + entry


def config(tmp_path, enabled: bool = True, keytab: bool = True):
    (tmp_path / "http.keytab").write_bytes(keytab_with("HTTP/sso.example.test@EXAMPLE.TEST"))
    text = SSO.format(enabled=str(enabled).lower(), validation="ab" * 32, decryption="cd" * 32)
    path = tmp_path / "ssobridge.toml"
    path.write_text(text + ('kerberos_keytab = "http.keytab"\n' if keytab else ""))
    return load(path)


@pytest.fixture
def stand_ins(tmp_path, monkeypatch):
    """Modules on sys.path: `present` imports, `broken` fails as a missing C library does, `needs_more` lacks a
    module it imports."""
    folder = tmp_path / "modules"
    folder.mkdir()
    (folder / "present.py").write_text("")
    (folder / "broken.py").write_text(
        'raise ImportError("libgssapi_krb5.so.2: cannot open shared object file: No such file or directory")\n')
    (folder / "needs_more.py").write_text("import ssobridge_test_absent_dependency\n")
    monkeypatch.syspath_prepend(str(folder))
    return monkeypatch


def test_the_missing_modules_are_named_and_a_broken_one_says_why(stand_ins):
    stand_ins.setattr(kerberos, "MODULES", ("present", "ssobridge_test_absent", "broken", "needs_more"))

    assert kerberos.missing_modules() == [
        "ssobridge_test_absent",
        "broken (libgssapi_krb5.so.2: cannot open shared object file: No such file or directory)",
        "needs_more (No module named 'ssobridge_test_absent_dependency')"]


def test_a_kerberos_config_is_refused_with_the_key_and_the_fix(stand_ins, tmp_path):
    stand_ins.setattr(kerberos, "MODULES", ("present", "ssobridge_test_absent", "broken"))

    with pytest.raises(ConfigError) as refused:
        require_installed(config(tmp_path))

    assert refused.value.problems == [
        "sso.kerberos_keytab: Kerberos sign-in needs ssobridge's kerberos extra, and ssobridge_test_absent, broken "
        "(libgssapi_krb5.so.2: cannot open shared object file: No such file or directory) cannot be imported here: "
        "install it with pip install 'ssobridge[kerberos]', or leave kerberos_keytab out (the sign-in form only)"]


@pytest.mark.parametrize("enabled, keytab", [(False, True), (True, False)])
def test_without_kerberos_in_use_nothing_is_required(stand_ins, tmp_path, enabled, keytab):
    """Kerberos runs only with [sso] enabled and a keytab: a keytab set for later, with sign-in off, is accepted."""
    stand_ins.setattr(kerberos, "MODULES", ("ssobridge_test_absent",))

    assert require_installed(config(tmp_path, enabled=enabled, keytab=keytab)) is None


def test_with_the_modules_there_a_kerberos_config_is_accepted(stand_ins, tmp_path):
    stand_ins.setattr(kerberos, "MODULES", ("present",))

    assert require_installed(config(tmp_path)) is None


def test_the_real_modules_are_those_the_extra_installs():
    """The test virtualenv has the extra (pyproject's test dependencies): every name in MODULES imports."""
    assert kerberos.MODULES == ("gssapi", "krb5", "spnego")
    assert kerberos.missing_modules() == []
