"""The wire layer: spyne, XML, HTTP and the name=value lists; nothing about LDAP."""

from .http import Endpoint

__all__ = ["Endpoint"]
