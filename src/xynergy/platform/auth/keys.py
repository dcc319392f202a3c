"""API key format: ``xyn_<live|test>_<secret><checksum>``.

* secret: 32 random bytes in fixed-width base62 (43 characters);
* checksum: CRC32 of everything before it, base62, 6 characters, so a typo or a
  random string is refused without touching the database and secret scanners
  can recognise a real key;
* stored: only the SHA-256 of the whole key (unique index), a display prefix and
  the last four characters. The key itself is shown once, at creation.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import zlib
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "KEY_LENGTH",
    "GeneratedKey",
    "KeyEnvironment",
    "generate_key",
    "hash_key",
    "is_well_formed",
]

KeyEnvironment = Literal["live", "test"]

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SECRET_BYTES = 32
_SECRET_CHARS = 43  # ceil(256 / log2(62))
_CHECKSUM_CHARS = 6  # ceil(32 / log2(62))
_DISPLAY_SECRET_CHARS = 6
KEY_LENGTH = len("xyn_live_") + _SECRET_CHARS + _CHECKSUM_CHARS
_KEY_PATTERN = re.compile(
    rf"^(xyn_(?:live|test)_)([0-9A-Za-z]{{{_SECRET_CHARS}}})([0-9A-Za-z]{{{_CHECKSUM_CHARS}}})$"
)


def _base62(number: int, width: int) -> str:
    chars = []
    while number:
        number, digit = divmod(number, 62)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars)).rjust(width, "0")


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), _CHECKSUM_CHARS)


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    """A freshly generated key; ``plaintext`` must be shown once and then dropped."""

    plaintext: str
    key_hash: str
    display_prefix: str
    last4: str


def hash_key(plaintext: str) -> str:
    """SHA-256 hex digest of a key: what the database stores and looks up."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def generate_key(environment: KeyEnvironment = "live") -> GeneratedKey:
    """Generate a new key for ``environment``."""
    head = f"xyn_{environment}_"
    secret = _base62(int.from_bytes(secrets.token_bytes(_SECRET_BYTES), "big"), _SECRET_CHARS)
    body = head + secret
    plaintext = body + _checksum(body)
    return GeneratedKey(
        plaintext=plaintext,
        key_hash=hash_key(plaintext),
        display_prefix=head + secret[:_DISPLAY_SECRET_CHARS],
        last4=plaintext[-4:],
    )


def is_well_formed(candidate: str) -> bool:
    """Whether ``candidate`` has the key shape and a correct checksum."""
    match = _KEY_PATTERN.match(candidate)
    if match is None:
        return False
    head, secret, checksum = match.groups()
    return secrets.compare_digest(_checksum(head + secret), checksum)
