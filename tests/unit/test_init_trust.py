"""init's trust anchor (init/trust.py): the CA when the DC presents one, else the DC's own certificate, pinned;
and a --trust fingerprint matched in any spelling."""

from __future__ import annotations

from cryptography.hazmat.primitives.serialization import Encoding

from ssobridge.init.trust import Handshake, Presented
from tests.support.pki import create_test_pki


def test_a_dc_presenting_leaf_and_ca_is_anchored_at_the_ca_and_one_presenting_only_its_own_is_pinned(tmp_path):
    pki = create_test_pki(tmp_path)
    leaf = Presented(_der(pki.server.cert_file))
    ca = Presented(pki.ca.certificate.public_bytes(Encoding.DER))
    chained = Handshake("dc1.corp.test", 636, False, (leaf, ca))
    assert (chained.anchor, chained.pinned) == (ca, False)
    alone = Handshake("dc1.corp.test", 636, False, (leaf,))
    assert (alone.anchor, alone.pinned) == (leaf, True)


def test_a_trust_fingerprint_matches_with_or_without_colons_in_any_case(tmp_path):
    pki = create_test_pki(tmp_path)
    ca = Presented(pki.ca.certificate.public_bytes(Encoding.DER))
    handshake = Handshake("dc1.corp.test", 636, False, (Presented(_der(pki.server.cert_file)), ca))
    plain = ca.sha256.replace(":", "")
    colons = ":".join(plain[i:i + 2] for i in range(0, len(plain), 2)).lower()
    assert handshake.matching(plain) is ca and handshake.matching(colons) is ca
    assert handshake.matching("00" * 32) is None


def _der(path) -> bytes:
    from cryptography import x509
    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER)
