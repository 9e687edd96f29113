"""Kerberos against the samba_ad DC's KDC: an SPN for ssobridge, its keytab, a krb5.conf, tickets for people.

samba_ad runs Samba's KDC beside LDAP (`server services = ldap kdc`), on port 88 of its own address only.
The `kerberos` fixture (session-scoped, on top of samba_ad) adds:
- the account `sso-http` (OU=Services) with servicePrincipalName HTTP/sso.example.test and, as Windows'
  `ktpass -mapuser` sets it, userPrincipalName HTTP/sso.example.test@EXAMPLE.TEST (so the keytab can get
  itself a ticket: `kinit -k`, which verify_keytab does);
- its keytab, exported by `samba-tool domain exportkeytab --principal=...` from the DC's sam.ldb (~1.5 s);
- a krb5.conf naming the DC's address as the realm's KDC, no DNS lookups, no reverse DNS (the SPN's host
  name sso.example.test never needs to resolve: the client builds the target name HTTP@sso.example.test);
- KRB5_CONFIG set to it in os.environ for the whole session (MIT krb5 reads it at every context), so the
  test process and any ssobridge started from it find the realm. Removed again at the end.

Use it:
    ccache = kerberos.kinit(samba_ad.users["jdoe"])        # `kinit` with the password, a FILE: ccache
    header = kerberos.negotiate_header(ccache)             # "Negotiate <base64>" for HTTP@sso.example.test
    client = kerberos.negotiate_client(ccache)             # client.step() -> token; client.step(answer): mutual
    KerberosAcceptor(kerberos.keytab, kerberos.principal).accept(header).principal == "jdoe@EXAMPLE.TEST"
    kerberos.export_keytab(path, principal)                # another keytab (e.g. after reset_service_key)
    kerberos.reset_service_key()                           # new password for sso-http: the kvno goes up

Measured (2 cores, provisioning cached): samba_ad plus this fixture set up in 4.6 s together (samba with the
KDC starts as before: port 88 listens when LDAPS does); kinit 0.03 s; a client token 0.08 s.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

import ldap3

from .directory import DirectoryFixture, DirectoryUser, bound

SERVICE_HOST = "sso.example.test"
SPN_ACCOUNT = "sso-http"


@dataclass(frozen=True)
class KerberosRealm:
    """The realm of samba_ad as a Kerberos client sees it, and ssobridge's service principal in it."""

    directory: DirectoryFixture
    smb_conf: Path
    work: Path
    krb5_conf: Path
    keytab: str  # the service keytab, exported from the DC
    realm: str = "EXAMPLE.TEST"
    host: str = SERVICE_HOST

    @property
    def spn(self) -> str:
        return f"HTTP/{self.host}"

    @property
    def principal(self) -> str:
        return f"{self.spn}@{self.realm}"

    @property
    def account_dn(self) -> str:
        return f"CN={SPN_ACCOUNT},OU=Services,{self.directory.base_dn}"

    def kinit(self, user: DirectoryUser, name: str | None = None) -> str:
        """A ticket-granting ticket for `user` in a FILE ccache of its own (`kinit` with the password on
        stdin); returns the ccache name for KRB5CCNAME."""
        ccache = f"FILE:{self.work / f'ccache-{user.key}-{secrets.token_hex(4)}'}"
        principal = name or f"{user.login}@{self.realm}"
        result = subprocess.run(["kinit", principal], input=user.password + "\n", capture_output=True,
                                text=True, env=dict(os.environ, KRB5CCNAME=ccache, KRB5_CONFIG=str(self.krb5_conf)))
        if result.returncode != 0:
            raise RuntimeError(f"kinit {principal} failed: {result.stdout}{result.stderr}")
        return ccache

    def negotiate_client(self, ccache: str, host: str | None = None, service: str = "HTTP"):
        """A browser's side of Negotiate (a pyspnego client) for service@host with the tickets in `ccache`:
        client.step() gives the first token; client.step(answer) checks the server's mutual-auth answer."""
        import spnego

        return spnego.client(spnego.KerberosCCache(ccache=ccache), hostname=host or self.host, service=service,
                             protocol="negotiate")

    def negotiate_token(self, ccache: str, host: str | None = None, service: str = "HTTP") -> bytes:
        """The first SPNEGO token a browser would send for service@host, from the tickets in `ccache`."""
        return self.negotiate_client(ccache, host, service).step()

    def negotiate_header(self, ccache: str, host: str | None = None) -> str:
        import base64

        return "Negotiate " + base64.b64encode(self.negotiate_token(ccache, host)).decode()

    def export_keytab(self, path: Path, principal: str | None = None) -> str:
        """`samba-tool domain exportkeytab`: the current keys of `principal` (default: the SPN)."""
        path.unlink(missing_ok=True)
        result = subprocess.run(["samba-tool", "domain", "exportkeytab", str(path),
                                 f"--principal={principal or self.principal}", "-s", str(self.smb_conf)],
                                capture_output=True, text=True)
        if result.returncode != 0 or not path.exists():
            raise RuntimeError(f"samba-tool domain exportkeytab failed: {result.stdout}{result.stderr}")
        return str(path)

    def reset_service_key(self) -> None:
        """A new password for the SPN account: new keys, key version number + 1; old keytabs go stale."""
        with bound(self.directory, self.directory.admin_dn, self.directory.admin_password) as admin:
            password = f'"Sso-Http-{secrets.token_hex(8)}!"'.encode("utf-16-le")
            if not admin.modify(self.account_dn, {"unicodePwd": [(ldap3.MODIFY_REPLACE, [password])]}):
                raise RuntimeError(f"resetting {self.account_dn} failed: {admin.result}")


def krb5_conf_text(realm: str, kdc_host: str) -> str:
    return (f"[libdefaults]\n default_realm = {realm}\n dns_lookup_realm = false\n dns_lookup_kdc = false\n"
            f" rdns = false\n dns_canonicalize_hostname = false\n udp_preference_limit = 0\n"
            f"[realms]\n {realm} = {{\n  kdc = {kdc_host}\n }}\n"
            f"[domain_realm]\n .{realm.lower()} = {realm}\n {realm.lower()} = {realm}\n")


def set_up_realm(directory: DirectoryFixture, dc_directory: Path, work: Path) -> KerberosRealm:
    """The SPN account, its keytab and the krb5.conf; the caller sets KRB5_CONFIG (see the fixture)."""
    work.mkdir(parents=True, exist_ok=True)
    krb5_conf = work / "krb5.conf"
    krb5_conf.write_text(krb5_conf_text(directory.realm, directory.host))
    realm = KerberosRealm(directory=directory, smb_conf=dc_directory / "etc" / "smb.conf", work=work,
                          krb5_conf=krb5_conf, keytab=str(work / "sso-http.keytab"), realm=directory.realm)
    with bound(directory, directory.admin_dn, directory.admin_password) as admin:
        password = f'"Sso-Http-{secrets.token_hex(8)}!"'.encode("utf-16-le")
        attributes = {"sAMAccountName": SPN_ACCOUNT, "unicodePwd": password, "userAccountControl": 0x200,
                      "servicePrincipalName": realm.spn, "userPrincipalName": realm.principal,
                      "description": "ssobridge sign-in page: Kerberos service principal"}
        if not admin.add(realm.account_dn, ["top", "person", "organizationalPerson", "user"], attributes):
            raise RuntimeError(f"adding {realm.account_dn} failed: {admin.result}")
    realm.export_keytab(Path(realm.keytab))
    return realm
