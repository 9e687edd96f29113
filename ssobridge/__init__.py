"""ssobridge: Active Directory and LDAP behind SmarterTrack's external providers."""

from importlib import metadata

__version__ = "0.1.0"  # the source's own; keep it equal to pyproject.toml's (tests/unit/test_version.py)


def version() -> str:
    """The installed package's version (its metadata, from pyproject.toml); the source's when run uninstalled."""
    try:
        return metadata.version("ssobridge")
    except metadata.PackageNotFoundError:
        return __version__
