"""ssobridge: Active Directory and LDAP behind SmarterTrack's external providers."""

__version__ = "0.1.0"
