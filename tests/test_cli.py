"""`ssobridge check` and `ssobridge test-login` as an administrator runs them, against real directories."""

from __future__ import annotations

import datetime
import os
import socket
import subprocess
import sys

from cryptography import x509

from tests.support.services import MESSAGES, WEB_SERVICE_PASSWORD, WRONG, ad_config, openldap_config, toml_string
from tests.support.services import directory_toml, ssobridge


def write_config(tmp_path, body: str):
    path = tmp_path / "ssobridge.toml"
    path.write_text(f"[smartertrack]\nweb_service_password = {toml_string(WEB_SERVICE_PASSWORD)}\n{body}",
                    encoding="utf-8")
    return path


def test_check_passes_for_a_good_config(tmp_path, samba_ad, openldap):
    path = write_config(tmp_path, ad_config(samba_ad) + openldap_config(openldap))
    done = ssobridge("check", "--config", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"  {samba_ad.ldaps_url}: OK" in done.stdout and f"  {openldap.ldaps_url}: OK" in done.stdout
    assert "user_filter finds users" in done.stdout
    assert done.stdout.rstrip().endswith("all checks passed")


def test_check_spells_out_a_wrong_ca_file(tmp_path, openldap, pki):
    path = write_config(tmp_path, openldap_config(openldap, ca_file=str(openldap.wrong_ca_file)))
    done = ssobridge("check", "--config", str(path))
    assert done.returncode == 1
    assert f"  {openldap.ldaps_url}: PROBLEM" in done.stdout
    assert "TLS certificate not trusted (check ca_file)" in done.stdout
    assert f"issued by {pki.ca.certificate.subject.rfc4514_string()}" in done.stdout
    assert f"trusts: {pki.wrong_ca.certificate.subject.rfc4514_string()}" in done.stdout


def test_check_spells_out_a_host_name_the_certificate_does_not_have(tmp_path, openldap):
    url = f"ldaps://{openldap.host_not_in_certificate}:{openldap.ldaps_port}"
    done = ssobridge("check", "--config", str(write_config(tmp_path, openldap_config(openldap, urls=[url]))))
    assert done.returncode == 1
    assert (f"TLS certificate does not match the server name in the URL ({openldap.host_not_in_certificate}); "
            "the certificate names: localhost") in done.stdout


def test_check_says_a_wrong_user_filter_matches_nobody(tmp_path, samba_ad):
    path = write_config(tmp_path, ad_config(samba_ad, user_filter="(&(objectClass=inetOrgPerson)(uid={user}))"))
    done = ssobridge("check", "--config", str(path))
    assert done.returncode == 1
    assert "PROBLEM: user_filter matches no entry under base_dn, whatever the username" in done.stdout
    assert "Active Directory uses sAMAccountName and userPrincipalName" in done.stdout


def test_check_names_a_dead_server_and_a_config_error(tmp_path, openldap, dead_ldaps_url):
    path = write_config(tmp_path, openldap_config(openldap, urls=[dead_ldaps_url, openldap.ldaps_url]))
    done = ssobridge("check", "--config", str(path))
    assert done.returncode == 1
    assert f"  {dead_ldaps_url}: PROBLEM" in done.stdout and "Connection refused" in done.stdout
    assert f"  {openldap.ldaps_url}: OK" in done.stdout
    broken = write_config(tmp_path, "[[directory]]\ntype = 'ldap'\n")
    done = ssobridge("check", "--config", str(broken))
    assert done.returncode == 2 and "directory[0].urls: is required" in done.stderr


def test_check_and_test_login_say_a_host_name_that_does_not_resolve(tmp_path, openldap):
    unresolvable = f"ldaps://dc1.corp.invalid:{openldap.ldaps_port}"  # .invalid never resolves (RFC 2606)
    path = write_config(tmp_path, openldap_config(openldap, urls=[unresolvable, openldap.ldaps_url]))
    done = ssobridge("check", "--config", str(path))
    assert done.returncode == 1
    assert (f"  {unresolvable}: PROBLEM\n    cannot resolve dc1.corp.invalid: check the host name in urls and "
            "this machine's DNS\n") in done.stdout
    assert f"  {openldap.ldaps_url}: OK" in done.stdout
    path = write_config(tmp_path, openldap_config(openldap, urls=[unresolvable]))
    done = ssobridge("test-login", "--config", str(path), "--sso", "jdoe")
    assert done.returncode == 2
    assert (f"error:      {unresolvable}: cannot resolve dc1.corp.invalid: check the host name in urls and "
            "this machine's DNS\n") in done.stdout


def test_test_login_shows_every_step_and_the_exact_outputs(tmp_path, samba_ad):
    user = samba_ad.users["jdoe"]
    path = write_config(tmp_path, ad_config(samba_ad))
    done = ssobridge("test-login", "--config", str(path), "--password-stdin", f"EXAMPLE\\{user.login}",
                     stdin=user.password + "\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "directory:  example-ad (active_directory)" in done.stdout
    assert "filter:     (&(objectCategory=person)(objectClass=user)(|(sAMAccountName=jdoe)" in done.stdout
    assert f"server:     {samba_ad.ldaps_url}" in done.stdout
    assert f"entry:      {user.dn}" in done.stdout
    assert "result:     Success=true Message='Login Successful'" in done.stdout
    assert "Authentication=OK" in done.stdout and f"EmailAddress={user.mail}" in done.stdout
    assert user.password not in done.stdout + done.stderr


def test_test_login_fail_and_sso(tmp_path, openldap):
    path = write_config(tmp_path, openldap_config(openldap))
    wrong = ssobridge("test-login", "--config", str(path), "--password-stdin", "jdoe", stdin="nope\n")
    assert wrong.returncode == 1 and f"Message={WRONG!r}" in wrong.stdout
    sso = ssobridge("test-login", "--config", str(path), "--sso", openldap.users["disabled"].login)
    assert sso.returncode == 1
    assert "account state read from its attributes: DISABLED" in sso.stdout
    assert f"Message={MESSAGES['disabled']!r}" in sso.stdout


def test_test_login_explains_a_wrong_user_filter(tmp_path, openldap):
    path = write_config(tmp_path, openldap_config(openldap, user_filter="(&(objectClass=user)(sAMAccountName={user}))"))
    done = ssobridge("test-login", "--config", str(path), "--sso", "jdoe")
    assert done.returncode == 1
    assert "reason:     no such user" in done.stdout
    assert "PROBLEM: user_filter matches no entry under base_dn, whatever the username" in done.stdout


def test_test_login_with_the_directory_down_is_an_error(tmp_path, openldap, dead_ldaps_url):
    path = write_config(tmp_path, openldap_config(openldap, urls=[dead_ldaps_url]))
    done = ssobridge("test-login", "--config", str(path), "--sso", "jdoe")
    assert done.returncode == 2
    assert "error:      " in done.stdout and "Connection refused" in done.stdout


def test_config_defaults_to_the_working_directory_or_the_environment(tmp_path, openldap):
    path = write_config(tmp_path, openldap_config(openldap))
    done = subprocess.run([sys.executable, "-m", "ssobridge", "test-login", "--sso", "jdoe"], cwd=tmp_path,
                          capture_output=True, encoding="utf-8", timeout=60)
    assert done.returncode == 0, done.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run([sys.executable, "-m", "ssobridge", "test-login", "--sso", "jdoe"], cwd=elsewhere,
                          capture_output=True, encoding="utf-8", timeout=60,
                          env={**os.environ, "SSOBRIDGE_CONFIG": str(path)})
    assert done.returncode == 0, done.stderr



def test_a_missing_config_file_is_named_with_its_full_path_and_where_it_came_from(tmp_path):
    done = subprocess.run([sys.executable, "-m", "ssobridge", "check"], cwd=tmp_path, capture_output=True,
                          encoding="utf-8", timeout=60, env={k: v for k, v in os.environ.items()
                                                             if k != "SSOBRIDGE_CONFIG"})
    assert done.returncode == 2
    assert done.stderr == (f"ssobridge: config file not found: {tmp_path / 'ssobridge.toml'}\n"
                           "  (from the default, ssobridge.toml in the working directory; name the file with "
                           "--config FILE or $SSOBRIDGE_CONFIG)\n")
    done = subprocess.run([sys.executable, "-m", "ssobridge", "serve", "--config", "conf/x.toml"], cwd=tmp_path,
                          capture_output=True, encoding="utf-8", timeout=60)
    assert done.returncode == 2
    assert done.stderr == (f"ssobridge: config file not found: {tmp_path / 'conf' / 'x.toml'}\n"
                           "  (from --config; name the file with --config FILE or $SSOBRIDGE_CONFIG)\n")


def test_healthcheck_follows_the_service(tmp_path):
    from tests.support.services import start_service
    service = start_service(tmp_path, "")
    config = tmp_path / "ssobridge.toml"
    try:
        assert ssobridge("healthcheck", "--config", str(config)).returncode == 0
    finally:
        service.stop()
    done = ssobridge("healthcheck", "--config", str(config))
    assert done.returncode == 1 and "Connection refused" in done.stderr


def test_an_event_database_that_cannot_be_opened_stops_serve_with_the_key_named(tmp_path):
    (tmp_path / "not-a-folder").write_text("x")
    path = write_config(tmp_path, '[events]\ndatabase = "not-a-folder/events.db"\n')
    done = ssobridge("serve", "--config", str(path))
    assert done.returncode == 2
    assert "events.database: cannot open" in done.stderr and "Traceback" not in done.stderr


def test_a_card_store_that_cannot_be_created_stops_serve_with_data_dir_named(tmp_path, openldap):
    (tmp_path / "ssobridge-cards.db").mkdir()  # in data_dir (the config's folder): not a file SQLite can open
    path = write_config(tmp_path, openldap_config(openldap) + "[user_info]\n")
    done = ssobridge("serve", "--config", str(path))
    assert done.returncode == 2
    assert done.stderr == (f"ssobridge: [server] data_dir: cannot open the user card store in {tmp_path}: "
                           f"[Errno 21] Is a directory: '{tmp_path / 'ssobridge-cards.db'}'\n")


def test_serve_on_a_port_in_use_says_which_address_and_the_key_to_change(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = ssobridge("serve", "--config", str(write_config(tmp_path, f'[server]\nlisten = "127.0.0.1:{port}"\n')))
    assert done.returncode == 1
    assert done.stderr == (f"ssobridge: 127.0.0.1:{port} is already in use by another program: stop it, or change "
                           "[server] listen\n")


def test_check_says_the_lockout_counters_are_read_on_both_servers(tmp_path, samba_ad, openldap):
    only_jdoe = "(&(objectClass=user)(sAMAccountName=jdoe)(|(sAMAccountName={user})(userPrincipalName={upn})))"
    path = write_config(tmp_path, ad_config(samba_ad, user_filter=only_jdoe) + openldap_config(openldap))
    done = ssobridge("check", "--config", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if "lockout counters" in line]
    follows = "the lockout shield follows the directory's own counts"
    assert lines == [
        f"  lockout counters: read by the service account (badPwdCount, badPasswordTime, lockoutTime, "
        f"lockout policy {samba_ad.base_dn}): {follows}",
        f"  lockout counters: read by the service account (pwdFailureTime, lockout policy "
        f"cn=expires-at-once,ou=policies,dc=example,dc=org, lockout policy "
        f"cn=lockout-after-3,ou=policies,dc=example,dc=org): {follows}"]


def test_check_says_a_lockout_policy_the_service_account_cannot_read_means_counting_locally(tmp_path, samba_ad):
    # AD lets only administrators read a fine-grained password policy (PSO), such as `lockable`'s.
    path = write_config(tmp_path, ad_config(samba_ad))
    done = ssobridge("check", "--config", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    [line] = [line for line in done.stdout.splitlines() if "lockout counters" in line]
    assert line == (
        f"  lockout counters: NOT readable by the service account: lockout policy CN=lockout-after-3-locky,"
        f"CN=Password Settings Container,CN=System,{samba_ad.base_dn}; ssobridge counts wrong passwords itself "
        f"instead (in data_dir: shared by this host's workers, not with other hosts), and an unreadable policy "
        f"counts as the strictest. Grant the service account read access to them.")


def test_check_dates_each_certificate_and_warns_of_one_expiring_within_30_days(tmp_path, openldap, pki):
    short = pki.ca.issue(tmp_path, "short-lived", ["localhost"], valid_for=datetime.timedelta(days=10))
    server = (f'[server]\ntls_cert = {toml_string(str(short.cert_file))}\n'
              f'tls_key = {toml_string(str(short.key_file))}\n')
    done = ssobridge("check", "--config", str(write_config(tmp_path, server + openldap_config(openldap))))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    ours = x509.load_pem_x509_certificate(short.cert_file.read_bytes()).not_valid_after_utc
    assert lines[1] == (f"WARNING: HTTPS certificate (tls_cert) {short.cert_file} expires on {ours:%Y-%m-%d} "
                        f"(9 days left): renew it")
    slapd = x509.load_pem_x509_certificate(pki.server.cert_file.read_bytes()).not_valid_after_utc
    days = (slapd - datetime.datetime.now(datetime.timezone.utc)).days
    at = lines.index(f"  {openldap.ldaps_url}: OK")
    assert lines[at + 1:at + 3] == ["    TLS handshake and certificate OK",
                                    f"    certificate valid until {slapd:%Y-%m-%d} ({days} days left)"]
    assert lines[-1] == "all checks passed, 1 warning(s)"


def test_the_example_config_passes_check_once_its_directory_table_is_yours(tmp_path, samba_ad):
    """The manual way: `cp config.example.toml ssobridge.toml`, edit the [[directory]] table, `check`. No sample
    rule may name a group the directory lacks (they are in docs/examples/group-rules.toml instead)."""
    from pathlib import Path
    example = (Path(__file__).parents[1] / "config.example.toml").read_text(encoding="utf-8")
    start, end = example.index("[[directory]]\n"), example.index("# This directory's own mappings")
    ours = directory_toml("corp", "active_directory", [samba_ad.ldaps_url], samba_ad.base_dn, samba_ad.service_dn,
                          "${SSOBRIDGE_BIND_PASSWORD}", str(samba_ad.ca_file), netbios_domain=samba_ad.netbios_domain,
                          upn_suffixes=[samba_ad.upn_suffix])
    config = tmp_path / "ssobridge.toml"
    config.write_text(example[:start] + ours + "\n" + example[end:], encoding="utf-8")
    (tmp_path / ".env").write_text(f"SSOBRIDGE_WEB_SERVICE_PASSWORD=a-long-random-string\n"
                                   f"SSOBRIDGE_BIND_PASSWORD={samba_ad.service_password}\n", encoding="utf-8")
    done = ssobridge("check", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PROBLEM" not in done.stdout and "not found in any directory" not in done.stdout


def test_check_says_when_ca_file_is_the_servers_own_certificate(tmp_path, openldap, pki):
    pinned = tmp_path / "dc.pem"
    pinned.write_bytes(pki.server.cert_file.read_bytes())
    config = write_config(tmp_path, openldap_config(openldap, ca_file=str(pinned)))
    done = ssobridge("check", "--config", str(config))
    assert done.returncode == 0, done.stdout
    assert (f"  ca_file {pinned}: the server's own certificate (CN=localhost), not a "
            "CA: it is trusted as itself, so when it is renewed ca_file must be replaced") in done.stdout
