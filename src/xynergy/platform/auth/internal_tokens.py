"""Short-lived signed tokens for calls between services.

A service calling another never forwards the caller's API key. It mints a token
naming the tenant, the acting key id, the scopes this one call needs (a subset
of the caller's) and the request id, addressed to one target service and valid
for about a minute, signed with HMAC-SHA256. The receiver verifies it as
strictly as a key: signature, audience, issue time and expiry.

Besides the signing secret, a *next* secret (accepted before it signs) and a
*previous* one (accepted after it stopped signing) may be configured, so the
secret rotates across replicas without a moment when one side rejects the
other's tokens. The set is reloaded live (``internal_secret_reload``): it is one
immutable snapshot swapped in a single assignment, so a mint or a verify reads
one consistent set however a reload interleaves with it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.config import Settings
from xynergy.platform.exceptions import Forbidden, Unauthorized
from xynergy.platform.input_text import is_storable_text

__all__ = [
    "INTERNAL_TOKEN_HEADER",
    "InternalTokens",
    "TokenSecrets",
    "development_secret",
    "resolve_internal_secrets",
]

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


def development_secret(data_dir: Path) -> bytes:
    """The secret generated once into ``data_dir`` for development without a configured one.

    Standalone services started on the same machine share it, so they accept
    each other's tokens with no set-up.
    """
    path = Path(data_dir) / _SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(_GENERATED_SECRET_BYTES))
    return path.read_text().strip().encode()


def resolve_internal_secrets(settings: Settings) -> list[bytes]:
    """The signing secret first, then the next and previous ones still accepted.

    Without a configured signing secret (development only; production refuses
    to start) the generated :func:`development_secret` signs.
    """
    signing = settings.internal_token_secret
    accepted = [
        s.get_secret_value().encode()
        for s in (settings.internal_token_next_secret, settings.internal_token_previous_secret)
        if s is not None
    ]
    first = (
        development_secret(settings.data_dir)
        if signing is None
        else signing.get_secret_value().encode()
    )
    return list(TokenSecrets.of(first, *accepted).accepted)


@dataclass(frozen=True, slots=True)
class TokenSecrets:
    """One consistent set: the secret that signs and every secret a token may carry.

    ``accepted`` starts with ``signing``; duplicates are dropped (a next or
    previous secret equal to the signing one adds nothing).
    """

    signing: bytes = field(repr=False)
    accepted: tuple[bytes, ...] = field(repr=False)

    @classmethod
    def of(cls, signing: bytes, *also_accepted: bytes) -> TokenSecrets:
        return cls(signing, tuple(dict.fromkeys((signing, *also_accepted))))


class InternalTokens:
    """Mints and verifies internal tokens with a secret set that may be swapped live."""

    __slots__ = ("_current", "leeway_seconds", "ttl_seconds")

    def __init__(self, *, secrets: Sequence[bytes], ttl_seconds: int, leeway_seconds: int) -> None:
        """``secrets``: the signing secret first, then any others still accepted."""
        if not secrets:
            raise ValueError("internal tokens need a signing secret")
        self._current = TokenSecrets.of(*secrets)
        self.ttl_seconds = ttl_seconds
        self.leeway_seconds = leeway_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> InternalTokens:
        return cls(
            secrets=resolve_internal_secrets(settings),
            ttl_seconds=settings.internal_token_ttl_seconds,
            leeway_seconds=settings.internal_token_leeway_seconds,
        )

    @property
    def secrets(self) -> tuple[bytes, ...]:
        """Every accepted secret, the signing one first (one snapshot)."""
        return self._current.accepted

    @property
    def current(self) -> TokenSecrets:
        """The secret set in use now."""
        return self._current

    def install(self, new: TokenSecrets) -> None:
        """Use ``new`` from the next mint or verify on (one assignment: atomic)."""
        self._current = new

    def __repr__(self) -> str:
        return (
            f"InternalTokens(accepted={len(self._current.accepted)}, "
            f"ttl_seconds={self.ttl_seconds}, leeway_seconds={self.leeway_seconds})"
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
        return f"{_VERSION}.{payload}.{self._sign(self._current.signing, payload)}"

    def verify(self, token: str, *, audience: str) -> AuthContext:
        """The context a token grants; raises Unauthorized on any defect."""
        if not token.isascii():
            # Header values arrive as latin-1 text; compare_digest refuses non-ASCII str.
            raise Unauthorized("The internal token is malformed.")
        version, _, rest = token.partition(".")
        payload, _, signature = rest.partition(".")
        if version != _VERSION or not payload or not signature:
            raise Unauthorized("The internal token is malformed.")
        accepted = self._current.accepted  # one snapshot, whatever a reload does meanwhile
        if not any(
            hmac.compare_digest(self._sign(secret, payload), signature) for secret in accepted
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
