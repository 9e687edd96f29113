r"""Session fixtures with REAL directory servers; tests/conftest.py imports them all.

Fixtures (all session-scoped; each server starts once, on first use, and stops when the session ends
or pytest dies):

  samba_ad            DirectoryFixture, kind "ad": Samba AD DC, realm EXAMPLE.TEST, NetBIOS EXAMPLE,
                      ldaps://127.0.0.2:636, ldap://127.0.0.2:389 (simple bind refused there: strong auth).
                      ~0.6-1.1 s (provisioning is cached in ~/.cache/ssobridge-tests; without the
                      cache ~4 s). Skipped when samba is not installed or we are not root.
  samba_ad_second_dc  DirectoryFixture: a SECOND DC of EXAMPLE.TEST on 127.0.0.4 (ldaps://127.0.0.4:636),
                      the same users, passwords, DNs and groups as samba_ad (its `users` is the same map).
                      Failover tests list it FIRST, [samba_ad_second_dc.ldaps_url, samba_ad.ldaps_url],
                      and stop it: `with samba_ad_second_dc.outage(): ...` stops this DC only, samba_ad
                      keeps answering (and samba_ad.outage() stops only 127.0.0.2). 0.3-0.9 s, on first use.
                      A COPY, NOT A REPLICA: made from samba_ad's databases when first requested (online,
                      samba_ad is not interrupted); changes on one DC never reach the other: lock_out()
                      on one leaves the user unlocked on the other, a new password exists on one only.
                      Both call themselves DC1 in the rootDSE; only the address differs. The copy holds
                      samba_ad's accounts as they are at that moment (tests restore what they change).
  samba_ad_other      DirectoryFixture: a second AD DOMAIN, realm OTHER.TEST, NetBIOS OTHER, UPN suffix
                      other.test, base DC=other,DC=test, ldaps://127.0.0.3:636. Its own Administrator
                      and service account (same names and passwords as in EXAMPLE, other DNs) and its
                      own people (below). 0.4-0.9 s, on first use (own provisioning cache entry; ~4 s without).
  kerberos            kerberos.KerberosRealm: samba_ad's KDC (port 88 on its address), the service principal
                      HTTP/sso.example.test@EXAMPLE.TEST (account sso-http) and its keytab (`keytab`,
                      `principal`), a krb5.conf (KRB5_CONFIG set for the session); kinit(user) -> ccache,
                      negotiate_header(ccache) -> "Negotiate ...", export_keytab(), reset_service_key().
                      samba_ad + kerberos: 4.6 s on first use. See kerberos.py.
  openldap            DirectoryFixture, kind "openldap": slapd with ppolicy, suffix dc=example,dc=org,
                      127.0.0.1 on free ports. ~0.1 s. Skipped when slapd is not installed.
  pki                 pki.Pki: our CA (`ca.cert_file` is every fixture's ca_file), the server key pair,
                      `wrong_ca` (signed nothing we serve) and `wrong_host` (signed by our CA, valid only
                      for wrong.example.test); `ca.issue(dir, stem, dns_names, ip_addresses)` for more.
  dead_ldap_url       "ldap://127.0.0.1:PORT": connection refused at once.
  dead_ldaps_url      the same port as ldaps://
  blackhole_ldap_url  "ldap://127.0.0.1:PORT": the TCP connection is accepted, then nothing is ever sent.
  blackhole_ldaps_url the same port as ldaps://: the TLS handshake never completes.

Fixtures defined elsewhere in tests/support, which tests/conftest.py imports as well:

  ad_service          services.py, module-scoped: ssobridge running on samba_ad (with the ATTRIBUTES mapping).
  ldap_service        services.py, module-scoped: ssobridge running on openldap (the same mapping).
  site                services.py: (directory, service), parametrized over ("ad": samba_ad, ad_service)
                      and ("openldap": openldap, ldap_service).
  dotnet              dotnet_client.py, session-scoped: the .NET SmarterTrack client under Mono;
                      skips when Mono is missing.
  services.py also has what tests use with them: start_service(), ad_config()/openldap_config(),
  authenticate()/sign_in_cookie(), ok()/fail()/identity(), WRONG and MESSAGES (see its docstring).

DirectoryFixture (directory.py), a frozen dataclass:
  kind, host, ldap_port, ldaps_port, ldap_url, ldaps_url, ca_file, wrong_ca_file, base_dn, users_dn,
  admin_dn, admin_password, service_dn, service_password (read-only bind account), users, groups,
  lockout_threshold, netbios_domain / upn_suffix / realm (AD; None for OpenLDAP),
  host_not_in_certificate (OpenLDAP: 127.0.0.10, same LDAPS port, fails the hostname check);
  methods lock_out(user), unlock(user), stop(), start(), and `with directory.outage(): ...`.
  A test that stops a server or locks a user must restore it (outage() and try/finally do).

users[key] -> DirectoryUser(key, login, password, dn, cn, upn, mail, display_name, state, attributes);
`password_bytes` is the password as UTF-8 bytes: give ldap3 bytes, or it applies SASLprep.

  key               login       password              state in AD                 state in OpenLDAP
  jdoe              jdoe        Jd0e-Passw0rd!        ok                          ok
  no_mail           nmail       N0ra-Passw0rd!        ok, no mail/displayName     ok, no mail/displayName
  upn_differs       mmuster     Mmuster-Passw0rd1     ok, UPN max.mustermann@...  (AD only)
  non_ascii         jörg        Jörg-Pässwort-1       ok, cn "Jörg Müller-Øster 日本"   ok (uid=jörg)
  escaped_dn        jdoejr      Johnny-Passw0rd!      ok, CN=Doe\, \"Johnny\" Jr   ok, cn=Doe\2C \22Johnny\22 Jr
  nbsp_password     nbsp        "Pass\u00a0word-1"    ok only as bytes            ok only as bytes
  disabled          disabled    Disabled-Passw0rd1    533 (uAC 514)               49 + accountLocked (000001010000Z)
  must_change       mustchange  MustChange-Passw0rd1  773 (pwdLastSet 0)          0 + changeAfterReset (pwdReset)
  account_expired   expired     Expired-Passw0rd1     701 (accountExpires past)   (AD only)
  password_expired  pwdexpired  PwdExpired-Passw0rd1  532 (pwdLastSet -100 days)  49 + passwordExpired
  lockable          locky       Locky-Passw0rd1       ok; lock_out() -> 775       ok; lock_out() -> 49 + accountLocked

Lockout, the same in both: `lockable` locks after 3 wrong passwords (AD: a PSO; OpenLDAP: its own
pwdPolicySubentry), everybody else after 10, so other tests' wrong passwords never lock anybody by
accident; a right password resets the count. lockout_threshold is the 3. AD's sub-code is in
result["message"] ("... data 52e, v1db1"); OpenLDAP's reason only in the password policy response
control, which ldap3 returns undecoded in result["controls"][OID]["value"] (see slapd.py and
directory.ppolicy_response).

groups: "sales" (jdoe, upn_differs, escaped_dn) is a member of "staff" (non_ascii): nested.

samba_ad_other.users (people.OTHER_PEOPLE), DNs under OU=People,DC=other,DC=test:

  key               login       password              state           who
  jdoe              jdoe        Other-Jd0e-Passw0rd!  ok              Jane Other, jane.other@other.test, Research:
                                                                      NOT EXAMPLE\jdoe (John Doe); each
                                                                      password fails in the other domain
  other_only        okeller     Olga-Passw0rd1        ok              Olga Keller, olga.keller@other.test,
                                                                      Research; no okeller in EXAMPLE
  disabled          odisabled   Otto-Passw0rd1        533 (uAC 514)   Otto Disabled, otto@other.test
  lockable          olocky      Olocky-Passw0rd1      ok; lock_out() -> 775 after 3 wrong passwords

samba_ad_other.groups: "research" (Research Team: jdoe, other_only). Domain lockout threshold 10, as in
EXAMPLE. samba_ad_other.admin_dn is CN=Administrator,CN=Users,DC=other,DC=test, Admin-Passw0rd!;
service_dn CN=svc-ssobridge,OU=Services,DC=other,DC=test, Svc-Bridge-Passw0rd!.

`dn` is spelled as the server returns it: Samba escapes `\,` and `\"`, slapd `\2C` and `\22` (both RFC 4514),
so compare DNs parsed, never as strings. `attributes` uses AD names in both directories (givenName, sn,
department, title, telephoneNumber); OpenLDAP stores department as departmentNumber.

Raw ldap3 helpers in directory.py (they prove server behaviour without ssobridge code): connect(),
bind_result(directory, name, password, controls) -> ldap3 result dict, bound() (context manager),
empty_password_bind_result(directory, dn) (the DN + empty password bind ldap3 refuses to send),
ppolicy_response(result) -> {"warning": ..., "error": ...}, PPOLICY_REQUEST (the control tuple to send).
"""

from __future__ import annotations

import os
import shutil
import socket

import pytest

from .directory import DirectoryFixture
from .kerberos import KerberosRealm, set_up_realm
from .network import TEST_NET, BlackHole, DeadPort
from .pki import Pki, create_test_pki
from .samba import start_other_domain, start_samba_ad, start_second_dc, why_samba_cannot_run
from .slapd import start_openldap, why_slapd_cannot_run

AD_HOST = f"{TEST_NET}.2"
OTHER_DOMAIN_HOST = f"{TEST_NET}.3"
SECOND_DC_HOST = f"{TEST_NET}.4"

__all__ = [
    "pki", "samba_ad", "samba_ad_second_dc", "samba_ad_other", "openldap", "dead_port", "dead_ldap_url",
    "dead_ldaps_url", "black_hole", "blackhole_ldap_url", "blackhole_ldaps_url", "kerberos",
]


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Pki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def samba_ad(tmp_path_factory, pki) -> DirectoryFixture:
    reason = why_samba_cannot_run()
    if reason:
        pytest.skip(reason)
    _fail_if_listening(AD_HOST, 636, "a leftover samba from an earlier run?")
    directory = tmp_path_factory.mktemp("samba-ad")
    fixture, dc = start_samba_ad(directory / "dc", pki, AD_HOST)
    yield fixture
    dc.stop()
    shutil.rmtree(directory / "dc", ignore_errors=True)  # ~35 MB; pytest keeps old temp dirs


@pytest.fixture(scope="session")
def samba_ad_second_dc(samba_ad, tmp_path_factory) -> DirectoryFixture:
    """A second DC of EXAMPLE.TEST on 127.0.0.4 with the same accounts (a copy, not a replica):
    failover tests list it first and stop it. Its stop()/start()/outage()/lock_out() act on this DC only."""
    _fail_if_listening(SECOND_DC_HOST, 636, "a leftover samba from an earlier run?")
    directory = tmp_path_factory.mktemp("samba-ad-dc2")
    fixture, dc = start_second_dc(samba_ad, directory / "dc", SECOND_DC_HOST)
    yield fixture
    dc.stop()
    shutil.rmtree(directory / "dc", ignore_errors=True)


@pytest.fixture(scope="session")
def samba_ad_other(tmp_path_factory, pki) -> DirectoryFixture:
    """A second AD domain, OTHER.TEST (NetBIOS OTHER, UPN suffix other.test) on 127.0.0.3."""
    reason = why_samba_cannot_run()
    if reason:
        pytest.skip(reason)
    _fail_if_listening(OTHER_DOMAIN_HOST, 636, "a leftover samba from an earlier run?")
    directory = tmp_path_factory.mktemp("samba-ad-other")
    fixture, dc = start_other_domain(directory / "dc", pki, OTHER_DOMAIN_HOST)
    yield fixture
    dc.stop()
    shutil.rmtree(directory / "dc", ignore_errors=True)


@pytest.fixture(scope="session")
def kerberos(samba_ad, tmp_path_factory) -> KerberosRealm:
    """samba_ad's KDC, the SPN HTTP/sso.example.test, its keytab, a krb5.conf (KRB5_CONFIG for the session)."""
    realm = set_up_realm(samba_ad, samba_ad.control.dc.directory, tmp_path_factory.mktemp("kerberos"))
    before = os.environ.get("KRB5_CONFIG")
    os.environ["KRB5_CONFIG"] = str(realm.krb5_conf)
    yield realm
    if before is None:
        os.environ.pop("KRB5_CONFIG", None)
    else:
        os.environ["KRB5_CONFIG"] = before


@pytest.fixture(scope="session")
def openldap(tmp_path_factory, pki) -> DirectoryFixture:
    reason = why_slapd_cannot_run()
    if reason:
        pytest.skip(reason)
    fixture, slapd = start_openldap(tmp_path_factory.mktemp("slapd"), pki)
    yield fixture
    slapd.stop()


@pytest.fixture(scope="session")
def dead_port() -> DeadPort:
    port = DeadPort()
    yield port
    port.close()


@pytest.fixture(scope="session")
def dead_ldap_url(dead_port) -> str:
    return f"ldap://{dead_port.host}:{dead_port.port}"


@pytest.fixture(scope="session")
def dead_ldaps_url(dead_port) -> str:
    return f"ldaps://{dead_port.host}:{dead_port.port}"


@pytest.fixture(scope="session")
def black_hole() -> BlackHole:
    hole = BlackHole()
    yield hole
    hole.close()


@pytest.fixture(scope="session")
def blackhole_ldap_url(black_hole) -> str:
    return f"ldap://{black_hole.host}:{black_hole.port}"


@pytest.fixture(scope="session")
def blackhole_ldaps_url(black_hole) -> str:
    return f"ldaps://{black_hole.host}:{black_hole.port}"


def _fail_if_listening(host: str, port: int, hint: str) -> None:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return
    pytest.fail(f"something already listens on {host}:{port} ({hint}); see `ss -ltnp`")
