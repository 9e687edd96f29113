"""Real Samba AD domain controllers for the tests: domain EXAMPLE.TEST (two DCs) and OTHER.TEST.

How one runs (facts in shared/DIRECTORY-TESTING.md):
- Provisioned with `samba-tool domain provision` (~3.5 s) into a cache directory
  (~/.cache/ssobridge-tests/samba-ad-<hash of Samba version and recipe>/, or $SSOBRIDGE_TEST_CACHE), then
  copied per session (~0.1 s) with the paths in smb.conf rewritten. The recipe includes realm, NetBIOS
  name and address, so each domain has its own cache entry (EXAMPLE.TEST and OTHER.TEST: ~33 MB each).
- Started as `samba -i -M single` with stdin a pipe: closing it (or pytest dying) stops the DC;
  --maximum-runtime is the safety net. Only LDAP and the KDC (port 88, see kerberos.py) run, bound to one
  loopback address.
  Samba has no port setting: always 389 (LDAP) and 636 (LDAPS), so each DC needs its own 127.0.0.x.
- LDAPS with our test CA's server certificate. "ldap server require strong auth" stays at its default:
  a simple bind on 389 is refused (result 8), as on a hardened Windows DC.

Accounts (created over LDAPS as Administrator on every start of a session, ~0.5 s), see people.py:
- Lockout: the domain threshold is 10 wrong passwords (30 min window), so a test's few wrong attempts
  never lock anybody by accident (a right password resets the count). Only the LOCKABLE user is under a
  fine-grained password policy (PSO) with threshold 3, used by lock_out().
- The PASSWORD_EXPIRED user's pwdLastSet is 100 days back (domain maximum password age: 42 days), so it
  gets sub-code 532 without faketime. Over LDAP pwdLastSet takes only 0 or -1; the backdating goes through
  ldbmodify on sam.ldb with Samba's "bypass last set" control (a PSO with a max age under one day would
  mean "never expires" to Samba).

The second DC of EXAMPLE.TEST (start_second_dc) is no `samba-tool domain join` (that needs DNS, Kerberos
and replication services this setup does not run): it is a copy of the first DC's databases, taken while
the first one runs, started as another samba on another address. Same accounts, same passwords, same
DNs, GUIDs and SIDs; but no replication (see start_second_dc).
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import os
import re
import shutil
import socket
import stat
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Mapping

import ldap3
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from .directory import AccountState, DirectoryFixture, DirectoryUser, bind_result, bound
from .people import GROUPS, NESTED_GROUPS, OTHER_GROUPS, OTHER_PEOPLE, PEOPLE, Person
from .pki import KeyPair, Pki

REALM = "EXAMPLE.TEST"
NETBIOS_DOMAIN = "EXAMPLE"

ADMIN_PASSWORD = "Admin-Passw0rd!"
SERVICE_LOGIN = "svc-ssobridge"
SERVICE_PASSWORD = "Svc-Bridge-Passw0rd!"

DOMAIN_LOCKOUT_THRESHOLD = 10
LOCKABLE_THRESHOLD = 3

PASSWORD_AGE_OF_EXPIRED_USER = timedelta(days=100)
DSDB_CONTROL_PASSWORD_BYPASS_LAST_SET_OID = "1.3.6.1.4.1.7165.4.3.20"

MAXIMUM_RUNTIME = int(os.environ.get("SSOBRIDGE_TEST_MAX_RUNTIME", 4 * 3600))  # seconds; a safety net
CACHE_ROOT = Path(os.environ.get("SSOBRIDGE_TEST_CACHE", Path.home() / ".cache" / "ssobridge-tests"))

_NORMAL_ACCOUNT = 0x200
_ACCOUNT_DISABLE = 0x2
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)
_THIRTY_MINUTES = -30 * 60 * 10_000_000  # AD intervals are negative, in 100 ns


def why_samba_cannot_run() -> str | None:
    """The reason to skip AD tests, or None."""
    for program in ("samba", "samba-tool", "ldbmodify", "tdbbackup"):
        if shutil.which(program) is None:
            return f"{program} is not installed (run tests/support/install-deps.sh as root)"
    if os.geteuid() != 0:
        return "Samba AD needs root: it always listens on the privileged ports 389 and 636"
    return None


# --- provisioning ----------------------------------------------------------------------------------

def _provision_command(directory: Path, host: str, realm: str = REALM, domain: str = NETBIOS_DOMAIN,
                       dns: bool = False) -> list[str]:
    """Everything under `directory`, only LDAP, no DNS (or, with `dns`, Samba's own DNS server on `host`, for
    discovery): nothing on the machine is touched."""
    options = {
        "interfaces": f"{host}/8",
        "bind interfaces only": "yes",
        "server services": "ldap dns" if dns else "ldap",
        "pid directory": directory / "run",
        "ncalrpc dir": directory / "run" / "ncalrpc",
        "winbindd socket directory": directory / "run" / "winbindd",
        "ntp signd socket directory": directory / "run" / "ntp_signd",
        "log file": directory / "log" / "samba.log",
    }
    return ["samba-tool", "domain", "provision", f"--targetdir={directory}", f"--realm={realm}",
            f"--domain={domain}", "--server-role=dc", f"--dns-backend={'SAMBA_INTERNAL' if dns else 'NONE'}",
            "--use-rfc2307",
            "--host-name=dc1", f"--host-ip={host}", f"--adminpass={ADMIN_PASSWORD}",
            *[f"--option={name}={value}" for name, value in options.items()]]


def provision(directory: Path, host: str, realm: str = REALM, domain: str = NETBIOS_DOMAIN, dns: bool = False) -> None:
    """A provisioned DC in `directory`, copied from the cache (provisioning it there first if needed)."""
    cached = _cached_provision(host, realm, domain, dns)
    shutil.copytree(cached, directory, symlinks=True)
    smb_conf = directory / "etc" / "smb.conf"
    smb_conf.write_text(smb_conf.read_text().replace(str(cached), str(directory)))


def _cached_provision(host: str, realm: str, domain: str, dns: bool = False) -> Path:
    samba_version = subprocess.run(["samba", "--version"], capture_output=True, text=True).stdout
    recipe = " ".join(_provision_command(Path("/DIR"), host, realm, domain, dns)) + samba_version
    entry = CACHE_ROOT / f"samba-ad-{hashlib.sha256(recipe.encode()).hexdigest()[:16]}"
    provisioned, complete = entry / "dc", entry / "complete"
    entry.mkdir(parents=True, exist_ok=True)
    with open(entry / "lock", "w") as lock:  # two sessions at once must not provision into one directory
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not complete.exists():
            shutil.rmtree(provisioned, ignore_errors=True)
            result = subprocess.run(_provision_command(provisioned, host, realm, domain, dns),
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"samba-tool domain provision failed:\n{result.stdout}\n{result.stderr}")
            complete.touch()
    return provisioned


# --- the running DC ---------------------------------------------------------------------------------

class SambaDomainController:
    """One samba process; stop() and start() keep the data, so a test can simulate an outage."""

    def __init__(self, directory: Path, host: str, pki: Pki, require_strong_auth: bool = True,
                 services: str = "ldap kdc", tls: KeyPair | None = None):
        """`services`: Samba's server services; `tls`: its certificate (default pki.server), whose cert_file
        may hold the CA certificate after the DC's own: Samba then presents both."""
        self.directory = directory
        self.host = host
        self.pki = pki
        self.require_strong_auth = require_strong_auth
        self.services = services
        self.tls = tls or pki.server
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        options = {
            "interfaces": f"{self.host}/8",  # /32 matches no interface; /8 still binds only host
            "server services": self.services,  # the KDC: port 88 (UDP and TCP) on host, for tests/support/kerberos.py
            "tls enabled": "yes",
            "tls certfile": self.tls.cert_file,
            "tls keyfile": self.tls.key_file,
            "tls cafile": self.pki.ca.cert_file,
        }
        if not self.require_strong_auth:
            options["ldap server require strong auth"] = "no"
        return ["samba", "-i", "-M", "single", "-s", str(self.directory / "etc" / "smb.conf"),
                f"--maximum-runtime={MAXIMUM_RUNTIME}",
                *[f"--option={name}={value}" for name, value in options.items()]]

    def start(self, timeout: float = 30) -> None:
        if self.process is not None:
            return
        log = open(self.directory / "samba.out", "ab")
        # stdin a pipe: samba stops when it is closed, by stop() or by the death of pytest.
        # A session of its own, because samba sends SIGTERM to its whole process group on EOF.
        self.process = subprocess.Popen(self.command(), stdin=subprocess.PIPE, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self._wait_until_listening(timeout)

    def stop(self, timeout: float = 15) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        process.stdin.close()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _wait_until_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"samba exited with {self.process.returncode}: {self._log_tail()}")
            try:
                socket.create_connection((self.host, 636), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"samba did not listen on {self.host}:636 within {timeout} s: {self._log_tail()}")

    def _log_tail(self) -> str:
        return (self.directory / "samba.out").read_text(errors="replace")[-3000:]


class SambaAccounts:
    """The DirectoryControl of the AD fixture: lock and unlock for real, stop and start the DC."""

    def __init__(self, dc: SambaDomainController):
        self.dc = dc
        self.directory: DirectoryFixture | None = None  # set once the users exist

    def lock_out(self, user: DirectoryUser) -> None:
        for attempt in range(1, self.directory.lockout_threshold + 1):
            message = bind_result(self.directory, user.dn, "wrong-" + user.password)["message"]
            assert "data 52e" in message, f"wrong password {attempt} for {user.key}: {message}"
        message = bind_result(self.directory, user.dn, user.password)["message"]
        assert "data 775" in message, f"{user.key} not locked after {attempt} wrong passwords: {message}"

    def unlock(self, user: DirectoryUser) -> None:
        with bound(self.directory, self.directory.admin_dn, self.directory.admin_password) as admin:
            admin.modify(user.dn, {"lockoutTime": [(ldap3.MODIFY_REPLACE, ["0"])]})
            assert admin.result["result"] == 0, admin.result

    def stop(self) -> None:
        self.dc.stop()

    def start(self) -> None:
        self.dc.start()


# --- accounts ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AdDomain:
    """What differs between the two test domains; everything else (OUs, service account, lockout policy,
    admin password) is the same recipe."""

    realm: str
    netbios: str
    people: tuple[Person, ...]
    groups: Mapping[str, tuple[str, tuple[str, ...]]]  # key -> (cn, member person keys)
    nested_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def upn_suffix(self) -> str:
        return self.realm.lower()

    @property
    def base_dn(self) -> str:
        return ",".join(f"DC={label}" for label in self.upn_suffix.split("."))

    @property
    def people_dn(self) -> str:
        return f"OU=People,{self.base_dn}"

    @property
    def services_dn(self) -> str:
        return f"OU=Services,{self.base_dn}"

    @property
    def groups_dn(self) -> str:
        return f"OU=Groups,{self.base_dn}"


EXAMPLE_DOMAIN = AdDomain(REALM, NETBIOS_DOMAIN, PEOPLE, GROUPS, NESTED_GROUPS)
OTHER_DOMAIN = AdDomain("OTHER.TEST", "OTHER", OTHER_PEOPLE, OTHER_GROUPS)


def start_samba_ad(directory: Path, pki: Pki, host: str = "127.0.0.2", domain: AdDomain = EXAMPLE_DOMAIN,
                   dns_tls: KeyPair | None = None) -> tuple[DirectoryFixture, SambaDomainController]:
    """Provision, start and populate a DC of `domain`; the caller must dc.stop() it. `dns_tls`: a DC with
    Samba's own DNS server (port 53 on `host`) presenting that certificate (see samba_dns.py)."""
    provision(directory, host, domain.realm, domain.netbios, dns=dns_tls is not None)
    dc = SambaDomainController(directory, host, pki, services="ldap dns rpc" if dns_tls else "ldap kdc", tls=dns_tls)
    dc.start()
    try:
        control = SambaAccounts(dc)
        fixture = DirectoryFixture(
            kind="ad", host=host, ldap_port=389, ldaps_port=636, ca_file=pki.ca.cert_file,
            wrong_ca_file=pki.wrong_ca.cert_file, base_dn=domain.base_dn, users_dn=domain.people_dn,
            admin_dn=f"CN=Administrator,CN=Users,{domain.base_dn}", admin_password=ADMIN_PASSWORD,
            service_dn=f"CN={SERVICE_LOGIN},{domain.services_dn}", service_password=SERVICE_PASSWORD,
            users={}, groups={}, lockout_threshold=LOCKABLE_THRESHOLD, control=control,
            netbios_domain=domain.netbios, upn_suffix=domain.upn_suffix, realm=domain.realm)
        # Connected through the fixture without users; the users it lists are created now.
        with bound(fixture, fixture.admin_dn, ADMIN_PASSWORD) as admin:
            users = _create_directory_content(admin, domain)
            fixture = dataclasses.replace(fixture, users=users, groups=_create_groups(admin, domain, users))
        for user in users.values():
            if user.state == AccountState.PASSWORD_EXPIRED:
                _backdate_password_change(dc, user.dn)
        control.directory = fixture
        return fixture, dc
    except BaseException:
        dc.stop()
        raise


def start_other_domain(directory: Path, pki: Pki, host: str = "127.0.0.3"
                       ) -> tuple[DirectoryFixture, SambaDomainController]:
    """A second AD domain, OTHER.TEST (NetBIOS OTHER), with its own service account and people."""
    return start_samba_ad(directory, pki, host, OTHER_DOMAIN)


def _create_directory_content(admin: ldap3.Connection, domain: AdDomain) -> dict[str, DirectoryUser]:
    _modify(admin, domain.base_dn, lockoutThreshold=DOMAIN_LOCKOUT_THRESHOLD)
    for ou in (domain.people_dn, domain.services_dn, domain.groups_dn):
        _add(admin, ou, ["top", "organizationalUnit"])
    _add_account(admin, f"CN={SERVICE_LOGIN},{domain.services_dn}", SERVICE_LOGIN, SERVICE_PASSWORD,
                 description="ssobridge service account: read-only")
    users = {person.key: _create_user(admin, domain, person) for person in domain.people}
    for user in users.values():
        if user.state == AccountState.LOCKABLE:
            _add_password_policy(admin, domain, f"lockout-after-{LOCKABLE_THRESHOLD}-{user.login}", user.dn,
                                 **{"msDS-LockoutThreshold": LOCKABLE_THRESHOLD})
    return users


def _backdate_password_change(dc: SambaDomainController, dn: str) -> None:
    """pwdLastSet in the past, written to sam.ldb directly (tdb locking makes this safe while samba runs)."""
    last_set = _filetime(datetime.now(timezone.utc) - PASSWORD_AGE_OF_EXPIRED_USER)
    ldif = f"dn: {dn}\nchangetype: modify\nreplace: pwdLastSet\npwdLastSet: {last_set}\n"
    result = subprocess.run(
        ["ldbmodify", "-H", str(dc.directory / "private" / "sam.ldb"),
         f"--controls=local_oid:{DSDB_CONTROL_PASSWORD_BYPASS_LAST_SET_OID}:0"],
        input=ldif, capture_output=True, text=True,
        env=dict(os.environ, SMB_CONF_PATH=str(dc.directory / "etc" / "smb.conf")))
    if result.returncode != 0:
        raise RuntimeError(f"ldbmodify pwdLastSet of {dn} failed: {result.stdout}{result.stderr}")


def _create_user(admin: ldap3.Connection, domain: AdDomain, person: Person) -> DirectoryUser:
    upn = f"{person.upn_prefix or person.login}@{domain.upn_suffix}"
    attributes = person.ad_style_attributes()
    extra = dict(attributes, mail=person.mail, displayName=person.display_name)
    if person.state == AccountState.ACCOUNT_EXPIRED:
        extra["accountExpires"] = _filetime(datetime.now(timezone.utc) - timedelta(days=1))
    dn = f"CN={escape_rdn(person.cn)},{domain.people_dn}"
    _add_account(admin, dn, person.login, person.password, userPrincipalName=upn,
                 disabled=person.state == AccountState.DISABLED, **extra)
    if person.state == AccountState.MUST_CHANGE:
        _modify(admin, dn, pwdLastSet=0)
    return DirectoryUser(key=person.key, login=person.login, password=person.password,
                         dn=_dn_as_server_spells_it(admin, domain, person.login), cn=person.cn, upn=upn,
                         mail=person.mail, display_name=person.display_name, state=person.state,
                         attributes=attributes)


def _add_account(admin: ldap3.Connection, dn: str, login: str, password: str, disabled: bool = False,
                 **attributes) -> None:
    control = _NORMAL_ACCOUNT | (_ACCOUNT_DISABLE if disabled else 0)
    _add(admin, dn, ["top", "person", "organizationalPerson", "user"], sAMAccountName=login,
         unicodePwd=f'"{password}"'.encode("utf-16-le"), userAccountControl=control, **attributes)


def _add_password_policy(admin: ldap3.Connection, domain: AdDomain, name: str, applies_to: str,
                         **overrides) -> None:
    """A fine-grained password policy (PSO) for one account; the rest is the domain's defaults."""
    settings = {
        "msDS-PasswordSettingsPrecedence": 1,
        "msDS-PasswordReversibleEncryptionEnabled": "FALSE",
        "msDS-PasswordHistoryLength": 0,
        "msDS-PasswordComplexityEnabled": "TRUE",
        "msDS-MinimumPasswordLength": 7,
        "msDS-MinimumPasswordAge": 0,
        "msDS-MaximumPasswordAge": -42 * 24 * 3600 * 10_000_000,
        "msDS-LockoutThreshold": DOMAIN_LOCKOUT_THRESHOLD,
        "msDS-LockoutObservationWindow": _THIRTY_MINUTES,
        "msDS-LockoutDuration": _THIRTY_MINUTES,
    }
    _add(admin, f"CN={name},CN=Password Settings Container,CN=System,{domain.base_dn}",
         ["msDS-PasswordSettings"], **settings | overrides, **{"msDS-PSOAppliesTo": applies_to})


def _create_groups(admin: ldap3.Connection, domain: AdDomain, users: dict[str, DirectoryUser]) -> dict[str, str]:
    groups = {}
    for key, (cn, member_keys) in domain.groups.items():
        groups[key] = f"CN={escape_rdn(cn)},{domain.groups_dn}"
        members = [users[member].dn for member in member_keys]
        members += [groups[nested] for nested in domain.nested_groups.get(key, ())]
        _add(admin, groups[key], ["top", "group"], sAMAccountName=cn.replace(" ", "-").lower(),
             groupType=-2147483646, member=members)  # a global security group
    return groups


def _dn_as_server_spells_it(admin: ldap3.Connection, domain: AdDomain, login: str) -> str:
    admin.search(domain.people_dn, f"(sAMAccountName={escape_filter_chars(login)})",
                 attributes=["distinguishedName"])
    assert len(admin.entries) == 1, (login, admin.result)
    return admin.entries[0].entry_dn


def _add(admin: ldap3.Connection, dn: str, object_class: list[str], **attributes) -> None:
    attributes = {name: value for name, value in attributes.items() if value is not None}
    if not admin.add(dn, object_class, attributes):
        raise RuntimeError(f"adding {dn} failed: {admin.result}")


def _modify(admin: ldap3.Connection, dn: str, **values) -> None:
    changes = {name: [(ldap3.MODIFY_REPLACE, [value])] for name, value in values.items()}
    if not admin.modify(dn, changes):
        raise RuntimeError(f"modifying {dn} failed: {admin.result}")


def _filetime(moment: datetime) -> int:
    return int((moment - _FILETIME_EPOCH).total_seconds() * 10_000_000)


# --- a second DC of the same domain ----------------------------------------------------------------

# What a running DC made for itself (sockets, locks, pid file, logs, caches of the running process): the
# clone makes its own. Everything else is the provisioned DC plus the accounts created since.
_RUNTIME_FILES = {"msg.lock", "msg.sock", "names.tdb", "run", "log", "samba.out", "ldap_priv", "ldapi",
                  "smbd.tmp", "schannel_store.tdb"}
_TDB_MAGIC = b"TDB file\n"


def start_second_dc(first: DirectoryFixture, directory: Path, host: str
                    ) -> tuple[DirectoryFixture, SambaDomainController]:
    """Another DC of the same domain on `host`, answering for the same accounts and passwords: a copy of
    the first DC's databases taken now, while it runs. The caller must dc.stop() it.

    A copy, not a replica: account changes made on one DC afterwards (a lockout, a new password, a
    disabled account) never reach the other. Both call themselves DC1 (same server object, same
    invocationId); only the address differs. Enough for failover, where a client must get the same
    answers from either DC.
    """
    original = first.control.dc
    _copy_running_dc(original.directory, directory)
    smb_conf = directory / "etc" / "smb.conf"
    text = smb_conf.read_text().replace(str(original.directory), str(directory))
    smb_conf.write_text(re.sub(r"^(\s*interfaces\s*=).*$", rf"\g<1> {host}/8", text, flags=re.MULTILINE))
    dc = SambaDomainController(directory, host, original.pki, original.require_strong_auth)
    dc.start()
    control = SambaAccounts(dc)
    fixture = dataclasses.replace(first, host=host, control=control)
    control.directory = fixture
    return fixture, dc


def _copy_running_dc(source: Path, target: Path) -> None:
    """Copy a DC directory without stopping its samba: tdb databases (all of private/) through
    `tdbbackup -r`, which holds a read lock on each while copying it (what `samba-tool domain backup
    offline` does), so a write by samba cannot tear the copy; the other files as they are."""
    databases = []

    def ignore(folder: str, names: list[str]) -> set[str]:
        ignored = set()
        for name in names:
            path = Path(folder, name)
            if name in _RUNTIME_FILES or stat.S_ISSOCK(path.lstat().st_mode):
                ignored.add(name)
            elif "private" in path.relative_to(source).parts and path.is_file() and _is_tdb(path):
                databases.append(path)
                ignored.add(name)
        return ignored

    shutil.copytree(source, target, symlinks=True, ignore=ignore)
    suffix = f".clone-{os.getpid()}"
    try:
        result = subprocess.run(["tdbbackup", "-r", "-s", suffix, *map(str, databases)], capture_output=True,
                                text=True)
        if result.returncode != 0:
            raise RuntimeError(f"tdbbackup of {source} failed: {result.stdout}{result.stderr}")
        for database in databases:
            shutil.move(f"{database}{suffix}", target / database.relative_to(source))
    finally:
        for database in databases:
            Path(f"{database}{suffix}").unlink(missing_ok=True)


def _is_tdb(path: Path) -> bool:
    with open(path, "rb") as file:
        return file.read(len(_TDB_MAGIC)) == _TDB_MAGIC
