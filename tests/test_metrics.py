"""GET /metrics: Prometheus text, counted in every worker process and summed in each scrape.

The service runs two workers (pinned, so the test means the same on any machine); the counts must be
exact whichever worker answered which call and which worker answers the scrape.
"""

from __future__ import annotations

from tests.support.services import (WRONG, authenticate, call, openldap_config, sign_in_cookie,
                                    start_service)
from tests.support.events import jsonl, notify, wait_for
from tests.support.services import get, JSONL_ONLY, LOCKOUT, pids_of, scrape, TWO_WORKERS, value


def test_logins_over_two_workers_are_counted_exactly_in_every_scrape(openldap, tmp_path):
    """6 good logins and an SSO sign-in, 5 wrong passwords until the shield's soft lock (jdoe locks after 10:
    soft threshold 5), then one refused without a bind, and one call with a wrong authPW."""
    good, jdoe = openldap.users["no_mail"], openldap.users["jdoe"]
    config = openldap_config(openldap, ppolicy_default_dn="cn=default,ou=policies,dc=example,dc=org") + JSONL_ONLY
    service = start_service(tmp_path, config, server=TWO_WORKERS, log_level="INFO")
    url = openldap.ldaps_url
    try:
        for _ in range(6):
            assert authenticate(service, good.login, good.password)["OutputVariables"][0] == "Authentication=OK"
        assert sign_in_cookie(service, good.login)["OutputVariables"][0] == "Authentication=OK"
        assert [authenticate(service, jdoe.login, f"wrong-{i}-Passw0rd")["Message"] for i in range(6)] == \
            [WRONG] * 5 + [LOCKOUT]
        assert call(service.url, "Authenticate", ["authPW=not-it", f"loginUsername={good.login}",
                                                  "loginPassword=x"])["Success"] is False
        assert notify(service, "511006", n="1")["Success"] is True
        wait_for(lambda: len(jsonl(tmp_path)) == 1)
        # The line is written before the outbox records it delivered: wait for that too, or a scrape in between
        # counts the event as pending.
        wait_for(lambda: value(scrape(service), "ssobridge_events_pending", sink="archive") == 0)
        assert len(set(pids_of(service.log(), "event=login "))) == 2  # both workers answered logins
        scrapes = [scrape(service) for _ in range(4)]  # whichever worker answers, the same sums
    finally:
        service.stop()
        service.unlock(jdoe.login)
        openldap.unlock(jdoe)
    for samples in scrapes:
        assert value(samples, "ssobridge_requests_total", operation="Authenticate", outcome="ok") == 12
        assert value(samples, "ssobridge_requests_total", operation="Authenticate", outcome="refused") == 1
        assert value(samples, "ssobridge_requests_total", operation="GetSignInCookieInfo", outcome="ok") == 1
        assert value(samples, "ssobridge_requests_total", operation="NotifyEventFired", outcome="ok") == 1
        assert value(samples, "ssobridge_request_duration_seconds_count", operation="Authenticate") == 13
        assert value(samples, "ssobridge_logins_total", operation="Authenticate", result="ok", reason="login_ok") == 6
        assert value(samples, "ssobridge_logins_total", operation="GetSignInCookieInfo", result="ok",
                     reason="login_ok") == 1
        assert value(samples, "ssobridge_logins_total", operation="Authenticate", result="fail",
                     reason="wrong_credentials") == 5
        assert value(samples, "ssobridge_logins_total", operation="Authenticate", result="fail", reason="lockout") == 1
        assert value(samples, "ssobridge_lockout_refusals_total", reason="locked") == 1
        assert value(samples, "ssobridge_lockout_soft_locked_accounts") == 1
        # A bind per password that reached the directory: 6 good, 5 wrong; the soft-locked one never did.
        assert value(samples, "ssobridge_directory_request_duration_seconds_count", directory="example-openldap",
                     kind="bind") == 11
        assert value(samples, "ssobridge_directory_server_up", directory="example-openldap", server=url) == 1
        assert value(samples, "ssobridge_events_pending", sink="archive") == 0
        assert value(samples, "ssobridge_events_dead", sink="archive") == 0
        names = {name for name, _ in samples}
        assert not any(jdoe.login in str(labels) or good.login in str(labels) for _, labels in samples)
        assert "ssobridge_directory_request_duration_seconds_bucket" in names


def test_a_directory_certificate_date_is_the_one_its_server_presented(openldap, pki, tmp_path):
    from cryptography import x509
    service = start_service(tmp_path, openldap_config(openldap), server="workers = 1\n")
    try:
        user = openldap.users["jdoe"]
        assert authenticate(service, user.login, user.password)["OutputVariables"][0] == "Authentication=OK"
        samples = scrape(service)
    finally:
        service.stop()
    presented = x509.load_pem_x509_certificates(pki.server.cert_file.read_bytes())[0]
    assert value(samples, "ssobridge_certificate_expiry_timestamp_seconds",
                 source=f"directory:example-openldap:{openldap.ldaps_url}") == presented.not_valid_after_utc.timestamp()


def test_metrics_token_is_required_when_set(openldap, tmp_path):
    service = start_service(tmp_path, openldap_config(openldap), server='metrics_token = "scrape-T0ken"\n')
    try:
        status, headers, text = get(service, "/metrics")
        assert (status, headers["www-authenticate"], text) == (
            401, 'Bearer realm="ssobridge metrics"', "A bearer token is required ([server] metrics_token).\n")
        assert get(service, "/metrics", {"Authorization": "Bearer scrape-T0kem"})[0] == 401
        assert get(service, "/metrics", {"Authorization": "Basic scrape-T0ken"})[0] == 401
        samples = scrape(service, {"Authorization": "Bearer scrape-T0ken"})
        assert value(samples, "ssobridge_lockout_soft_locked_accounts") == 0
    finally:
        service.stop()


def test_metrics_off_answers_404(openldap, tmp_path):
    service = start_service(tmp_path, openldap_config(openldap), server="metrics = false\n")
    try:
        status, _, text = get(service, "/metrics")
        assert (status, text) == (404, "Metrics are off in this service ([server] metrics = false).\n")
    finally:
        service.stop()
    assert not (tmp_path / "metrics").exists()
