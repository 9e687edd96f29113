"""Reading the directory's own lockout counters as the administrator, for the lockout shield's tests."""

from __future__ import annotations

import ldap3

from .directory import DirectoryFixture, DirectoryUser, bound


def directory_failures(directory: DirectoryFixture, user: DirectoryUser) -> int:
    """AD: badPwdCount; OpenLDAP: how many pwdFailureTime values the entry has."""
    name = "badPwdCount" if directory.kind == "ad" else "pwdFailureTime"
    with bound(directory, directory.admin_dn, directory.admin_password) as admin:
        admin.search(user.dn, "(objectClass=*)", ldap3.BASE, attributes=[name])
        values = admin.response[0]["raw_attributes"].get(name, [])
    return int(values[0]) if directory.kind == "ad" and values else len(values)


def directory_locked(directory: DirectoryFixture, user: DirectoryUser) -> bool:
    """AD: lockoutTime set; OpenLDAP: pwdAccountLockedTime present."""
    name = "lockoutTime" if directory.kind == "ad" else "pwdAccountLockedTime"
    with bound(directory, directory.admin_dn, directory.admin_password) as admin:
        admin.search(user.dn, "(objectClass=*)", ldap3.BASE, attributes=[name])
        values = admin.response[0]["raw_attributes"].get(name, [])
    return bool(values) and values[0] not in (b"0",)


def slapd_binds(directory: DirectoryFixture) -> int:
    """Binds slapd has completed since it started (cn=Monitor), not counting the one made to read it
    (which the next reading does count: see binds_since)."""
    with bound(directory, directory.admin_dn, directory.admin_password) as admin:
        admin.search("cn=Bind,cn=Operations,cn=Monitor", "(objectClass=*)", ldap3.BASE,
                     attributes=["monitorOpCompleted"])
        return int(admin.response[0]["raw_attributes"]["monitorOpCompleted"][0]) - 1


def binds_since(directory: DirectoryFixture, before: int) -> int:
    """Binds since slapd_binds() said `before`, without the two readings' own."""
    return slapd_binds(directory) - before - 1


def bad_password_count(ad, dn: str) -> int:
    with bound(ad, ad.admin_dn, ad.admin_password) as admin:
        admin.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["badPwdCount"])
        return int((admin.response[0]["raw_attributes"].get("badPwdCount") or [b"0"])[0])
