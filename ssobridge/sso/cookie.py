"""SmarterTrack's sign-in cookie: an ASP.NET forms authentication ticket, encrypted and signed as ASP.NET does.

The API the sign-in pages and `ssobridge sso decode-cookie` use:

    from ssobridge.sso.cookie import MachineKey, Ticket, issue_cookie, read_cookie, CookieRefused

    key = MachineKey.from_settings(config.sso)          # or MachineKey.from_hex(validation_key=..., ...)
    value = issue_cookie(key, Ticket.new("CORP\\jdoe", minutes=30))    # the hex string for the cookie
    ticket = read_cookie(key, value)                    # a Ticket, or CookieRefused(reason)

`issue_cookie(key, ticket) -> str` returns what FormsAuthentication.Encrypt returns: upper-case hex.
`read_cookie(key, value, now=None) -> Ticket` does what FormsAuthentication.Decrypt and the module's
expiry check do; it raises CookieRefused whose str() is a plain reason ("not hex ...", "signature does
not match (wrong validation key, or altered)", "expired on ... UTC", ...). An expired refusal carries
the decoded ticket in `.ticket`, so a tool can still show it.

The specification is the .NET reference source (microsoft/referencesource, System.Web):

- Framework45 (Security/Cryptography: AspNetCryptoServiceProvider, NetFXCryptoService, SP800_108,
  Purpose): both keys are first derived with SP800-108 in counter mode, HMAC-SHA512, label
  "FormsAuthentication.Ticket", empty context, as long as the configured key. The cookie is
  IV (one cipher block, random) + CBC(ticket) + HMAC(IV + ciphertext).
- Framework20SP1 and Framework20SP2 (FormsAuthentication.Encrypt, MachineKeySection.EncryptOrDecryptData):
  the ticket gets its HMAC appended, a random prefix as long as the decryption key is put before it, the
  whole is encrypted in CBC with an all-zero IV, and the ciphertext gets its HMAC appended. Since the 2010
  security update (MS10-070) signing is forced, which also forces the random prefix, so SP1 and SP2 write
  the same cookies.
- HMAC keys: in the 2.0 modes ASP.NET pads the validation key into a block of 64 bytes (SHA1, HMACSHA256)
  or 128 bytes (HMACSHA384, HMACSHA512), which is standard HMAC for keys up to that size; a longer key does
  not work there, so it is refused for those modes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .ticket import Ticket, parse, serialize

try:  # cryptography 43 moved TripleDES to "decrepit"; the old name still works, with a warning
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES

if TYPE_CHECKING:
    from ..config.settings import SsoSettings

__all__ = ["MachineKey", "Ticket", "issue_cookie", "read_cookie", "CookieRefused", "machine_key_problems",
           "VALIDATIONS", "DECRYPTIONS", "COMPATIBILITY_MODES"]

# <machineKey validation>: the hash, and the block ASP.NET's 2.0 modes pad the key into.
VALIDATIONS = {"SHA1": (hashes.SHA1, 64), "HMACSHA256": (hashes.SHA256, 64),
               "HMACSHA384": (hashes.SHA384, 128), "HMACSHA512": (hashes.SHA512, 128)}
# <machineKey decryption>: the cipher and its key sizes in bytes.
DECRYPTIONS = {"AES": (algorithms.AES, (16, 24, 32)), "3DES": (TripleDES, (16, 24))}
COMPATIBILITY_MODES = ("Framework20SP1", "Framework20SP2", "Framework45")
MIN_VALIDATION_KEY = 20  # bytes: ASP.NET refuses a validationKey of fewer than 40 hex digits
MAX_COOKIE_CHARS = 4096  # FormsAuthentication.MAX_TICKET_LENGTH
_FORMS_PURPOSE = b"FormsAuthentication.Ticket"  # Purpose.FormsAuthentication_Ticket
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})*")


class CookieRefused(Exception):
    """The cookie cannot be used; str() is the reason, `ticket` the decoded ticket when only its date failed."""

    def __init__(self, reason: str, ticket: Ticket | None = None):
        super().__init__(reason)
        self.reason = reason
        self.ticket = ticket


def machine_key_problems(validation_key: str, decryption_key: str, validation: str, decryption: str,
                         compatibility_mode: str) -> list[tuple[str, str]]:
    """(key, what is wrong) for every problem of a <machineKey> given as in web.config (keys in hex)."""
    problems = []
    if validation not in VALIDATIONS:
        problems.append(("validation", f"must be one of {', '.join(VALIDATIONS)}, not {validation!r}"))
    if decryption not in DECRYPTIONS:
        problems.append(("decryption", f"must be one of {', '.join(DECRYPTIONS)}, not {decryption!r}"))
    if compatibility_mode not in COMPATIBILITY_MODES:
        problems.append(("compatibility_mode",
                         f"must be one of {', '.join(COMPATIBILITY_MODES)}, not {compatibility_mode!r}"))
    for name, value in (("validation_key", validation_key), ("decryption_key", decryption_key)):
        if "AutoGenerate" in value:
            problems.append((name, "is AutoGenerate: ASP.NET then makes a secret key of its own on each server, "
                                   "which ssobridge cannot share; give SmarterTrack an explicit <machineKey> "
                                   "(IIS Manager > Machine Key > Generate Keys) and use the same keys here"))
        elif not value or not _HEX.fullmatch(value):
            problems.append((name, "must be hexadecimal digits (an even number of them), as in web.config"))
    if problems:
        return problems
    validation_bytes = len(validation_key) // 2
    block = VALIDATIONS[validation][1]
    if validation_bytes < MIN_VALIDATION_KEY:
        problems.append(("validation_key", f"has {validation_bytes * 2} hex digits; ASP.NET needs at least "
                                           f"{MIN_VALIDATION_KEY * 2}"))
    elif validation_bytes > block and compatibility_mode != "Framework45":
        problems.append(("validation_key", f"has {validation_bytes * 2} hex digits; {validation} in "
                                           f"{compatibility_mode} takes at most {block * 2}"))
    sizes = DECRYPTIONS[decryption][1]
    if len(decryption_key) // 2 not in sizes:
        digits = " or ".join(str(size * 2) for size in sizes)
        problems.append(("decryption_key", f"has {len(decryption_key)} hex digits; {decryption} takes {digits}"))
    return problems


@dataclass(frozen=True)
class MachineKey:
    """SmarterTrack's <machineKey>: the keys as bytes and the algorithm names as web.config spells them."""
    validation_key: bytes = field(repr=False)
    decryption_key: bytes = field(repr=False)
    validation: str = "HMACSHA256"
    decryption: str = "AES"
    compatibility_mode: str = "Framework20SP1"

    def __post_init__(self) -> None:
        problems = machine_key_problems(self.validation_key.hex(), self.decryption_key.hex(), self.validation,
                                        self.decryption, self.compatibility_mode)
        if problems:
            raise ValueError("; ".join(f"{key} {text}" for key, text in problems))

    @classmethod
    def from_hex(cls, validation_key: str, decryption_key: str, **algorithms_and_mode: str) -> MachineKey:
        problems = machine_key_problems(validation_key, decryption_key,
                                        algorithms_and_mode.get("validation", "HMACSHA256"),
                                        algorithms_and_mode.get("decryption", "AES"),
                                        algorithms_and_mode.get("compatibility_mode", "Framework20SP1"))
        if problems:
            raise ValueError("; ".join(f"{key} {text}" for key, text in problems))
        return cls(bytes.fromhex(validation_key), bytes.fromhex(decryption_key), **algorithms_and_mode)

    @classmethod
    def from_settings(cls, sso: SsoSettings) -> MachineKey:
        """From [sso], which load() has already validated."""
        return cls.from_hex(sso.validation_key, sso.decryption_key, validation=sso.validation,
                            decryption=sso.decryption, compatibility_mode=sso.compatibility_mode)

    @property
    def hash_size(self) -> int:
        return VALIDATIONS[self.validation][0].digest_size

    @property
    def block_size(self) -> int:
        return DECRYPTIONS[self.decryption][0].block_size // 8

    @cached_property
    def _keys(self) -> tuple[bytes, bytes]:
        """(encryption, validation) keys as the mode uses them: Framework45 derives its own."""
        if self.compatibility_mode == "Framework45":
            return _sp800_108(self.decryption_key), _sp800_108(self.validation_key)
        return self.decryption_key, self.validation_key

    def sign(self, data: bytes) -> bytes:
        mac = hmac.HMAC(self._keys[1], VALIDATIONS[self.validation][0]())
        mac.update(data)
        return mac.finalize()

    def signed(self, data: bytes) -> bool:
        """Whether `data` ends with the HMAC of what precedes it (compared in constant time)."""
        mac = hmac.HMAC(self._keys[1], VALIDATIONS[self.validation][0]())
        mac.update(data[:-self.hash_size])
        try:
            mac.verify(data[-self.hash_size:])
            return True
        except InvalidSignature:
            return False

    def cbc(self, encrypt: bool, iv: bytes, data: bytes) -> bytes:
        """CBC with PKCS#7 padding, as .NET's SymmetricAlgorithm defaults; ValueError on bad padding."""
        material = self._keys[0]
        if self.decryption == "3DES" and len(material) == 16:
            material += material[:8]  # two-key 3DES (K1 K2 K1), as .NET takes it, in the form cryptography wants
        cipher = DECRYPTIONS[self.decryption][0](material)
        block_bits = cipher.block_size
        if encrypt:
            padder = padding.PKCS7(block_bits).padder()
            encryptor = Cipher(cipher, modes.CBC(iv)).encryptor()
            return encryptor.update(padder.update(data) + padder.finalize()) + encryptor.finalize()
        decryptor = Cipher(cipher, modes.CBC(iv)).decryptor()
        unpadder = padding.PKCS7(block_bits).unpadder()
        padded = decryptor.update(data) + decryptor.finalize()
        return unpadder.update(padded) + unpadder.finalize()


def _sp800_108(master: bytes) -> bytes:
    """SP800-108 counter mode with HMAC-SHA512: [i]32 || label || 0x00 || context || [L]32, as long as master."""
    length = len(master)
    output = b""
    counter = 1
    while len(output) < length:
        mac = hmac.HMAC(master, hashes.SHA512())
        mac.update(counter.to_bytes(4, "big") + _FORMS_PURPOSE + b"\x00" + (length * 8).to_bytes(4, "big"))
        output += mac.finalize()
        counter += 1
    return output[:length]


def issue_cookie(key: MachineKey, ticket: Ticket) -> str:
    """The cookie value ASP.NET would write for `ticket` with this machine key: upper-case hex."""
    blob = serialize(ticket)
    if key.compatibility_mode == "Framework45":
        iv = os.urandom(key.block_size)
        protected = iv + key.cbc(True, iv, blob)
    else:
        prefix = os.urandom(len(key.decryption_key))  # "IVType.Random": as long as the key, not the block
        protected = key.cbc(True, bytes(key.block_size), prefix + blob + key.sign(blob))
    return (protected + key.sign(protected)).hex().upper()


def read_cookie(key: MachineKey, value: str, now: datetime | None = None) -> Ticket:
    """The ticket in a cookie value, checked as ASP.NET checks it; CookieRefused saying why not."""
    value = value.strip()
    if not value:
        raise CookieRefused("empty")
    if len(value) > MAX_COOKIE_CHARS:
        raise CookieRefused(f"{len(value)} characters, more than ASP.NET's {MAX_COOKIE_CHARS}")
    if not _HEX.fullmatch(value):
        raise CookieRefused("not hex (ASP.NET writes the ticket in hexadecimal; base64 is Mono's format or a "
                            "cookieless URL ticket)" if len(value) % 2 == 0 or not _HEX.fullmatch(value[:-1])
                            else "not hex: an odd number of digits (cut short?)")
    data = bytes.fromhex(value)
    blob = _unprotect_45(key, data) if key.compatibility_mode == "Framework45" else _unprotect_20(key, data)
    try:
        ticket = parse(blob)
    except ValueError as e:
        raise CookieRefused(f"decrypted, but not a forms authentication ticket ({e}): wrong decryption key or "
                            f"decryption algorithm?") from None
    if ticket.expired(now):
        raise CookieRefused(f"expired on {ticket.expiration:%Y-%m-%d %H:%M:%S} UTC", ticket)
    return ticket


_ALTERED = "signature does not match (wrong validation key, or altered)"
_UNDECRYPTABLE = "signed correctly but cannot be decrypted (wrong decryption key or decryption algorithm)"


def _too_short(key: MachineKey, data: bytes, minimum: int) -> None:
    if len(data) < minimum:
        raise CookieRefused(f"too short for {key.validation}/{key.decryption} in {key.compatibility_mode}: "
                            f"{len(data)} bytes, at least {minimum} expected (cut short, or other algorithms?)")


def _decrypt(key: MachineKey, iv: bytes, ciphertext: bytes) -> bytes:
    if len(ciphertext) % key.block_size:
        raise CookieRefused(_UNDECRYPTABLE)
    try:
        return key.cbc(False, iv, ciphertext)
    except ValueError:
        raise CookieRefused(_UNDECRYPTABLE) from None


def _unprotect_45(key: MachineKey, data: bytes) -> bytes:
    _too_short(key, data, 2 * key.block_size + key.hash_size)
    if not key.signed(data):
        raise CookieRefused(_ALTERED)
    return _decrypt(key, data[:key.block_size], data[key.block_size:-key.hash_size])


def _unprotect_20(key: MachineKey, data: bytes) -> bytes:
    prefix = len(key.decryption_key)
    _too_short(key, data, _round_up(prefix + key.hash_size + 1, key.block_size) + key.hash_size)
    if not key.signed(data):
        raise CookieRefused(_ALTERED)
    plain = _decrypt(key, bytes(key.block_size), data[:-key.hash_size])[prefix:]
    if len(plain) <= key.hash_size or not key.signed(plain):
        raise CookieRefused(_UNDECRYPTABLE)
    return plain[:-key.hash_size]


def _round_up(count: int, block: int) -> int:
    return -(-count // block) * block


def describe(key: MachineKey) -> str:
    """"HMACSHA256 / AES-192, Framework20SP1": the algorithms of a MachineKey, for messages."""
    bits = len(key.decryption_key) * 8
    cipher = f"AES-{bits}" if key.decryption == "AES" else f"3DES ({bits}-bit key)"
    return f"{key.validation} / {cipher}, {key.compatibility_mode}"
