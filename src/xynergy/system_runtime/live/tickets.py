"""Single-use, short-lived WebSocket tickets, for browsers (which cannot set headers
on a WebSocket) so that no long-lived key ever travels in a URL.

A ticket is 32 random bytes, shown once; only its SHA-256 is stored, with the
tenant and key it was minted for, for ``ws_ticket_ttl_seconds``. Redeeming takes
the record away in one step, so a ticket admits one connection:

- with Redis (the platform's multi-replica setup) the record is a key with a TTL,
  redeemed by ``GETDEL``: atomic, and seen by every replica;
- without Redis (single process, like the rest of the platform's shared state:
  rate limits, revocation fan-out) a bounded in-process TTL map.

A ticket grants ``workflows:read`` only, in the tenant its key acted for, and
only while that key is still usable: a key revoked after minting admits nothing.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cachetools import TTLCache
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.exceptions import Unauthorized
from xynergy.platform.tenancy.models import ApiKey

__all__ = ["TICKET_SCOPE", "IssuedTicket", "TicketStore"]

TICKET_SCOPE = "workflows:read"
_TICKET_BYTES = 32
# token_urlsafe(32) is 43 characters; anything longer is refused before hashing.
_TICKET_MAX_CHARS = 64
_REFUSED = "The ticket is unknown, used or expired; ask POST /api/ws-tickets for a new one."


@dataclass(frozen=True, slots=True)
class IssuedTicket:
    ticket: str
    expires_at: datetime


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


class TicketStore:
    """Mints and redeems tickets in Redis when given, else in this process."""

    def __init__(
        self,
        *,
        redis: Redis | None,
        key_prefix: str,
        ttl_seconds: int,
        max_in_process: int,
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        self._redis = redis
        self._prefix = key_prefix + "runtime:ws-ticket:"
        self._ttl = ttl_seconds
        self._sessions = sessions
        # Full: the oldest unredeemed ticket goes first (minting is rate-limited per key).
        self._local: TTLCache[str, str] = TTLCache(maxsize=max_in_process, ttl=ttl_seconds)

    async def mint(self, caller: AuthContext) -> IssuedTicket:
        """A new ticket for ``caller``'s tenant and key."""
        ticket = secrets.token_urlsafe(_TICKET_BYTES)
        record = json.dumps(
            {
                "tenant_id": caller.tenant_id,
                "key_id": caller.key_id,
                "key_tenant_id": caller.key_tenant_id,
            }
        )
        if self._redis is not None:
            await self._redis.set(self._prefix + _digest(ticket), record, ex=self._ttl)
        else:
            self._local[_digest(ticket)] = record
        return IssuedTicket(ticket=ticket, expires_at=utcnow() + timedelta(seconds=self._ttl))

    async def redeem(self, ticket: str) -> AuthContext:
        """The identity ``ticket`` was minted for; the ticket is spent.

        Raises:
            Unauthorized: unknown, already used, expired, or its key is no longer usable.
        """
        if not 0 < len(ticket) <= _TICKET_MAX_CHARS:
            raise Unauthorized(_REFUSED)
        digest = _digest(ticket)
        if self._redis is not None:
            raw = await self._redis.getdel(self._prefix + digest)
            record = raw.decode() if isinstance(raw, bytes) else raw
        else:
            record = self._local.pop(digest, None)
        if record is None:
            raise Unauthorized(_REFUSED)
        fields = json.loads(record)
        async with unit_of_work(self._sessions) as session:
            key = await session.get(ApiKey, fields["key_id"])
            unusable = "deleted" if key is None else key.unusable_reason(utcnow())
        if unusable is not None:
            raise Unauthorized(f"The key this ticket was minted with is {unusable}.")
        return AuthContext(
            tenant_id=fields["tenant_id"],
            key_id=fields["key_id"],
            key_tenant_id=fields["key_tenant_id"],
            scopes=frozenset({TICKET_SCOPE}),
        )
