"""Browser sessions: an API key exchanged once for a cookie, checked on every request.

:class:`WebSessions` makes, checks and ends sessions. A request's cookie costs no
database read while its row is cached (``web_session_cache_ttl_seconds``, bounded
LRU+TTL); the key behind it is re-checked on every request through the
:class:`KeyVerifier` (its own cache, dropped at once by a revocation), so a
revoked, expired or rotated key ends its sessions at once.

A sign-out drops the session here at once and, with Redis, on every replica
through the verifier's invalidation broadcast; without Redis another replica may
honour it for at most the cache TTL. ``last_seen_at`` is batched in memory and
written periodically: no write per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cachetools import TTLCache
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.keys import hash_key
from xynergy.platform.auth.verifier import KeyVerifier
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.exceptions import Unauthorized
from xynergy.platform.logging import get_logger
from xynergy.platform.shared_calls import SharedCalls
from xynergy.platform.web_sessions.cookies import hash_token, new_token
from xynergy.platform.web_sessions.csrf import csrf_token_for
from xynergy.platform.web_sessions.models import WebSession
from xynergy.platform.web_sessions.repository import WebSessionRepository
from xynergy.platform.web_sessions.schemas import SessionBody

__all__ = ["MAINTENANCE_JOB", "SessionInfo", "WebSessions"]

log = get_logger(__name__)

MAINTENANCE_JOB = "platform.web-sessions"
_ENDED = "The session has ended; sign in again."


@dataclass(frozen=True, slots=True)
class _StoredSession:
    key_id: str
    key_hash: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A signed-in browser session, checked (its key included) when it was read.

    ``auth`` is the underlying key's context: what a cookie-authenticated request
    acts as. ``csrf_token`` is what the page must send as ``X-CSRF-Token`` on
    unsafe requests; a server-rendered page may hand it to its script.
    """

    tenant_id: str
    key_id: str
    scopes: frozenset[str]
    created_at: datetime
    expires_at: datetime
    csrf_token: str
    auth: AuthContext

    def body(self) -> dict[str, Any]:
        """The JSON body of ``POST /session`` and ``GET /session``."""
        return SessionBody(
            tenant_id=self.tenant_id,
            key_id=self.key_id,
            scopes=sorted(self.scopes),
            expires_at=self.expires_at,
            csrf_token=self.csrf_token,
        ).model_dump(mode="json")


class WebSessions:
    """Makes, checks and ends browser sessions through a bounded, revocable cache."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        verifier: KeyVerifier,
    ) -> None:
        self._settings = settings
        self._sessionmaker = sessionmaker
        self._verifier = verifier
        self._lifetime = timedelta(seconds=settings.web_session_ttl_seconds)
        bound, ttl = settings.web_session_cache_max_entries, settings.web_session_cache_ttl_seconds
        self._sessions: TTLCache[str, _StoredSession] = TTLCache(maxsize=bound, ttl=ttl)
        # Tokens known not to exist: a flood of made-up cookies costs one read each per TTL.
        self._unknown: TTLCache[str, bool] = TTLCache(maxsize=bound, ttl=ttl)
        self._lookups: SharedCalls[str, _StoredSession] = SharedCalls(bound)
        # Bumped whenever a session is forgotten: a lookup that started before a
        # sign-out may have read the row, so its result is not cached.
        self._generation = 0
        self._seen: dict[str, float] = {}
        self._seen_bound = bound
        self._flush_interval = settings.key_last_used_flush_seconds
        self._flusher: asyncio.Task[None] | None = None
        verifier.add_invalidation_listener(self._forget)

    async def start(self) -> None:
        """Start writing last-seen times periodically (once)."""
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_forever(), name="web-sessions-seen")

    async def stop(self) -> None:
        """Stop the flusher and write out pending last-seen times."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        try:
            await self.flush_last_seen()
        except Exception as exc:
            # Shutting down with the database gone: last-seen times are a hint.
            log.warning("web_sessions.last_seen_not_written", error=type(exc).__name__)

    async def sign_in(self, presented_key: str) -> tuple[str, SessionInfo]:
        """Exchange ``presented_key`` for a new session: (its cookie token, the session).

        Raises Unauthorized for any unusable key; nothing is written then. The
        key's oldest sessions beyond ``web_session_max_per_key`` end.
        """
        # verify() refuses a key of the wrong length before hashing it.
        auth = await self._verifier.verify(presented_key)
        key_hash = hash_key(presented_key)
        token = new_token()
        token_hash = hash_token(token)
        now = utcnow()
        stored = _StoredSession(
            key_id=auth.key_id,
            key_hash=key_hash,
            created_at=now,
            expires_at=now + self._lifetime,
        )
        async with unit_of_work(self._sessionmaker) as session:
            repository = WebSessionRepository(session)
            await repository.add(
                WebSession(
                    token_hash=token_hash,
                    tenant_id=auth.key_tenant_id,
                    key_id=auth.key_id,
                    key_hash=key_hash,
                    created_at=now,
                    expires_at=stored.expires_at,
                    last_seen_at=now,
                )
            )
            dropped = await repository.keep_newest_of_key(
                key_id=auth.key_id,
                keep=self._settings.web_session_max_per_key,
                limit=self._settings.web_session_max_per_key,
            )
        for ended in dropped:
            await self._invalidate(ended)
        self._sessions[token_hash] = stored
        return token, self._info(stored, auth, token)

    async def authenticate(self, token: str) -> SessionInfo:
        """The session of cookie token ``token``; raises Unauthorized when it or its
        key has ended."""
        token_hash = hash_token(token)
        stored = self._sessions.get(token_hash)
        if stored is None:
            stored = await self._lookups.run(token_hash, lambda: self._load(token_hash))
        if stored.expires_at.timestamp() <= time.time():
            self._sessions.pop(token_hash, None)
            raise Unauthorized("The session has expired; sign in again.")
        auth = await self._verifier.verify_hash(stored.key_hash)
        self._note_seen(token_hash)
        return self._info(stored, auth, token)

    async def sign_out(self, token: str) -> None:
        """End the session of cookie token ``token`` (nothing happens if it has ended)."""
        token_hash = hash_token(token)
        async with unit_of_work(self._sessionmaker) as session:
            await WebSessionRepository(session).delete(token_hash)
        await self._invalidate(token_hash)

    async def purge_expired(self) -> int:
        """Delete every session expired now, one bounded batch per transaction
        (the platform maintenance job); how many went."""
        now, total, batch = utcnow(), 0, self._settings.web_session_purge_batch_size
        while True:
            async with unit_of_work(self._sessionmaker) as session:
                deleted = await WebSessionRepository(session).purge_expired(now=now, limit=batch)
            total += deleted
            if deleted < batch:
                break
            await asyncio.sleep(0)  # let requests in between batches
        if total:
            log.info("web_sessions.purged", sessions=total)
        return total

    async def maintain(self) -> None:
        """The platform maintenance job: delete expired sessions."""
        await self.purge_expired()

    async def flush_last_seen(self) -> None:
        """Write the batched last-seen times in one transaction."""
        if not self._seen:
            return
        pending, self._seen = self._seen, {}
        seen_at = {
            token_hash: datetime.fromtimestamp(ts, UTC) for token_hash, ts in pending.items()
        }
        async with unit_of_work(self._sessionmaker) as session:
            await WebSessionRepository(session).record_last_seen(seen_at)

    def _info(self, stored: _StoredSession, auth: AuthContext, token: str) -> SessionInfo:
        return SessionInfo(
            tenant_id=auth.tenant_id,
            key_id=auth.key_id,
            scopes=auth.scopes,
            created_at=stored.created_at,
            expires_at=stored.expires_at,
            csrf_token=csrf_token_for(token),
            auth=auth,
        )

    async def _load(self, token_hash: str) -> _StoredSession:
        if token_hash in self._unknown:
            raise Unauthorized(_ENDED)
        generation = self._generation
        async with unit_of_work(self._sessionmaker) as session:
            row = await WebSessionRepository(session).get(token_hash)
        if row is None:
            self._unknown[token_hash] = True
            raise Unauthorized(_ENDED)
        stored = _StoredSession(
            key_id=row.key_id,
            key_hash=row.key_hash,
            created_at=row.created_at,
            expires_at=row.expires_at,
        )
        if generation == self._generation:
            self._sessions[token_hash] = stored
        return stored

    async def _invalidate(self, token_hash: str) -> None:
        self._forget(token_hash)
        # The verifier's broadcast reaches every replica's listeners (this one's too).
        await self._verifier.invalidate(token_hash)

    def _forget(self, token_hash: str | None) -> None:
        self._generation += 1
        if token_hash is None:
            self._sessions.clear()
            return
        self._sessions.pop(token_hash, None)

    def _note_seen(self, token_hash: str) -> None:
        if token_hash in self._seen or len(self._seen) < self._seen_bound:
            self._seen[token_hash] = time.time()

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval)
            try:
                await self.flush_last_seen()
            except Exception as exc:
                # A database outage is answered elsewhere; the next round catches up.
                log.warning("web_sessions.last_seen_flush_failed", error=type(exc).__name__)
