"""Spam signals of a public submission; each one found is a reason stored with the row.

Spam is stored flagged, never dropped, and answered exactly like a genuine
submission: a bot learns nothing about which signal caught it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

__all__ = [
    "HONEYPOT",
    "ORIGIN_NOT_ALLOWED",
    "REPEATED_CONTENT",
    "TOO_MANY_LINKS",
    "client_ip_hash",
    "content_hash",
    "count_links",
    "normalise_text",
]

HONEYPOT = "honeypot"
TOO_MANY_LINKS = "too_many_links"
REPEATED_CONTENT = "repeated_content"
# A browser on an origin the form does not list fails the CORS preflight a JSON
# post needs, so such a post comes from a script that set the header itself.
ORIGIN_NOT_ALLOWED = "origin_not_allowed"

_LINK = re.compile(r"https?://|www\.", re.IGNORECASE)


def normalise_text(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed: trivial variations compare equal."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def count_links(*texts: str | None) -> int:
    """Links (``http(s)://`` or ``www.``) in the free text, look-alike characters folded."""
    return sum(len(_LINK.findall(unicodedata.normalize("NFKC", text))) for text in texts if text)


def content_hash(text: str) -> str:
    """SHA-256 (hex) of the normalised text, to find the same message sent again."""
    return hashlib.sha256(normalise_text(text).encode()).hexdigest()


def client_ip_hash(address: str, key: bytes) -> str:
    """A keyed hash of the client address: comparable between rows, not reversible
    by enumerating the IPv4 space as a plain hash would be."""
    return hmac.new(key, address.encode(), hashlib.sha256).hexdigest()
