"""A throw-away PKI for the test directories: our CA, a server certificate, and the wrong ones.

The server certificate names every host a test may use for a directory server (localhost, dc1/dc2/ldap
.example.test, 127.0.0.1-127.0.0.9), so one file serves Samba and slapd. The "wrong" material exists for
the negative TLS tests: a second CA that signed nothing we serve (wrong ca_file), and `issue()` for a
certificate whose name does not match the host (hostname check).

RSA 2048, not EC: the .NET/Mono client and GnuTLS in Samba and slapd all accept it without a second look.
Certificates carry SKI/AKI, because Python 3.13 and newer reject a chain without them.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .network import TEST_NET

SERVER_DNS_NAMES = ("localhost", "dc1.example.test", "dc2.example.test", "ldap.example.test")
SERVER_IP_ADDRESSES = tuple(dict.fromkeys(f"{net}.{n}" for net in ("127.0.0", TEST_NET) for n in range(1, 10)))
WRONG_HOST_NAME = "wrong.example.test"

# Generous on both sides: a server may run under faketime days ahead (password expiry tests).
_VALID_BEFORE_NOW = datetime.timedelta(days=1)
_VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, as PEM files (the key readable by its owner only)."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class CertificateAuthority:
    name: str
    files: KeyPair
    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey

    @property
    def cert_file(self) -> Path:
        return self.files.cert_file

    def issue(self, directory: Path, file_stem: str, dns_names=(), ip_addresses=(),
              valid_for: datetime.timedelta = _VALIDITY) -> KeyPair:
        """A TLS server certificate signed by this CA, for exactly the given names, valid until `valid_for`
        from now."""
        key = _new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (list(dns_names) + list(ip_addresses))[0])])
        alternative_names = [x509.DNSName(name) for name in dns_names]
        alternative_names += [x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses]
        certificate = (
            _builder(subject, self.certificate.subject, key, valid_for)
            .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True, key_encipherment=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.private_key.public_key()),
                           critical=False)
            .sign(self.private_key, hashes.SHA256())
        )
        return _write_pair(directory, file_stem, certificate, key)


@dataclass(frozen=True)
class Pki:
    ca: CertificateAuthority  # signed the servers' certificate: the ca_file of every fixture
    server: KeyPair  # valid for SERVER_DNS_NAMES and SERVER_IP_ADDRESSES
    wrong_ca: CertificateAuthority  # signed nothing we serve: the "wrong CA file"
    wrong_host: KeyPair  # signed by `ca`, but only for WRONG_HOST_NAME: fails every hostname check


def create_ca(directory: Path, name: str) -> CertificateAuthority:
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ssobridge tests"),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        _builder(subject, subject, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    stem = name.lower().replace(" ", "-")
    return CertificateAuthority(name, _write_pair(directory, stem, certificate, key), certificate, key)


def create_test_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca = create_ca(directory, "ssobridge Test CA")
    return Pki(
        ca=ca,
        server=ca.issue(directory, "server", SERVER_DNS_NAMES, SERVER_IP_ADDRESSES),
        wrong_ca=create_ca(directory, "Unrelated Test CA"),
        wrong_host=ca.issue(directory, "wrong-host", [WRONG_HOST_NAME]),
    )


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _builder(subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey,
             valid_for: datetime.timedelta = _VALIDITY) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _VALID_BEFORE_NOW)
        .not_valid_after(now + valid_for)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _key_usage(**granted: bool) -> x509.KeyUsage:
    usages = dict(digital_signature=False, content_commitment=False, key_encipherment=False,
                  data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                  encipher_only=False, decipher_only=False)
    return x509.KeyUsage(**(usages | granted))


def _write_pair(directory: Path, stem: str, certificate: x509.Certificate, key: rsa.RSAPrivateKey) -> KeyPair:
    cert_file = directory / f"{stem}.crt"
    key_file = directory / f"{stem}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    # Samba refuses a key file that others can read; slapd does not care, but 0600 is right for both.
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    return KeyPair(cert_file, key_file)
