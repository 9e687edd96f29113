"""`ssobridge init` against Samba AD with its own DNS server (corp.test, tests/support/samba_dns.py): the
non-interactive run end to end, each refusal, the prompts through a pseudo-terminal, and a DC added to DNS
while serve runs ([[directory]] domain)."""

from __future__ import annotations

import os
import re
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from ssobridge.init.trust import Presented
from tests.support.directory import bound
from tests.support.dotnet_client import outputs
from tests.support.network import TEST_NET
from tests.support.samba import SERVICE_LOGIN, SERVICE_PASSWORD, why_samba_cannot_run
from tests.support.samba_dns import DC_NAME, SRV_RECORD, DnsDomain, start_dns_domain, start_second_dns_dc
from tests.support.services import Service, free_port, scrape, serve, value

DC_HOST = f"{TEST_NET}.20"
SILENT_NAMESERVER = f"{TEST_NET}.21"  # port 53 bound, never answered: a DNS timeout
NO_TLS_HOST = f"{TEST_NET}.22"  # LDAP on 389 that refuses StartTLS, nothing on 636
SECOND_DC_HOST = f"{TEST_NET}.23"


@pytest.fixture(scope="module")
def corp(tmp_path_factory, pki) -> DnsDomain:
    reason = why_samba_cannot_run()
    if reason:
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp("samba-dns")
    domain = start_dns_domain(directory, pki, DC_HOST)
    yield domain
    domain.dc.stop()
    shutil.rmtree(directory / "dc", ignore_errors=True)


@pytest.fixture(scope="module")
def ca_fingerprint(pki) -> str:
    return Presented(pki.ca.certificate.public_bytes(Encoding.DER)).sha256


def init(folder: Path, *arguments: str, password: str = SERVICE_PASSWORD, domain: str = "corp.test",
         nameserver: str = DC_HOST) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ssobridge", "init", domain, "--nameserver", nameserver,
                           "--config", str(folder / "ssobridge.toml"), *arguments],
                          input=password + "\n", capture_output=True, text=True, timeout=60)


def unattended(folder: Path, fingerprint: str, *arguments: str, **options) -> subprocess.CompletedProcess:
    return init(folder, "--service-account", SERVICE_LOGIN, "--password-stdin", "--trust", fingerprint, "--yes",
                *arguments, **options)


def web_service_password(output: str) -> str:
    return re.search(r"Web Service Password: (\S+)", output).group(1)


def start_serve(folder: Path, port: int) -> Service:
    """serve on the config init wrote in `folder`, unedited."""
    return serve(folder / "ssobridge.toml", port)


def authenticate(dotnet, service: Service, password: str, user) -> dict:
    return dotnet.call(service.url, "Authenticate", [f"authPW={password}", f"loginUsername=CORP\\{user.login}",
                                                     f"loginPassword={user.password}"])


def assert_nothing_written(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == []


def test_init_writes_a_config_that_check_test_login_and_serve_use_unedited(corp, ca_fingerprint, tmp_path, dotnet):
    port = free_port()
    result = unattended(tmp_path, ca_fingerprint, "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"* Found {DC_NAME}:389 (SRV {SRV_RECORD}, priority 0, weight 100)" in result.stdout
    assert f"* {DC_NAME} presented 2 certificate(s) over LDAPS:" in result.stdout
    assert f"SHA-256  {ca_fingerprint}" in result.stdout
    assert "* NetBIOS name: CORP; UPN suffixes: corp.test" in result.stdout
    assert "* Lockout policy: 10 wrong passwords within 30 min lock an account; the lockout shield refuses " \
           "passwords without asking the DC after 5 failures within 31 min" in result.stdout
    assert "all checks passed" in result.stdout
    assert f"  Web Service URL:      http://127.0.0.1:{port}/ExternalProvider.asmx" in result.stdout
    assert "  ssobridge test-login --config" in result.stdout and "'CORP\\someone'" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env", "corp.test-ca.pem", "ssobridge.toml"]
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    config = (tmp_path / "ssobridge.toml").read_text()
    secret = web_service_password(result.stdout)
    assert SERVICE_PASSWORD not in config and secret not in config
    assert 'domain = "corp.test"' in config and f'nameservers = ["{DC_HOST}"]' in config
    assert 'bind_dn = "CN=svc-ssobridge,OU=Services,DC=corp,DC=test"' in config
    assert 'netbios_domain = "CORP"' in config and 'ca_file = "corp.test-ca.pem"' in config
    assert (tmp_path / "corp.test-ca.pem").read_bytes() == corp.directory.ca_file.read_bytes()
    assert (tmp_path / ".env").read_text().splitlines()[1:] == [
        f"SSOBRIDGE_BIND_PASSWORD='{SERVICE_PASSWORD}'", f"SSOBRIDGE_WEB_SERVICE_PASSWORD='{secret}'"]

    checked = subprocess.run([sys.executable, "-m", "ssobridge", "check", "--config", str(tmp_path / "ssobridge.toml")],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout
    assert f"  discovery: SRV {SRV_RECORD} (asked {DC_HOST}): {DC_NAME}:389: ldaps://{DC_NAME}:636" in checked.stdout
    user = corp.directory.users["jdoe"]
    login = subprocess.run([sys.executable, "-m", "ssobridge", "test-login", "--config",
                            str(tmp_path / "ssobridge.toml"), "--password-stdin", f"CORP\\{user.login}"],
                           input=user.password + "\n", capture_output=True, text=True, timeout=60)
    assert login.returncode == 0, login.stdout + login.stderr

    service = start_serve(tmp_path, port)
    try:
        answer = authenticate(dotnet, service, secret, user)
        assert answer["Success"] is True, answer
        assert outputs(answer) == {"Authentication": "OK", "EmailAddress": user.mail, "DisplayName": user.display_name}
    finally:
        service.stop()


def test_no_srv_record_is_refused_naming_the_record(corp, ca_fingerprint, tmp_path):
    result = unattended(tmp_path, ca_fingerprint, domain="nowhere.test")
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == (
        f"ssobridge init: no SRV record _ldap._tcp.dc._msdcs.nowhere.test nor _ldap._tcp.nowhere.test (asked "
        f"{DC_HOST}), or write the config by hand with urls = [\"ldaps://dc1.nowhere.test\"] (README, \"Run it for "
        "real\")")
    assert_nothing_written(tmp_path)


def test_a_nameserver_that_never_answers_is_a_dns_timeout(ca_fingerprint, tmp_path):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind((SILENT_NAMESERVER, 53))  # queries queue up unread: no answer, no ICMP error
    try:
        result = unattended(tmp_path, ca_fingerprint, nameserver=SILENT_NAMESERVER)
    finally:
        silent.close()
    assert result.returncode == 1
    assert f"ssobridge init: DNS did not answer for {SRV_RECORD} within 5 s (asked {SILENT_NAMESERVER})" \
        in result.stdout
    assert_nothing_written(tmp_path)


class RefusesStartTls:
    """LDAP on port 389 of `host` answering every request (StartTLS) with unavailable (52)."""

    def __init__(self, host: str):
        self.listener = socket.create_server((host, 389))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                request = connection.recv(4096)
                at = 2 + (request[1] & 0x7F if request[1] & 0x80 else 0)  # the messageID after the SEQUENCE
                message_id = request[at:at + 2 + request[at + 1]]
                body = message_id + bytes([0x78, 7, 0x0A, 1, 52, 4, 0, 4, 0])  # extendedResp: unavailable
                connection.sendall(bytes([0x30, len(body)]) + body)

    def close(self) -> None:
        self.listener.close()


def test_ldaps_closed_and_starttls_refused_is_refused(corp, ca_fingerprint, tmp_path):
    corp.samba_tool_dns("add", DC_HOST, "corp.test", "plain", "A", NO_TLS_HOST)
    corp.samba_tool_dns("add", DC_HOST, "corp.test", "_ldap._tcp.plain", "SRV", "plain.corp.test 389 0 100")
    server = RefusesStartTls(NO_TLS_HOST)
    try:
        result = unattended(tmp_path, ca_fingerprint, domain="plain.corp.test")
    finally:
        server.close()
    assert result.returncode == 1
    assert "* Found plain.corp.test:389 (SRV _ldap._tcp.plain.corp.test, priority 0, weight 100)" in result.stdout
    assert result.stdout.splitlines()[-1] == (
        "ssobridge init: plain.corp.test: LDAPS (port 636) is closed (connection refused), and StartTLS on port 389 "
        "failed: startTLS failed - unavailable. ssobridge sends no password without TLS: enable LDAPS "
        "on the DC (a certificate for its name, from AD CS or your CA)")
    assert_nothing_written(tmp_path)


def test_a_fingerprint_matching_nothing_is_refused_showing_those_presented(corp, ca_fingerprint, tmp_path):
    result = unattended(tmp_path, "00" * 32)
    assert result.returncode == 1
    presented = re.findall(r"SHA-256  (\S+)", result.stdout)
    assert len(presented) == 2 and presented[1] == ca_fingerprint
    assert result.stdout.splitlines()[-1] == (f"ssobridge init: --trust {'00' * 32} matches none of the certificates "
                                              f"presented: {presented[0]}, {presented[1]}")
    assert_nothing_written(tmp_path)


def test_a_chain_not_valid_for_the_dcs_name_is_refused(corp, ca_fingerprint, tmp_path):
    corp.samba_tool_dns("add", DC_HOST, "corp.test", "alias", "A", DC_HOST)
    corp.samba_tool_dns("add", DC_HOST, "corp.test", "_ldap._tcp.alias", "SRV", "alias.corp.test 389 0 100")
    result = unattended(tmp_path, ca_fingerprint, domain="alias.corp.test")
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1].startswith(
        "ssobridge init: ldaps://alias.corp.test:636: TLS certificate does not match the server name in the URL "
        "(alias.corp.test)")
    assert "binding once" in result.stdout  # said before the attempt; no bind came: the handshake failed first
    assert_nothing_written(tmp_path)


def bad_password_count(corp) -> int:
    directory = corp.directory
    with bound(directory, directory.admin_dn, directory.admin_password) as admin:
        admin.search(directory.service_dn, "(objectClass=*)", "BASE", attributes=["badPwdCount"])
        return int(admin.entries[0]["badPwdCount"].value or 0)


def test_a_wrong_service_account_password_is_said_and_counts_once(corp, ca_fingerprint, tmp_path):
    before = bad_password_count(corp)
    result = unattended(tmp_path, ca_fingerprint, password="Wrong-Passw0rd!")
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1].startswith(
        f"ssobridge init: the service account '{SERVICE_LOGIN}@corp.test' was refused: invalidCredentials (49): ")
    assert "data 52e" in result.stdout and "Not tried again" in result.stdout
    assert bad_password_count(corp) == before + 1
    assert_nothing_written(tmp_path)
    assert unattended(tmp_path, ca_fingerprint).returncode == 0  # the right password: badPwdCount back to 0
    assert bad_password_count(corp) == 0


def test_an_existing_config_is_kept_without_force(corp, ca_fingerprint, tmp_path):
    (tmp_path / "ssobridge.toml").write_text("# mine\n")
    result = unattended(tmp_path, ca_fingerprint)
    assert result.returncode == 1
    assert result.stdout == (f"ssobridge init: {tmp_path / 'ssobridge.toml'} already exists: nothing was written "
                             "(--force overwrites)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ssobridge.toml"]
    assert (tmp_path / "ssobridge.toml").read_text() == "# mine\n"
    assert unattended(tmp_path, ca_fingerprint, "--force").returncode == 0
    assert "written by `ssobridge init`" in (tmp_path / "ssobridge.toml").read_text()


def read_until(fd: int, text: str, seen: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in seen[0]:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no {text!r} in:\n{seen[0]}"
        seen[0] += os.read(fd, 4096).decode(errors="replace")


def test_the_interactive_run_asks_four_questions_on_a_terminal(corp, tmp_path):
    # The child's controlling terminal is the pty, as for an administrator at a shell: a new session that opens
    # the pty's terminal as its stdin (posix_spawn, not pty.fork: forking this multi-threaded process may deadlock).
    fd, terminal = os.openpty()
    pid = os.posix_spawn(sys.executable, [sys.executable, "-m", "ssobridge", "init", "corp.test", "--nameserver",
                                          DC_HOST, "--config", str(tmp_path / "ssobridge.toml")], os.environ,
                         file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.ttyname(terminal), os.O_RDWR, 0),
                                       (os.POSIX_SPAWN_DUP2, 0, 1), (os.POSIX_SPAWN_DUP2, 0, 2)], setsid=True)
    os.close(terminal)
    seen = [""]
    prompts = [("Trust this chain? Compare the SHA-256 of CN=ssobridge Test CA,O=ssobridge tests with your CA's "
                "[y/N]: ", "y"),
               ("Service account (sAMAccountName, UPN or DN): ", SERVICE_LOGIN),
               ("Service account password: ", SERVICE_PASSWORD),
               ("Listen address for SmarterTrack (host:port) [127.0.0.1:8290]: ", "")]
    try:
        for prompt, answer in prompts:
            read_until(fd, prompt, seen)
            os.write(fd, answer.encode() + b"\r")
        read_until(fd, "(4 questions asked)", seen)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen[0]
    assert SERVICE_PASSWORD not in seen[0]  # getpass: not echoed
    assert sum(seen[0].count(prompt) for prompt, _ in prompts) == 4
    assert 'listen = "127.0.0.1:8290"' in (tmp_path / "ssobridge.toml").read_text()


def test_a_dc_added_to_dns_while_serve_runs_is_used_after_the_refresh(corp, ca_fingerprint, pki, tmp_path, dotnet):
    """Last in this module: it stops corp's first DC (its DNS too) and starts it again."""
    port = free_port()
    assert unattended(tmp_path, ca_fingerprint, "--listen", f"127.0.0.1:{port}").returncode == 0
    config = tmp_path / "ssobridge.toml"
    config.write_text(config.read_text().replace("# discovery_refresh_seconds = 300", "discovery_refresh_seconds = 1"))
    secret = web_service_password((tmp_path / ".env").read_text().replace("SSOBRIDGE_WEB_SERVICE_PASSWORD=",
                                                                          "Web Service Password: ").replace("'", ""))
    second = start_second_dns_dc(corp, pki, tmp_path / "dc2", SECOND_DC_HOST, "dc2.corp.test")
    service = start_serve(tmp_path, port)
    user = corp.directory.users["jdoe"]
    first_url, second_url = f"ldaps://{DC_NAME}:636", "ldaps://dc2.corp.test:636"
    try:
        assert outputs(authenticate(dotnet, service, secret, user))["Authentication"] == "OK"
        samples = scrape(service)
        assert value(samples, "ssobridge_directory_discovered", directory="corp", server=first_url) == 1
        assert value(samples, "ssobridge_directory_discovered", directory="corp", server=second_url) is None
        corp.samba_tool_dns("add", DC_HOST, "corp.test", "dc2", "A", SECOND_DC_HOST)
        corp.samba_tool_dns("add", DC_HOST, "_msdcs.corp.test", "_ldap._tcp.dc", "SRV", "dc2.corp.test 389 0 100")
        found_later = re.compile(r"event=directory_discovered directory=corp .* servers=\S*dc2\.corp\.test:636")
        deadline = time.monotonic() + 30
        while len(found_later.findall(service.log())) < service.log().count(f"servers={first_url}\n"):  # each worker
            assert time.monotonic() < deadline, service.log()
            time.sleep(0.2)
        assert value(scrape(service), "ssobridge_directory_discovered", directory="corp", server=second_url) == 1
        corp.dc.stop()  # LDAP and DNS of the first DC: only the DC found later answers now
        answer = authenticate(dotnet, service, secret, user)
        assert outputs(answer) == {"Authentication": "OK", "EmailAddress": user.mail,
                                   "DisplayName": user.display_name}, service.log()
        assert value(scrape(service), "ssobridge_directory_server_up", directory="corp", server=second_url) == 1
    finally:
        service.stop()
        corp.dc.start()
        second.stop()
        corp.samba_tool_dns("delete", DC_HOST, "_msdcs.corp.test", "_ldap._tcp.dc", "SRV", "dc2.corp.test 389 0 100")
        corp.samba_tool_dns("delete", DC_HOST, "corp.test", "dc2", "A", SECOND_DC_HOST)
