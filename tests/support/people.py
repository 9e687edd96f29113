"""The people in the test directories: one table, so `samba_ad.users[key]` and `openldap.users[key]` mean
the same person wherever the state exists in both directories; `samba_ad_second_dc` has the same people
as `samba_ad`. The second AD domain (`samba_ad_other`, OTHER.TEST) has its own, smaller table.

Each person is there for one behaviour the bridge must get right (the comment says which).
"""

from __future__ import annotations

from dataclasses import dataclass

from .directory import AccountState


@dataclass(frozen=True)
class Person:
    key: str
    login: str  # sAMAccountName (AD) / uid (OpenLDAP)
    cn: str
    password: str
    state: str = AccountState.OK
    given_name: str = "Test"
    surname: str = "User"
    mail: str | None = None
    display_name: str | None = None
    department: str | None = None
    title: str | None = None
    telephone: str | None = None
    upn_prefix: str | None = None  # AD: the part of userPrincipalName before '@'; default: login
    ad_only: bool = False

    def ad_style_attributes(self) -> dict[str, str]:
        """DirectoryUser.attributes: named as in AD in both directories (OpenLDAP stores department as
        departmentNumber), so one expectation serves both."""
        attributes = {"givenName": self.given_name, "sn": self.surname, "department": self.department,
                      "title": self.title, "telephoneNumber": self.telephone}
        return {name: value for name, value in attributes.items() if value is not None}


PEOPLE = (
    # The ordinary user: every attribute set.
    Person("jdoe", "jdoe", "John Doe", "Jd0e-Passw0rd!", given_name="John", surname="Doe",
           mail="jdoe@example.test", display_name="John Doe", department="Sales", title="Account Manager",
           telephone="+49 30 1234-100"),
    # No mail (EmailAddress falls back to the UPN) and no displayName (DisplayName falls back to cn).
    Person("no_mail", "nmail", "Nora Mail", "N0ra-Passw0rd!", given_name="Nora", surname="Mail",
           department="Support", title="Agent", telephone="+49 30 1234-101"),
    # AD: the UPN prefix is not the sAMAccountName.
    Person("upn_differs", "mmuster", "Max Mustermann", "Mmuster-Passw0rd1", given_name="Max",
           surname="Mustermann", mail="max.mustermann@example.test", display_name="Max Mustermann",
           department="Sales", title="Sales Rep", telephone="+49 30 1234-102",
           upn_prefix="max.mustermann", ad_only=True),
    # Non-ASCII login, name and password (ö is unchanged by SASLprep, so str and bytes both work).
    Person("non_ascii", "jörg", "Jörg Müller-Øster 日本", "Jörg-Pässwort-1", given_name="Jörg",
           surname="Müller-Øster", mail="joerg.mueller@example.test", display_name="Jörg Müller-Øster 日本",
           department="Entwicklung", title="Entwickler", telephone="+49 30 1234-103"),
    # A CN that needs RFC 4514 escaping in the DN: comma and quotes.
    Person("escaped_dn", "jdoejr", 'Doe, "Johnny" Jr', "Johnny-Passw0rd!", given_name="Johnny", surname="Doe",
           mail="johnny.doe@example.test", display_name='Johnny "Jr" Doe', department="Sales",
           title="Trainee", telephone="+49 30 1234-104"),
    # A no-break space (U+00A0) in the password: SASLprep would turn it into a space.
    Person("nbsp_password", "nbsp", "Nils Space", "Pass\u00a0word-1", given_name="Nils", surname="Space",
           mail="nbsp@example.test", display_name="Nils Space", department="Support"),
    Person("disabled", "disabled", "Dora Disabled", "Disabled-Passw0rd1", AccountState.DISABLED,
           mail="disabled@example.test", display_name="Dora Disabled"),
    Person("must_change", "mustchange", "Mia Change", "MustChange-Passw0rd1", AccountState.MUST_CHANGE,
           mail="mustchange@example.test", display_name="Mia Change"),
    Person("account_expired", "expired", "Ernst Expired", "Expired-Passw0rd1", AccountState.ACCOUNT_EXPIRED,
           mail="expired@example.test", display_name="Ernst Expired", ad_only=True),
    Person("password_expired", "pwdexpired", "Paula Expired", "PwdExpired-Passw0rd1",
           AccountState.PASSWORD_EXPIRED, mail="pwdexpired@example.test", display_name="Paula Expired"),
    # The only user meant to be locked (lock_out/unlock).
    Person("lockable", "locky", "Lotte Lock", "Locky-Passw0rd1", AccountState.LOCKABLE,
           mail="locky@example.test", display_name="Lotte Lock"),
)

# key -> (cn, member person keys). Nesting: "staff" also holds the group "sales", so jdoe is in "staff"
# only transitively. A member that is ad_only is left out of OpenLDAP.
GROUPS = {
    "sales": ("Sales Team", ("jdoe", "upn_differs", "escaped_dn")),
    "staff": ("All Staff", ("non_ascii",)),  # + the group "sales"
}
NESTED_GROUPS = {"staff": ("sales",)}


# The second AD domain, OTHER.TEST. Its "jdoe" is a DIFFERENT person from EXAMPLE\jdoe, with another
# password: EXAMPLE\jdoe and OTHER\jdoe must be told apart by the domain alone.
OTHER_PEOPLE = (
    Person("jdoe", "jdoe", "Jane Other", "Other-Jd0e-Passw0rd!", given_name="Jane", surname="Other",
           mail="jane.other@other.test", display_name="Jane Other", department="Research",
           title="Researcher", telephone="+33 1 2345-200"),
    # Exists only in OTHER: a bare "okeller" or okeller@example.test must not find her.
    Person("other_only", "okeller", "Olga Keller", "Olga-Passw0rd1", given_name="Olga", surname="Keller",
           mail="olga.keller@other.test", display_name="Olga Keller", department="Research"),
    Person("disabled", "odisabled", "Otto Disabled", "Otto-Passw0rd1", AccountState.DISABLED,
           mail="otto@other.test", display_name="Otto Disabled"),
    Person("lockable", "olocky", "Oskar Lock", "Olocky-Passw0rd1", AccountState.LOCKABLE,
           mail="olocky@other.test", display_name="Oskar Lock"),
)
OTHER_GROUPS = {"research": ("Research Team", ("jdoe", "other_only"))}
