"""ssobridge: Active Directory and LDAP behind SmarterTrack's external providers."""

from importlib import metadata

from . import spyne_compat  # noqa: F401  (first: spyne 2.14 imports on Python 3.12+ only with it)

__version__ = "0.1.0"  # the source's own; keep it equal to pyproject.toml's (tests/unit/test_version.py)


def version() -> str:
    """The installed package's version (its metadata, from pyproject.toml); the source's when run uninstalled."""
    try:
        return metadata.version("ssobridge")
    except metadata.PackageNotFoundError:
        return __version__
