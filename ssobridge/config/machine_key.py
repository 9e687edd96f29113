"""SmarterTrack's <machineKey> as web.config names it: the algorithm names, their sizes, and the check of a key.

Plain data, no cryptography: [sso] is checked here at load, and sso/cookie.py maps each name to the
primitive that computes it.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Validation(StrEnum):
    """<machineKey validation>: the HMAC's hash."""

    SHA1 = "SHA1"
    HMACSHA256 = "HMACSHA256"
    HMACSHA384 = "HMACSHA384"
    HMACSHA512 = "HMACSHA512"


class Decryption(StrEnum):
    """<machineKey decryption>: the cipher."""

    AES = "AES"
    TRIPLE_DES = "3DES"


class CompatibilityMode(StrEnum):
    """<machineKey compatibilityMode>: how the cookie is protected."""

    FRAMEWORK20SP1 = "Framework20SP1"
    FRAMEWORK20SP2 = "Framework20SP2"
    FRAMEWORK45 = "Framework45"


# The block ASP.NET's 2.0 modes pad the validation key into (HMAC's block: a longer key does not work there).
HMAC_KEY_BLOCK = {Validation.SHA1: 64, Validation.HMACSHA256: 64, Validation.HMACSHA384: 128,
                  Validation.HMACSHA512: 128}
DECRYPTION_KEY_SIZES = {Decryption.AES: (16, 24, 32), Decryption.TRIPLE_DES: (16, 24)}  # bytes
MIN_VALIDATION_KEY = 20  # bytes: ASP.NET refuses a validationKey of fewer than 40 hex digits
HEX_PAIRS = re.compile(r"(?:[0-9A-Fa-f]{2})*")  # web.config writes keys, and ASP.NET cookies, in hex


def decryption_of(decryption: str, decryption_key: str) -> str:
    """web.config's decryption as ssobridge names it: "Auto" (ASP.NET's default, any case) is DES for an 8-byte
    key, else AES, as ASP.NET chooses; any other value as it is (machine_key_problems judges it)."""
    if decryption.lower() != "auto":
        return decryption
    return "DES" if len(decryption_key) == 16 else Decryption.AES


def machine_key_problems(validation_key: str, decryption_key: str, validation: str, decryption: str,
                         compatibility_mode: str) -> list[tuple[str, str]]:
    """(key, what is wrong) for every problem of a <machineKey> given as in web.config (keys in hex)."""
    problems = []
    for name, value, kind in (("validation", validation, Validation), ("decryption", decryption, Decryption),
                              ("compatibility_mode", compatibility_mode, CompatibilityMode)):
        if value not in tuple(kind):
            problems.append((name, f"must be one of {', '.join(kind)}, not {value!r}"))
    for name, value in (("validation_key", validation_key), ("decryption_key", decryption_key)):
        if "AutoGenerate" in value:
            problems.append((name, "is AutoGenerate: ASP.NET then makes a secret key of its own on each server, "
                                   "which ssobridge cannot share; give SmarterTrack an explicit <machineKey> "
                                   "(IIS Manager > Machine Key > Generate Keys) and use the same keys here"))
        elif not value or not HEX_PAIRS.fullmatch(value):
            problems.append((name, "must be hexadecimal digits (an even number of them), as in web.config"))
    if problems:
        return problems
    validation, decryption, mode = Validation(validation), Decryption(decryption), CompatibilityMode(compatibility_mode)
    validation_bytes = len(validation_key) // 2
    block = HMAC_KEY_BLOCK[validation]
    if validation_bytes < MIN_VALIDATION_KEY:
        problems.append(("validation_key", f"has {validation_bytes * 2} hex digits; ASP.NET needs at least "
                                           f"{MIN_VALIDATION_KEY * 2}"))
    elif validation_bytes > block and mode is not CompatibilityMode.FRAMEWORK45:
        problems.append(("validation_key", f"has {validation_bytes * 2} hex digits; {validation} in {mode} "
                                           f"takes at most {block * 2}"))
    sizes = DECRYPTION_KEY_SIZES[decryption]
    if len(decryption_key) // 2 not in sizes:
        digits = " or ".join(str(size * 2) for size in sizes)
        problems.append(("decryption_key", f"has {len(decryption_key)} hex digits; {decryption} takes {digits}"))
    return problems
