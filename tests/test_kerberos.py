"""Kerberos sign-in pieces against Samba AD's KDC: KerberosAcceptor (ssobridge/sso/kerberos.py), the
principal -> directory entry mapping (DirectorySet.find_principal, a Finding) and `check`'s keytab line."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ldap3.utils.dn import parse_dn

from ssobridge.diagnose import kerberos_lines
from ssobridge.directory import Directory, DirectorySet, Finding, Outcome
from ssobridge.sso.kerberos import KerberosAcceptor, KerberosResult
from tests.support.services import ad_config
from tests.support.services import settings_for


@pytest.fixture
def acceptor(kerberos) -> KerberosAcceptor:
    return KerberosAcceptor(kerberos.keytab, kerberos.principal)


def same_dn(a: str, b: str) -> bool:
    return [(t.lower(), v.lower()) for t, v, _ in parse_dn(a)] == [(t.lower(), v.lower()) for t, v, _ in parse_dn(b)]


def test_a_kinit_ticket_is_accepted_as_its_principal_with_a_mutual_authentication_token(acceptor, kerberos, samba_ad):
    header = kerberos.negotiate_header(kerberos.kinit(samba_ad.users["jdoe"]))

    result = acceptor.accept(header)

    assert (result.principal, result.error) == ("jdoe@EXAMPLE.TEST", None)
    assert base64.b64decode(result.response_token)[:1] == b"\xa1"  # an SPNEGO negTokenResp (accept-completed)
    assert acceptor.challenge_header() == ("WWW-Authenticate", "Negotiate")


def test_any_principal_in_the_keytab_is_accepted_when_none_is_configured(kerberos, samba_ad):
    header = kerberos.negotiate_header(kerberos.kinit(samba_ad.users["no_mail"]))

    assert KerberosAcceptor(kerberos.keytab, None).accept(header).principal == "nmail@EXAMPLE.TEST"


def test_the_principal_maps_to_its_entry_in_the_directory_of_its_realm(kerberos, samba_ad, samba_ad_other):
    directories = DirectorySet([Directory(settings_for(samba_ad, name="example")),
                                Directory(settings_for(samba_ad_other, name="other"))])
    principal = KerberosAcceptor(kerberos.keytab, kerberos.principal).accept(
        kerberos.negotiate_header(kerberos.kinit(samba_ad.users["jdoe"]))).principal
    try:
        found = directories.find_principal(principal)
        assert found.outcome is Outcome.FOUND
        assert found.directory.name == "example" and same_dn(found.entry.dn, samba_ad.users["jdoe"].dn)
        found = directories.find_principal("jdoe@OTHER.TEST")
        assert found.directory.name == "other" and same_dn(found.entry.dn, samba_ad_other.users["jdoe"].dn)
        found = directories.find_principal("EXAMPLE\\jdoe")  # as SSPI names it
        assert found.directory.name == "example" and same_dn(found.entry.dn, samba_ad.users["jdoe"].dn)
        found = directories.find_principal("max.mustermann@example.test@EXAMPLE.TEST")  # enterprise
        assert same_dn(found.entry.dn, samba_ad.users["upn_differs"].dn)
        assert directories.find_principal("jdoe@NOWHERE.TEST") == Finding(Outcome.NOT_FOUND)
        assert directories.find_principal("nobody@EXAMPLE.TEST") == Finding(Outcome.NOT_FOUND)
    finally:
        directories.close()


@pytest.mark.parametrize("header, error", [
    (None, "no Negotiate token"),
    ("", "no Negotiate token"),
    ("Basic amRvZTpzZWNyZXQ=", "no Negotiate token"),
    ("Negotiate", "no Negotiate token"),
    ("Negotiate ***", "the Negotiate token is not base64"),
])
def test_a_missing_or_undecodable_token_is_a_reason(acceptor, header, error):
    assert acceptor.accept(header) == KerberosResult(error=error)


def test_garbage_is_refused_with_gssapis_reason(acceptor):
    result = acceptor.accept("Negotiate " + base64.b64encode(b"\x60\x03garbage").decode())

    assert result.principal is None and result.response_token is None
    assert result.error == "Invalid token was supplied"


def test_a_ticket_for_another_service_is_refused(acceptor, kerberos, samba_ad):
    ccache = kerberos.kinit(samba_ad.users["jdoe"])
    header = "Negotiate " + base64.b64encode(kerberos.negotiate_token(ccache, host="dc1.example.test",
                                                                      service="HOST")).decode()
    result = acceptor.accept(header)

    assert result.principal is None
    assert result.error == ("Cannot decrypt ticket for HOST/dc1.example.test@EXAMPLE.TEST using keytab key for "
                            "HTTP/sso.example.test@EXAMPLE.TEST")


def test_a_replayed_token_is_refused(acceptor, kerberos, samba_ad):
    header = kerberos.negotiate_header(kerberos.kinit(samba_ad.users["jdoe"]))
    assert acceptor.accept(header).principal == "jdoe@EXAMPLE.TEST"

    result = acceptor.accept(header)

    assert result.principal is None
    assert result.error == "Request is a replay"


def test_the_right_keytab_verifies(acceptor, kerberos):
    assert acceptor.verify_keytab() is None
    assert KerberosAcceptor(kerberos.keytab, None).verify_keytab() is None
    assert kerberos_lines(kerberos.keytab, kerberos.principal) == [
        f"kerberos: keytab {kerberos.keytab}, principal HTTP/sso.example.test@EXAMPLE.TEST: OK"]


def test_a_keytab_of_another_principal_fails_in_words(kerberos, tmp_path):
    other = kerberos.export_keytab(tmp_path / "svc.keytab", "svc-ssobridge@EXAMPLE.TEST")

    assert KerberosAcceptor(other, kerberos.principal).verify_keytab() == (
        f"the keytab {other} holds no key for HTTP/sso.example.test@EXAMPLE.TEST, only for svc-ssobridge@EXAMPLE.TEST")
    assert KerberosAcceptor(other, None).verify_keytab() == (
        "svc-ssobridge@EXAMPLE.TEST is not a service principal (SERVICE/host@REALM, e.g. HTTP/sso.example.com@REALM)")


def test_a_missing_keytab_fails_in_words(tmp_path):
    assert kerberos_lines(str(tmp_path / "none.keytab"), None) == [
        f"kerberos: keytab {tmp_path / 'none.keytab'}: PROBLEM: the keytab {tmp_path / 'none.keytab'} does not exist"]


def test_a_keytab_exported_before_a_password_reset_fails_in_words(kerberos, samba_ad, tmp_path):
    stale = shutil.copy(kerberos.keytab, tmp_path / "stale.keytab")
    kerberos.reset_service_key()
    try:
        assert KerberosAcceptor(str(stale), kerberos.principal).verify_keytab() == (
            "the KDC gave no ticket to HTTP/sso.example.test@EXAMPLE.TEST with the keytab's key: Preauthentication "
            "failed (the keytab's key is not the account's current one: was its password reset after the keytab "
            "was made?)")
        header = kerberos.negotiate_header(kerberos.kinit(samba_ad.users["jdoe"]))
        assert KerberosAcceptor(str(stale), kerberos.principal).accept(header).error == (
            "Cannot find key for HTTP/sso.example.test@EXAMPLE.TEST kvno 2 in keytab")
    finally:
        kerberos.export_keytab(Path(kerberos.keytab))
    assert KerberosAcceptor(kerberos.keytab, kerberos.principal).verify_keytab() is None


def check_with_keytab(folder: Path, samba_ad, keytab: str, principal: str | None) -> subprocess.CompletedProcess:
    """`ssobridge check` of a config in `folder` with this [sso] kerberos_keytab (relative to `folder`, or absolute)
    and kerberos_principal, run in `folder` as `--config ssobridge.toml`."""
    (folder / "ssobridge.toml").write_text(
        f'[server]\ndata_dir = "{folder}"\n[smartertrack]\nweb_service_password = "x"\n' + ad_config(samba_ad)
        + f'[sso]\nenabled = true\nportal_url = "https://helpdesk.example.test/"\n'
          f'validation_key = "{"ab" * 32}"\ndecryption_key = "{"cd" * 32}"\nkerberos_keytab = "{keytab}"\n'
        + (f'kerberos_principal = "{principal}"\n' if principal else ""))
    return subprocess.run([sys.executable, "-m", "ssobridge", "check", "--config", "ssobridge.toml"], cwd=folder,
                          capture_output=True, text=True, timeout=120)


def test_check_reports_the_keytab_of_the_sso_section(kerberos, samba_ad, tmp_path):
    """`ssobridge check` runs the keytab test when [sso] has a kerberos_keytab, and counts a bad one."""
    good = check_with_keytab(tmp_path, samba_ad, kerberos.keytab, kerberos.principal)
    assert f"kerberos: keytab {kerberos.keytab}, principal {kerberos.principal}: OK" in good.stdout.splitlines()
    assert good.returncode == 0, good.stdout + good.stderr
    other = kerberos.export_keytab(tmp_path / "svc.keytab", "svc-ssobridge@EXAMPLE.TEST")
    bad = check_with_keytab(tmp_path, samba_ad, str(other), kerberos.principal)
    assert bad.returncode == 2 and bad.stdout == ""  # a config problem, named before anything is checked
    assert (f"  - sso.kerberos_keytab: {other} holds no key for {kerberos.principal}, only for "
            "svc-ssobridge@EXAMPLE.TEST: export the keytab again after the SPN and userPrincipalName are set") \
        in bad.stderr.splitlines()


NOT_A_KEYTAB = "not a keytab (no keytab version header): export it with ktpass or samba-tool domain exportkeytab"


@pytest.mark.parametrize("content, principal, problem", [
    (b"not a keytab\n", None, f": {NOT_A_KEYTAB}"),
    (b"not a keytab\n", "HTTP/sso.example.test@EXAMPLE.TEST", f": {NOT_A_KEYTAB}"),
    (b"", None, f": {NOT_A_KEYTAB}"),
    (b"\x05\x02", None, " holds no key"),  # a keytab's header and no entry: what ktutil writes with no key
    (b"\x05\x02\x00\x00\x00\x40\x00\x02", None, ": not a keytab (an entry is cut short or malformed)"),
])
def test_a_file_that_is_no_keytab_is_a_config_problem_naming_its_resolved_path(samba_ad, tmp_path, content,
                                                                              principal, problem):
    """Read when the config is (serve and check refuse it at start), with the path resolved against the config's
    folder: never a sign-in form in place of every Kerberos sign-in, nor an uncaught Kerberos library error."""
    (tmp_path / "http.keytab").write_bytes(content)

    result = check_with_keytab(tmp_path, samba_ad, "http.keytab", principal)

    assert (result.returncode, result.stdout) == (2, "")
    assert f"  - sso.kerberos_keytab: {tmp_path / 'http.keytab'}{problem}" in result.stderr.splitlines()
    assert "uncaught_exception" not in result.stderr
