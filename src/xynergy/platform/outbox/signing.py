"""Webhook signatures: HMAC-SHA256 over ``"<unix time>.<payload>"`` with the destination's secret.

The header a receiver checks::

    X-Xynergy-Signature: t=1764115200,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

After a rotation the header carries one ``v1`` per secret that still signs, the
new one first (``t=…,v1=<new>,v1=<previous>``) until the previous secret's grace
period ends: a receiver holding either secret accepts the delivery, and one that
accepts any matching ``v1`` (as it always should) needs no change.

Signing the timestamp with the body lets a receiver refuse replays older than its
tolerance; ``X-Xynergy-Delivery`` (the outbox message id, also the payload's
``id``) is what it de-duplicates on, since a delivery may arrive more than once.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "sign",
    "signature_header",
    "verify_signature",
    "webhook_headers",
]

SIGNATURE_HEADER = "X-Xynergy-Signature"
DELIVERY_HEADER = "X-Xynergy-Delivery"
EVENT_HEADER = "X-Xynergy-Event"
_SCHEME = "v1"
# Receivers refuse signatures older (or newer) than this by default.
DEFAULT_TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int, payload: str) -> str:
    """The hex HMAC-SHA256 of ``"{timestamp}.{payload}"`` under ``secret``."""
    message = f"{timestamp}.{payload}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(
    secret: str,
    payload: str,
    *,
    timestamp: int | None = None,
    also: Sequence[str] = (),
) -> str:
    """The ``X-Xynergy-Signature`` value for ``payload``, signed now unless told.

    ``also``: further secrets (a rotated-out one in its grace period), each adding
    a ``v1`` after the one of ``secret``.
    """
    at = int(time.time()) if timestamp is None else timestamp
    signatures = "".join(f",{_SCHEME}={sign(key, at, payload)}" for key in (secret, *also))
    return f"t={at}{signatures}"


def webhook_headers(
    *, message_id: str, event: str, payload: str, secrets: Sequence[str]
) -> dict[str, str]:
    """Every header of one delivery, signed with each of ``secrets`` (current first);
    unsigned when there is none (a destination without a secret)."""
    headers = {
        "Content-Type": "application/json",
        DELIVERY_HEADER: message_id,
        EVENT_HEADER: event,
    }
    if secrets:
        headers[SIGNATURE_HEADER] = signature_header(secrets[0], payload, also=secrets[1:])
    return headers


def verify_signature(
    payload: str | bytes,
    header: str | None,
    secret: str,
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether ``header`` is a valid, fresh signature of ``payload`` (for receivers).

    Args:
        payload: The request body exactly as received.
        header: The ``X-Xynergy-Signature`` value (None when absent).
        secret: The destination's webhook secret.
        tolerance_seconds: How far the signed time may be from ``now``.
        now: The current Unix time (tests); the clock otherwise.

    Returns:
        True when some ``v1`` signature in the header matches; any malformed,
        stale or mismatching header is simply False.
    """
    if not header:
        return False
    text = payload.decode() if isinstance(payload, bytes) else payload
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == _SCHEME and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, timestamp, text)
    # Several v1 values are allowed so a sender can sign with old and new secret
    # while a receiver rotates.
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
