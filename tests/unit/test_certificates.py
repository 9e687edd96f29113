"""Certificate expiry: the line `ssobridge check` prints (the date, the days left, when it warns) and the dates
by source."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509

from ssobridge.certificates import WARN_DAYS, certificate_expiries, expiry_line
from ssobridge.directory import DirectorySet
from tests.support.pki import create_ca

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc).timestamp()
DAY = 86400


@pytest.mark.parametrize("left, line", [
    (365 * DAY, "certificate valid until 2027-03-01 (365 days left)"),
    (WARN_DAYS * DAY, "certificate valid until 2026-03-31 (30 days left)"),
    (WARN_DAYS * DAY - 1, "WARNING: certificate expires on 2026-03-31 (29 days left): renew it"),
    (DAY + 3600, "WARNING: certificate expires on 2026-03-02 (1 day left): renew it"),
    (3600, "WARNING: certificate expires on 2026-03-01 (0 days left): renew it"),
    (0, "PROBLEM: certificate expired on 2026-03-01: renew it"),
    (-40 * DAY, "PROBLEM: certificate expired on 2026-01-20: renew it"),
])
def test_expiry_line_warns_when_fewer_than_30_days_are_left(left, line):
    assert expiry_line("certificate", NOW + left, NOW) == line


def test_certificate_expiries_gives_the_servers_own_under_server(tmp_path):
    ca = create_ca(tmp_path, "Expiry Test CA")
    ours = ca.issue(tmp_path, "ours", ["localhost"], valid_for=timedelta(days=10))
    expires = x509.load_pem_x509_certificate(ours.cert_file.read_bytes()).not_valid_after_utc.timestamp()
    assert certificate_expiries(DirectorySet([]), str(ours.cert_file)) == {"server": expires}
    assert certificate_expiries(DirectorySet([]), str(tmp_path / "missing.pem")) == {}
