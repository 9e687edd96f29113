"""A Samba AD DC with its own DNS server, for discovery (`ssobridge init`, [[directory]] domain): CORP.TEST.

Provisioned with --dns-backend=SAMBA_INTERNAL and started with `server services = ldap dns`: on its loopback
address, port 53, it answers `_ldap._tcp.dc._msdcs.corp.test` (SRV 0 100 389 dc1.corp.test.) and the A record
of dc1.corp.test. Nothing else on the machine resolves corp.test, so every lookup names this nameserver.
Its certificate is for dc1.corp.test and its address (the fixture's own admin connections go by address),
and its certfile holds that certificate and then the test CA's, so it presents both, as an AD CS-issued DC
certificate often is. The accounts are samba.py's recipe (people.py), NetBIOS CORP.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .directory import DirectoryFixture
from .people import GROUPS, NESTED_GROUPS, PEOPLE
from .pki import KeyPair, Pki
from .samba import ADMIN_PASSWORD, AdDomain, SambaDomainController, _copy_running_dc, start_samba_ad

CORP_DOMAIN = AdDomain("CORP.TEST", "CORP", PEOPLE, GROUPS, NESTED_GROUPS)
DNS_DOMAIN = CORP_DOMAIN.upn_suffix  # corp.test
DC_NAME = f"dc1.{DNS_DOMAIN}"
SRV_RECORD = f"_ldap._tcp.dc._msdcs.{DNS_DOMAIN}"


@dataclass
class DnsDomain:
    """The running DC of corp.test: `nameserver` is its address (DNS on port 53)."""

    directory: DirectoryFixture
    dc: SambaDomainController
    nameserver: str
    chain: KeyPair  # certfile: dc1.corp.test, then the CA

    def samba_tool_dns(self, *arguments: str) -> None:
        """`samba-tool dns ARGUMENTS` against this DC, as Administrator (add, delete records)."""
        result = subprocess.run(
            ["samba-tool", "dns", *arguments, "-s", str(self.dc.directory / "etc" / "smb.conf"),
             "-U", f"Administrator%{ADMIN_PASSWORD}"], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"samba-tool dns {' '.join(arguments)}: {result.stdout}{result.stderr}")


def chain_certificate(pki: Pki, directory: Path, name: str, address: str) -> KeyPair:
    """A certificate for `name` and `address` signed by the test CA, its file holding it and then the CA's."""
    leaf = pki.ca.issue(directory, name.replace(".", "-"), [name], [address])
    chain = directory / f"{name.replace('.', '-')}-chain.crt"
    chain.write_bytes(leaf.cert_file.read_bytes() + pki.ca.cert_file.read_bytes())
    return KeyPair(chain, leaf.key_file)


def start_dns_domain(directory: Path, pki: Pki, host: str) -> DnsDomain:
    """Provision (cached), start and populate corp.test on `host`; the caller must dc.stop() it."""
    directory.mkdir(parents=True, exist_ok=True)
    chain = chain_certificate(pki, directory, DC_NAME, host)
    fixture, dc = start_samba_ad(directory / "dc", pki, host, CORP_DOMAIN, dns_tls=chain)
    return DnsDomain(fixture, dc, host, chain)


def start_second_dns_dc(domain: DnsDomain, pki: Pki, directory: Path, host: str, name: str
                        ) -> SambaDomainController:
    """Another DC of corp.test on `host`, presenting a certificate for `name` (and the CA), LDAP only: a copy of
    the first DC's databases taken now (samba.start_second_dc says what that means). DNS does not know it
    until a test adds its records (DnsDomain.samba_tool_dns). The caller must stop() it."""
    directory.mkdir(parents=True, exist_ok=True)
    chain = chain_certificate(pki, directory, name, host)
    _copy_running_dc(domain.dc.directory, directory / "dc")
    smb_conf = directory / "dc" / "etc" / "smb.conf"
    text = smb_conf.read_text().replace(str(domain.dc.directory), str(directory / "dc"))
    smb_conf.write_text(re.sub(r"^(\s*interfaces\s*=).*$", rf"\g<1> {host}/8", text, flags=re.MULTILINE))
    dc = SambaDomainController(directory / "dc", host, pki, services="ldap", tls=chain)
    dc.start()
    return dc
