"""Short-lived signed tokens for calls between services.

A service calling another never forwards the caller's API key. It mints a token
naming the tenant, the acting key id, the scopes this one call needs (a subset
of the caller's) and the request id, addressed to one target service and valid
for about a minute, signed with HMAC-SHA256. The receiver verifies it as
strictly as a key: signature, audience, issue time and expiry.

Two secrets may be configured (current and previous) so the secret can be
rotated without a moment when one side rejects the other's tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.config import Settings
from xynergy.platform.exceptions import Forbidden, Unauthorized
from xynergy.platform.input_text import is_storable_text

__all__ = ["INTERNAL_TOKEN_HEADER", "InternalTokens", "resolve_internal_secrets"]

INTERNAL_TOKEN_HEADER = "X-Xynergy-Internal-Token"  # noqa: S105 - a header name
_VERSION = "v1"
_SECRET_FILE = "internal-token.secret"  # noqa: S105 - a file name
_GENERATED_SECRET_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _is_int(value: object) -> TypeGuard[int]:
    # bool is an int to Python, never to a token.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_name(value: object) -> TypeGuard[str]:
    """A non-empty string the database can hold (ids, scopes)."""
    return isinstance(value, str) and bool(value) and is_storable_text(value)


def resolve_internal_secrets(settings: Settings) -> list[bytes]:
    """The signing secret first, then any previous one still accepted.

    Without a configured secret (development only; production refuses to start),
    one is generated once into the data dir so standalone services started on
    the same machine agree on it.
    """
    configured = [
        s.get_secret_value().encode()
        for s in (settings.internal_token_secret, settings.internal_token_previous_secret)
        if s is not None
    ]
    if configured:
        return configured
    path = Path(settings.data_dir) / _SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(_GENERATED_SECRET_BYTES))
    return [path.read_text().strip().encode()]


@dataclass(frozen=True, slots=True)
class InternalTokens:
    """Mints and verifies internal tokens."""

    secrets: tuple[bytes, ...]
    ttl_seconds: int
    leeway_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> InternalTokens:
        return cls(
            secrets=tuple(resolve_internal_secrets(settings)),
            ttl_seconds=settings.internal_token_ttl_seconds,
            leeway_seconds=settings.internal_token_leeway_seconds,
        )

    def _sign(self, secret: bytes, payload: str) -> str:
        message = f"{_VERSION}.{payload}".encode()
        return _b64(hmac.new(secret, message, hashlib.sha256).digest())

    def mint(
        self, caller: AuthContext, *, audience: str, scopes: frozenset[str], request_id: str | None
    ) -> str:
        """A token for one call to ``audience`` granting ``scopes`` (a subset of the caller's)."""
        if not caller.allows(*scopes):
            raise Forbidden("A service call asked for scopes its caller does not hold.")
        now = int(time.time())
        claims = {
            "ten": caller.tenant_id,
            "kid": caller.key_id,
            "ktn": caller.key_tenant_id,
            "scp": sorted(scopes),
            "rid": request_id,
            "aud": audience,
            "iat": now,
            "exp": now + self.ttl_seconds,
        }
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{_VERSION}.{payload}.{self._sign(self.secrets[0], payload)}"

    def verify(self, token: str, *, audience: str) -> AuthContext:
        """The context a token grants; raises Unauthorized on any defect."""
        if not token.isascii():
            # Header values arrive as latin-1 text; compare_digest refuses non-ASCII str.
            raise Unauthorized("The internal token is malformed.")
        version, _, rest = token.partition(".")
        payload, _, signature = rest.partition(".")
        if version != _VERSION or not payload or not signature:
            raise Unauthorized("The internal token is malformed.")
        if not any(
            hmac.compare_digest(self._sign(secret, payload), signature) for secret in self.secrets
        ):
            raise Unauthorized("The internal token signature is invalid.")
        try:
            claims = json.loads(_unb64(payload))
        except (ValueError, binascii.Error, RecursionError) as exc:
            raise Unauthorized("The internal token is malformed.") from exc
        # A valid signature proves who minted the payload, not its shape: a
        # secret shared with a buggy or older peer must still never cause a 500.
        if not isinstance(claims, dict):
            raise Unauthorized("The internal token is malformed.")
        now = time.time()
        if claims.get("aud") != audience:
            raise Unauthorized("The internal token is for another service.")
        issued, expires = claims.get("iat"), claims.get("exp")
        if not _is_int(issued) or not _is_int(expires):
            raise Unauthorized("The internal token is malformed.")
        if issued > now + self.leeway_seconds or expires - issued > self.ttl_seconds:
            raise Unauthorized("The internal token's lifetime is invalid.")
        if expires < now - self.leeway_seconds:
            raise Unauthorized("The internal token has expired.")
        tenant, key, key_tenant, scopes = (
            claims.get(name) for name in ("ten", "kid", "ktn", "scp")
        )
        if not (
            _is_name(tenant)
            and _is_name(key)
            and _is_name(key_tenant)
            and isinstance(scopes, list)
            and all(_is_name(scope) for scope in scopes)
        ):
            raise Unauthorized("The internal token is malformed.")
        return AuthContext(
            tenant_id=tenant,
            key_id=key,
            key_tenant_id=key_tenant,
            scopes=frozenset(scopes),
            via="internal",
        )
