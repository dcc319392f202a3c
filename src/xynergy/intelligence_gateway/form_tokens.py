"""Signed form tokens: proof that a page fetched the form, and when, before posting it.

A token is ``v1.<issued-at ms>.<signature>``; the signature is HMAC-SHA256 over
the version, the issue time and the form's public id, so a token works for one
form only and cannot be re-dated. A submission whose token is missing, forged,
too old, or younger than the minimum fill time is stored flagged as spam.

The key is ``IntakeSettings.form_token_secret`` or, when that is unset, derived
from the platform's internal token secrets (current and previous), so rotating
the internal secret does not flag the forms open in visitors' browsers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass

from xynergy.intelligence_gateway.config import IntakeSettings

__all__ = [
    "TOKEN_EXPIRED",
    "TOKEN_INVALID",
    "TOKEN_MAX_CHARS",
    "TOKEN_MISSING",
    "TOO_FAST",
    "FormTokens",
    "derive_key",
]

_VERSION = "v1"
_FORM_TOKEN_LABEL = b"xynergy.intake.form-token.v1"
# "v1." + up to 15 digits + "." + 43 characters of base64: room to spare.
TOKEN_MAX_CHARS = 128
_ISSUED_MAX_DIGITS = 15

TOKEN_MISSING = "token_missing"  # noqa: S105 - a spam reason, not a secret
TOKEN_INVALID = "token_invalid"  # noqa: S105 - a spam reason, not a secret
TOKEN_EXPIRED = "token_expired"  # noqa: S105 - a spam reason, not a secret
TOO_FAST = "too_fast"


def derive_key(root: bytes, label: bytes) -> bytes:
    """A key for one purpose, derived from ``root`` (HMAC-SHA256 of ``label``)."""
    return hmac.new(root, label, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class FormTokens:
    """Issues and checks form tokens; the first key signs, every key verifies."""

    keys: tuple[bytes, ...]
    min_fill_seconds: float
    max_age_seconds: int
    leeway_seconds: float

    @classmethod
    def from_settings(
        cls, intake: IntakeSettings, internal_secrets: Sequence[bytes], *, leeway_seconds: float
    ) -> FormTokens:
        """Keys from ``form_token_secret``, else derived from the internal token secrets."""
        if intake.form_token_secret is not None:
            keys: tuple[bytes, ...] = (intake.form_token_secret.get_secret_value().encode(),)
        else:
            keys = tuple(derive_key(secret, _FORM_TOKEN_LABEL) for secret in internal_secrets)
        if not keys:
            raise ValueError("form tokens need at least one secret")
        return cls(
            keys=keys,
            min_fill_seconds=intake.form_token_min_fill_seconds,
            max_age_seconds=intake.form_token_max_age_seconds,
            leeway_seconds=leeway_seconds,
        )

    @staticmethod
    def _sign(key: bytes, public_id: str, issued_ms: str) -> str:
        # The digits-only issue time goes before the id: the message parses one way only.
        message = f"{_VERSION}|{issued_ms}|{public_id}".encode()
        return _b64(hmac.new(key, message, hashlib.sha256).digest())

    def issue(self, public_id: str, *, now: float | None = None) -> str:
        """A token for form ``public_id``, issued ``now`` (epoch seconds)."""
        issued_ms = str(int((time.time() if now is None else now) * 1000))
        return f"{_VERSION}.{issued_ms}.{self._sign(self.keys[0], public_id, issued_ms)}"

    def problem(self, token: str | None, public_id: str, *, now: float | None = None) -> str | None:
        """None for a good token; else the spam reason (missing, invalid, expired, too fast)."""
        if not token:
            return TOKEN_MISSING
        if not token.isascii() or len(token) > TOKEN_MAX_CHARS:
            # compare_digest refuses non-ASCII str; no real token is either.
            return TOKEN_INVALID
        parts = token.split(".")
        if len(parts) != 3:
            return TOKEN_INVALID
        version, issued_ms, signature = parts
        if (
            version != _VERSION
            or not issued_ms.isdigit()
            or len(issued_ms) > _ISSUED_MAX_DIGITS
            or not any(
                hmac.compare_digest(self._sign(key, public_id, issued_ms), signature)
                for key in self.keys
            )
        ):
            return TOKEN_INVALID
        age = (time.time() if now is None else now) - int(issued_ms) / 1000
        if age < -self.leeway_seconds:
            return TOKEN_INVALID
        if age > self.max_age_seconds:
            return TOKEN_EXPIRED
        if age < self.min_fill_seconds:
            return TOO_FAST
        return None
