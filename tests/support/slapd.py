"""A private OpenLDAP slapd (suffix dc=example,dc=org) with the password policy overlay, for the tests.

How it runs (facts in shared/DIRECTORY-TESTING.md):
- Own slapd.conf and mdb database in a temporary directory, modules from /usr/lib/ldap; no system
  instance is touched. Listens on 127.0.0.1 only, on two free ports (ldap:// and ldaps:// with our test
  CA's server certificate), and with LDAPS on 127.0.0.10, an address the certificate does not name (for
  hostname-check tests). Start ~50 ms, loading the people with ldap3 as rootdn ~0.2 s.
- It cannot outlive the tests: the kernel sends it SIGTERM when pytest dies (PR_SET_PDEATHSIG on the
  `timeout` wrapper, which passes the signal on), and `timeout` ends it after a maximum runtime anyway.
- `allow bind_anon_dn`: a DN with an EMPTY password binds successfully, as anonymous, even for a DN
  that does not exist. This is the classic hole; the bridge must refuse empty passwords itself.

Password policy (ppolicy overlay, draft-behera; built into the overlay's schema in 2.5):
- Default policy cn=default,ou=policies: pwdLockout TRUE, pwdMaxFailure 10, pwdMustChange TRUE,
  pwdMaxAge 90 days, pwdLockoutDuration 30 min, `ppolicy_use_lockout` (the response control says
  accountLocked). As in the AD fixture, only the LOCKABLE user locks after 3 wrong passwords (its own
  policy cn=lockout-after-3, used by lock_out()); the others after 10, so the wrong passwords other tests
  send never lock anybody by accident (and a right password resets the count).
- The PASSWORD_EXPIRED user has its own policy (pwdPolicySubentry) with pwdMaxAge 1 day and no grace logins,
  and a pwdChangedTime in 2000 (written as rootdn with the Relax Rules control: no waiting).
- DISABLED: pwdAccountLockedTime 000001010000Z, the admin lock of ppolicy (bind: 49 + accountLocked).
- MUST_CHANGE: pwdReset TRUE; the bind SUCCEEDS with the error changeAfterReset in the response control.

Where ldap3 2.9.1 puts the bind response controls (measured here):
  after `connection.bind(controls=[("1.3.6.1.4.1.42.2.27.8.5.1", False, None)])`, in
  `connection.result["controls"]["1.3.6.1.4.1.42.2.27.8.5.1"]` = {"description": ..., "criticality": bool,
  "value": <raw BER bytes>}. The key "controls" is absent when the server sent no control. ldap3 decodes
  only paged results, DirSync and pre/post-read controls: the ppolicy value stays undecoded BER
  (e.g. b"0\\x03\\x81\\x01\\x01" = error accountLocked); see directory.decode_ppolicy_value. The same dict
  is what `bind()` leaves in `connection.result`, success or not, with raise_exceptions=False (the default).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import ldap3
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from .directory import (PPOLICY_REQUEST, AccountState, DirectoryFixture, DirectoryUser, bind_result, bound,
                        ppolicy_response)
from .people import GROUPS, NESTED_GROUPS, PEOPLE, Person
from .network import TEST_NET
from .pki import Pki

BASE_DN = "dc=example,dc=org"
PEOPLE_DN = f"ou=people,{BASE_DN}"
SERVICES_DN = f"ou=services,{BASE_DN}"
GROUPS_DN = f"ou=groups,{BASE_DN}"
POLICIES_DN = f"ou=policies,{BASE_DN}"
DEFAULT_POLICY_DN = f"cn=default,{POLICIES_DN}"
EXPIRY_POLICY_DN = f"cn=expires-at-once,{POLICIES_DN}"
LOCKOUT_POLICY_DN = f"cn=lockout-after-3,{POLICIES_DN}"

ADMIN_DN = f"cn=admin,{BASE_DN}"
ADMIN_PASSWORD = "Admin-Passw0rd!"
SERVICE_DN = f"cn=ssobridge,{SERVICES_DN}"
SERVICE_PASSWORD = "Svc-Bridge-Passw0rd!"

MAX_FAILURE = 10
LOCKABLE_MAX_FAILURE = 3
ADMIN_LOCK = "000001010000Z"  # ppolicy: locked until an administrator removes it
PASSWORD_MAX_AGE = 86400  # seconds, for the PASSWORD_EXPIRED user, whose password is from 2000
LONG_AGO = "20000101000000Z"
# Lets the rootdn write the operational attributes ppolicy maintains (pwdChangedTime, pwdFailureTime).
RELAX_RULES = ("1.3.6.1.4.1.4203.666.5.12", True, None)

HOST_NOT_IN_CERTIFICATE = f"{TEST_NET}.10"  # pki.SERVER_IP_ADDRESSES ends at 127.0.0.9

MAXIMUM_RUNTIME = int(os.environ.get("SSOBRIDGE_TEST_MAX_RUNTIME", 4 * 3600))  # seconds; a safety net
MODULE_PATH = Path("/usr/lib/ldap")
SCHEMA_PATH = Path("/etc/ldap/schema")

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the child between fork and exec should only call

SLAPD_CONF = """\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
include {schema}/nis.schema

modulepath {modules}
moduleload back_mdb
moduleload ppolicy
moduleload memberof

pidfile {directory}/slapd.pid
argsfile {directory}/slapd.args

TLSCACertificateFile {ca_file}
TLSCertificateFile {cert_file}
TLSCertificateKeyFile {key_file}

# The classic hole, on purpose: DN + empty password = anonymous SUCCESS.
allow bind_anon_dn

database mdb
suffix "{base_dn}"
rootdn "{admin_dn}"
rootpw {admin_password}
directory {directory}/data
maxsize 104857600

overlay ppolicy
ppolicy_default "{default_policy}"
ppolicy_use_lockout
ppolicy_hash_cleartext

# memberOf of direct groups only (not transitive), when asked for by name.
overlay memberof

access to attrs=userPassword
    by self write
    by anonymous auth
    by * none
access to *
    by dn.exact="{service_dn}" read
    by self read
    by * none

# Operation counters (cn=Monitor), read by bench/ to count the LDAP operations per request.
database monitor
access to dn.subtree="cn=Monitor"
    by dn.exact="{admin_dn}" read
    by * none
"""


def why_slapd_cannot_run() -> str | None:
    """The reason to skip OpenLDAP tests, or None."""
    if shutil.which("slapd") is None and not Path("/usr/sbin/slapd").exists():
        return "slapd is not installed (run tests/support/install-deps.sh as root)"
    missing = [module for module in ("back_mdb", "ppolicy", "memberof")
               if not (MODULE_PATH / f"{module}.so").exists()]
    if missing:
        return f"slapd modules missing in {MODULE_PATH}: {', '.join(missing)}"
    return None


def _slapd_binary() -> str:
    return shutil.which("slapd") or "/usr/sbin/slapd"


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM when pytest dies, however it dies."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Slapd:
    """One slapd process; stop() and start() keep the data (same ports), for outage tests."""

    def __init__(self, directory: Path, host: str, pki: Pki):
        self.directory = directory
        self.host = host
        self.ldap_port = _free_port(host)
        self.ldaps_port = _free_port(host)
        self.process: subprocess.Popen | None = None
        (directory / "data").mkdir(parents=True, exist_ok=True)
        (directory / "slapd.conf").write_text(SLAPD_CONF.format(
            schema=SCHEMA_PATH, modules=MODULE_PATH, directory=directory, ca_file=pki.ca.cert_file,
            cert_file=pki.server.cert_file, key_file=pki.server.key_file, base_dn=BASE_DN, admin_dn=ADMIN_DN,
            admin_password=ADMIN_PASSWORD, default_policy=DEFAULT_POLICY_DN, service_dn=SERVICE_DN))

    def command(self) -> list[str]:
        urls = (f"ldap://{self.host}:{self.ldap_port}/ ldaps://{self.host}:{self.ldaps_port}/ "
                f"ldap://{HOST_NOT_IN_CERTIFICATE}:{self.ldap_port}/ ldaps://{HOST_NOT_IN_CERTIFICATE}:{self.ldaps_port}/")
        # -d 0: stay in the foreground (no debug output), so `timeout` and the parent-death signal reach it.
        return ["timeout", "--kill-after=10", str(MAXIMUM_RUNTIME),
                _slapd_binary(), "-d", "0", "-f", str(self.directory / "slapd.conf"), "-h", urls]

    def start(self, timeout: float = 15) -> None:
        if self.process is not None:
            return
        with open(self.directory / "slapd.out", "ab") as log:
            self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        self._wait_until_listening(timeout)

    def stop(self, timeout: float = 15) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        process.terminate()  # timeout passes SIGTERM on to slapd, which shuts down cleanly
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _wait_until_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd exited with {self.process.returncode}: {self._log_tail()}")
            with contextlib.suppress(OSError):
                socket.create_connection((self.host, self.ldaps_port), timeout=0.5).close()
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"slapd did not listen on {self.host}:{self.ldaps_port} within {timeout} s: "
                           f"{self._log_tail()}")

    def _log_tail(self) -> str:
        return (self.directory / "slapd.out").read_text(errors="replace")[-3000:]


class SlapdAccounts:
    """The DirectoryControl of the OpenLDAP fixture."""

    def __init__(self, slapd: Slapd):
        self.slapd = slapd
        self.directory: DirectoryFixture | None = None  # set once the users exist

    def lock_out(self, user: DirectoryUser) -> None:
        for attempt in range(1, self.directory.lockout_threshold + 1):
            result = bind_result(self.directory, user.dn, b"wrong-" + user.password_bytes, [PPOLICY_REQUEST])
            assert result["result"] == 49, f"wrong password {attempt} for {user.key}: {result}"
        result = bind_result(self.directory, user.dn, user.password_bytes, [PPOLICY_REQUEST])
        assert result["result"] == 49 and ppolicy_response(result)["error"] == "accountLocked", (
            f"{user.key} not locked after {attempt} wrong passwords: {result}")

    def unlock(self, user: DirectoryUser) -> None:
        """What an administrator does: remove the lock and the counted failures."""
        with bound(self.directory, ADMIN_DN, ADMIN_PASSWORD) as admin:
            admin.search(user.dn, "(objectClass=*)", ldap3.BASE, attributes=["pwdAccountLockedTime",
                                                                            "pwdFailureTime"])
            raw = admin.response[0]["raw_attributes"] if admin.response else {}
            present = [name for name in ("pwdAccountLockedTime", "pwdFailureTime") if raw.get(name)]
            if present:
                _modify(admin, user.dn, {name: [(ldap3.MODIFY_DELETE, [])] for name in present}, RELAX_RULES)

    def stop(self) -> None:
        self.slapd.stop()

    def start(self) -> None:
        self.slapd.start()


def start_openldap(directory: Path, pki: Pki, host: str = "127.0.0.1") -> tuple[DirectoryFixture, Slapd]:
    """Configure, start and populate slapd; the caller must slapd.stop() it."""
    slapd = Slapd(directory, host, pki)
    slapd.start()
    try:
        control = SlapdAccounts(slapd)
        fixture = DirectoryFixture(
            kind="openldap", host=host, ldap_port=slapd.ldap_port, ldaps_port=slapd.ldaps_port,
            ca_file=pki.ca.cert_file, wrong_ca_file=pki.wrong_ca.cert_file, base_dn=BASE_DN,
            users_dn=PEOPLE_DN, admin_dn=ADMIN_DN, admin_password=ADMIN_PASSWORD, service_dn=SERVICE_DN,
            service_password=SERVICE_PASSWORD, users={}, groups={}, lockout_threshold=LOCKABLE_MAX_FAILURE,
            control=control, host_not_in_certificate=HOST_NOT_IN_CERTIFICATE)
        # Connected through the fixture without users; the users it lists are created now.
        with bound(fixture, ADMIN_DN, ADMIN_PASSWORD) as admin:
            users = _create_directory_content(admin)
            fixture = dataclasses.replace(fixture, users=users, groups=_create_groups(admin, users))
        control.directory = fixture
        return fixture, slapd
    except BaseException:
        slapd.stop()
        raise


def _create_directory_content(admin: ldap3.Connection) -> dict[str, DirectoryUser]:
    _add(admin, BASE_DN, ["top", "dcObject", "organization"], dc="example", o="Example Org")
    for ou in (PEOPLE_DN, SERVICES_DN, GROUPS_DN, POLICIES_DN):
        _add(admin, ou, ["top", "organizationalUnit"])
    _add_policy(admin, DEFAULT_POLICY_DN, pwdMaxAge=90 * 86400)
    _add_policy(admin, EXPIRY_POLICY_DN, pwdMaxAge=PASSWORD_MAX_AGE, pwdGraceAuthNLimit=0)
    _add_policy(admin, LOCKOUT_POLICY_DN, pwdMaxAge=90 * 86400, pwdMaxFailure=LOCKABLE_MAX_FAILURE)
    _add(admin, SERVICE_DN, ["top", "person", "organizationalPerson", "inetOrgPerson"], cn="ssobridge",
         sn="ssobridge service", userPassword=SERVICE_PASSWORD, description="ssobridge service account: read-only")
    return {person.key: _create_user(admin, person) for person in PEOPLE if not person.ad_only}


def _add_policy(admin: ldap3.Connection, dn: str, **settings) -> None:
    defaults = dict(pwdAttribute="userPassword", pwdLockout="TRUE", pwdMaxFailure=MAX_FAILURE,
                    pwdMustChange="TRUE", pwdLockoutDuration=1800, pwdFailureCountInterval=1800)
    _add(admin, dn, ["top", "device", "pwdPolicy"], **defaults | settings)


def _create_user(admin: ldap3.Connection, person: Person) -> DirectoryUser:
    attributes = person.ad_style_attributes()
    # A cn-based RDN where the cn needs RFC 4514 escaping; uid-based RDNs otherwise.
    rdn = f"cn={escape_rdn(person.cn)}" if person.key == "escaped_dn" else f"uid={escape_rdn(person.login)}"
    dn = f"{rdn},{PEOPLE_DN}"
    extra = {}
    if person.state == AccountState.PASSWORD_EXPIRED:
        extra["pwdPolicySubentry"] = EXPIRY_POLICY_DN
    if person.state == AccountState.LOCKABLE:
        extra["pwdPolicySubentry"] = LOCKOUT_POLICY_DN
    stored = {("departmentNumber" if name == "department" else name): value for name, value in attributes.items()}
    _add(admin, dn, ["top", "person", "organizationalPerson", "inetOrgPerson"], uid=person.login, cn=person.cn,
         userPassword=person.password.encode("utf-8"), mail=person.mail, displayName=person.display_name,
         **stored, **extra)
    if person.state == AccountState.DISABLED:
        _modify(admin, dn, {"pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, [ADMIN_LOCK])]})
    if person.state == AccountState.MUST_CHANGE:
        _modify(admin, dn, {"pwdReset": [(ldap3.MODIFY_REPLACE, ["TRUE"])]})
    if person.state == AccountState.PASSWORD_EXPIRED:
        _modify(admin, dn, {"pwdChangedTime": [(ldap3.MODIFY_REPLACE, [LONG_AGO])]}, RELAX_RULES)
    return DirectoryUser(key=person.key, login=person.login, password=person.password,
                         dn=_dn_as_server_spells_it(admin, person.login), cn=person.cn, upn=None,
                         mail=person.mail, display_name=person.display_name, state=person.state,
                         attributes=attributes)


def _create_groups(admin: ldap3.Connection, users: dict[str, DirectoryUser]) -> dict[str, str]:
    groups = {}
    for key, (cn, member_keys) in GROUPS.items():
        groups[key] = f"cn={escape_rdn(cn)},{GROUPS_DN}"
        members = [users[member].dn for member in member_keys if member in users]
        members += [groups[nested] for nested in NESTED_GROUPS.get(key, ())]
        _add(admin, groups[key], ["top", "groupOfNames"], cn=cn, member=members)
    return groups


def _dn_as_server_spells_it(admin: ldap3.Connection, login: str) -> str:
    admin.search(PEOPLE_DN, f"(uid={escape_filter_chars(login)})", attributes=["uid"])
    assert len(admin.entries) == 1, (login, admin.result)
    return admin.entries[0].entry_dn


def _add(admin: ldap3.Connection, dn: str, object_class: list[str], **attributes) -> None:
    attributes = {name: value for name, value in attributes.items() if value is not None}
    if not admin.add(dn, object_class, attributes):
        raise RuntimeError(f"adding {dn} failed: {admin.result}")


def _modify(admin: ldap3.Connection, dn: str, changes: dict, *controls) -> None:
    if not admin.modify(dn, changes, controls=list(controls) or None):
        raise RuntimeError(f"modifying {dn} failed: {admin.result}")
