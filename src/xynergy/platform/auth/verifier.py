"""Turning a presented API key into an :class:`AuthContext`, fast and revocably.

Verified keys are cached in process for ``key_cache_ttl_seconds`` (bounded LRU+TTL)
so a request costs no database read. Every change that can make a key unusable
(revocation, rotation) reaches every replica two ways:

* the revocation epoch, a one-row counter bumped in the change's own transaction
  and read by each replica every ``key_revocation_poll_seconds``: when it moves,
  the verified cache is dropped. This needs nothing but the database, so the CLI
  and the embedded default (no Redis) revoke within the poll interval too;
* with Redis, a pub/sub broadcast of the key's hash, which is faster still.

``last_used_at`` is batched in memory and flushed periodically: no write per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cachetools import TTLCache
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.keys import KEY_LENGTH, hash_key, is_well_formed
from xynergy.platform.auth.scopes import ADMIN_SCOPE, OPERATOR_TENANT_NAME
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.exceptions import Unauthorized
from xynergy.platform.logging import get_logger
from xynergy.platform.shared_calls import SharedCalls
from xynergy.platform.tenancy.models import ApiKey
from xynergy.platform.tenancy.repository import (
    KeyRepository,
    RevocationEpochRepository,
    TenantRepository,
)

__all__ = ["InvalidationListener", "KeyVerifier", "invalidation_channel", "publish_invalidation"]

log = get_logger(__name__)

InvalidationListener = Callable[[str | None], None]


def invalidation_channel(settings: Settings) -> str:
    """The Redis pub/sub channel on which key invalidations are broadcast."""
    return settings.redis_key_prefix + "keys:invalidated"


async def publish_invalidation(redis: Redis, settings: Settings, key_hash: str) -> None:
    """Tell every replica to drop ``key_hash`` from its cache (CLI and API alike)."""
    await redis.publish(invalidation_channel(settings), key_hash)


@dataclass(frozen=True, slots=True)
class _VerifiedKey:
    context: AuthContext
    # Epoch seconds (inf when unlimited): compared on every request, so floats.
    usable_until: float

    def usable_at(self, now: float) -> bool:
        return now < self.usable_until


def _epoch(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else math.inf


class KeyVerifier:
    """Verifies keys against the database through a bounded, revocable cache."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: Redis | None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._redis = redis
        self._settings = settings
        self._channel = invalidation_channel(settings)
        self._flush_interval = settings.key_last_used_flush_seconds
        self._reconnect_backoff = settings.redis_reconnect_backoff_seconds
        self._last_used_bound = settings.key_cache_max_entries
        self._verified: TTLCache[str, _VerifiedKey] = TTLCache(
            maxsize=settings.key_cache_max_entries, ttl=settings.key_cache_ttl_seconds
        )
        # Hashes known not to exist, so a flood of well-formed fake keys costs one
        # read each per TTL rather than one per request.
        self._unknown: TTLCache[str, bool] = TTLCache(
            maxsize=settings.key_cache_max_entries, ttl=settings.key_cache_ttl_seconds
        )
        self._last_used: dict[str, float] = {}
        # Concurrent first uses of one key share one database read: a burst of a
        # new key's requests would otherwise take one pooled connection each.
        self._lookups: SharedCalls[str, _VerifiedKey] = SharedCalls(settings.key_cache_max_entries)
        self._tasks: list[asyncio.Task[None]] = []  # guard: allow XG005 start() adds two, once
        self._poll_interval = settings.key_revocation_poll_seconds
        self._epoch = 0
        # Failed epoch reads since the last good one (and when the first failed):
        # the poller logs an outage once when it starts and once when it ends.
        self._epoch_failures = 0
        self._epoch_failing_since = 0.0
        # Bumped whenever the verified cache is dropped: a lookup that started
        # before a drop may have read the pre-revocation row, so it is not cached.
        self._generation = 0
        # Keys by id found usable (until when, and at which generation): work done on
        # a key's behalf later (workflow steps) checks it as strictly as a request.
        self._usable_ids: TTLCache[str, tuple[int, float]] = TTLCache(
            maxsize=settings.key_cache_max_entries, ttl=settings.key_cache_ttl_seconds
        )
        # Told every hash broadcast by another replica (None: forget everything),
        # for caches of credentials derived from keys (platform/web_sessions).
        self._listeners: list[InvalidationListener] = []  # guard: allow XG005 few, at start

    async def start(self) -> None:
        """Start the last-used flusher, the revocation-epoch poller and, with Redis,
        the invalidation listener."""
        try:
            self._epoch = await self._read_epoch()
        except Exception as exc:
            # Not fatal: the poller keeps reading, and a first read that differs
            # from 0 costs no more than one drop of the verified cache.
            self._note_epoch_unreadable(exc)
        self._tasks.append(asyncio.create_task(self._flush_forever(), name="keys-last-used"))
        self._tasks.append(asyncio.create_task(self._poll_forever(), name="keys-revocation-epoch"))
        if self._redis is not None:
            ready = asyncio.Event()
            self._tasks.append(
                asyncio.create_task(self._listen_forever(ready), name="keys-invalidation")
            )
            await ready.wait()

    async def stop(self) -> None:
        """Stop background tasks and write out pending last-used times."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.flush_last_used()

    async def verify(self, presented: str) -> AuthContext:
        """The context for ``presented``; raises Unauthorized for any unusable key."""
        if len(presented) != KEY_LENGTH:
            # Refused before hashing: an oversized header costs nothing here.
            raise Unauthorized("The API key is malformed.")
        key_hash = hash_key(presented)
        verified = self._verified.get(key_hash)
        # Only a key not yet verified pays for the shape and checksum check.
        if verified is None and not is_well_formed(presented):
            raise Unauthorized("The API key is malformed.")
        return await self._check(key_hash, verified)

    async def verify_hash(self, key_hash: str) -> AuthContext:
        """The context of the key stored as ``key_hash`` (what ``api_keys`` stores),
        checked and cached exactly as :meth:`verify` checks a presented key.

        For credentials that stand for a key without holding it (browser sessions
        keep the hash only): a revocation or expiry ends them with the key.
        """
        return await self._check(key_hash, self._verified.get(key_hash))

    async def _check(self, key_hash: str, verified: _VerifiedKey | None) -> AuthContext:
        now = time.time()
        if verified is None:
            verified = await self._lookups.run(key_hash, lambda: self._load(key_hash))
        if not verified.usable_at(now):
            self._verified.pop(key_hash, None)
            raise Unauthorized("The API key has expired.")
        self._note_use(verified.context.key_id, now)
        return verified.context

    async def unusable_reason(self, key_id: str) -> str | None:
        """Why key ``key_id`` cannot act now ("revoked", "expired", "rotated",
        "deleted"), or None. Cached like verified keys: a revocation made anywhere
        is seen within ``key_revocation_poll_seconds`` (at once on this replica)."""
        now = time.time()
        cached = self._usable_ids.get(key_id)
        if cached is not None and cached[0] == self._generation and now < cached[1]:
            return None
        generation = self._generation
        async with unit_of_work(self._sessionmaker) as session:
            key = await session.get(ApiKey, key_id)
            reason = "deleted" if key is None else key.unusable_reason(utcnow())
        if key is not None and reason is None and generation == self._generation:
            usable_until = min(_epoch(key.expires_at), _epoch(key.grace_until))
            self._usable_ids[key_id] = (generation, usable_until)
        return reason

    async def _load(self, key_hash: str) -> _VerifiedKey:
        if key_hash in self._unknown:
            raise Unauthorized("The API key is not valid.")
        generation = self._generation
        async with unit_of_work(self._sessionmaker) as session:
            key = await KeyRepository(session).by_hash(key_hash)
            if key is None:
                self._unknown[key_hash] = True
                raise Unauthorized("The API key is not valid.")
            reason = key.unusable_reason(utcnow())
            if reason is not None:
                # Not cached: a revoked or expired key never becomes valid again, and
                # not caching keeps the verified cache for keys that are in use.
                raise Unauthorized(f"The API key is {reason}.")
            scopes = await self._effective_scopes(session, key)
        verified = _VerifiedKey(
            context=AuthContext(
                tenant_id=key.tenant_id,
                key_id=key.id,
                key_tenant_id=key.tenant_id,
                scopes=scopes,
            ),
            usable_until=min(_epoch(key.expires_at), _epoch(key.grace_until)),
        )
        if generation == self._generation:
            self._verified[key_hash] = verified
        return verified

    async def _effective_scopes(self, session: AsyncSession, key: ApiKey) -> frozenset[str]:
        scopes = frozenset(key.scopes)
        if ADMIN_SCOPE not in scopes:
            return scopes
        # Defence in depth: creation refuses admin outside the operator tenant, but
        # a row written before that rule (or by hand) must not act for every tenant.
        tenant = await TenantRepository(session).get(key.tenant_id)
        if tenant is not None and tenant.name == OPERATOR_TENANT_NAME:
            return scopes
        log.warning("keys.admin_scope_ignored", key_id=key.id, tenant_id=key.tenant_id)
        return scopes - {ADMIN_SCOPE}

    async def invalidate(self, key_hash: str) -> None:
        """Drop ``key_hash`` here and, with Redis, on every replica."""
        self._drop(key_hash)
        if self._redis is None:
            return
        try:
            await publish_invalidation(self._redis, self._settings, key_hash)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            # The change is committed and the revocation epoch moved with it:
            # other replicas drop the key within key_revocation_poll_seconds
            # anyway. Failing the request would not undo the revocation.
            log.warning("keys.invalidation_not_broadcast", error=repr(exc))

    def add_invalidation_listener(self, listener: InvalidationListener) -> None:
        """Call ``listener(hash)`` for every hash another replica broadcasts through
        :meth:`invalidate`, and ``listener(None)`` when broadcasts may have been
        missed (a Redis resubscription)."""
        self._listeners.append(listener)

    def _notify(self, key_hash: str | None) -> None:
        for listener in self._listeners:
            listener(key_hash)

    def _drop(self, key_hash: str) -> None:
        self._generation += 1
        self._verified.pop(key_hash, None)
        self._unknown.pop(key_hash, None)

    def _drop_all(self) -> None:
        self._generation += 1
        self._verified.clear()

    async def _read_epoch(self) -> int:
        async with unit_of_work(self._sessionmaker) as session:
            return await RevocationEpochRepository(session).current()

    async def check_revocation_epoch(self) -> bool:
        """Drop every verified key if the revocation epoch moved; True if it did."""
        epoch = await self._read_epoch()
        if epoch == self._epoch:
            return False
        self._epoch = epoch
        self._drop_all()
        return True

    def _note_use(self, key_id: str, now: float) -> None:
        if key_id in self._last_used or len(self._last_used) < self._last_used_bound:
            self._last_used[key_id] = now

    async def flush_last_used(self) -> None:
        """Write the batched last-used times in one transaction."""
        if not self._last_used:
            return
        pending, self._last_used = self._last_used, {}
        used_at = {key_id: datetime.fromtimestamp(ts, UTC) for key_id, ts in pending.items()}
        try:
            async with unit_of_work(self._sessionmaker) as session:
                await KeyRepository(session).record_last_used(used_at)
        except BaseException:
            # Kept for the next flush (the database busy or away), not lost: uses
            # noted meanwhile are newer and win; the bound still holds.
            for key_id, used in pending.items():
                self._note_use(key_id, max(used, self._last_used.get(key_id, used)))
            raise

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval)
            try:
                await self.flush_last_used()
            except Exception:
                log.exception("keys.last_used_flush_failed")

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                await self.check_revocation_epoch()
            except Exception as exc:
                # While the database is down no key can be loaded either; cached
                # ones keep working until they expire.
                self._note_epoch_unreadable(exc)
            else:
                self._note_epoch_readable()

    def _note_epoch_unreadable(self, exc: Exception) -> None:
        # Once per outage, without a traceback: the poller fails every interval
        # on every replica for as long as the database is down.
        if self._epoch_failures == 0:
            self._epoch_failing_since = time.monotonic()
            log.warning("keys.revocation_epoch_unreadable", error=repr(exc))
        self._epoch_failures += 1

    def _note_epoch_readable(self) -> None:
        if self._epoch_failures == 0:
            return
        log.info(
            "keys.revocation_epoch_readable_again",
            failed_reads=self._epoch_failures,
            outage_seconds=round(time.monotonic() - self._epoch_failing_since, 1),
        )
        self._epoch_failures = 0

    async def _listen_forever(self, ready: asyncio.Event) -> None:
        assert self._redis is not None  # noqa: S101 - only started with Redis
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    # Anything cached before a (re)subscription may have missed a
                    # broadcast; forget it rather than serve a revoked key.
                    self._drop_all()
                    self._notify(None)
                    ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            data = message["data"]
                            key_hash = data.decode() if isinstance(data, bytes) else str(data)
                            self._drop(key_hash)
                            self._notify(key_hash)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # No traceback: this repeats while Redis is down.
                log.warning("keys.invalidation_listener_reconnecting", error=repr(exc))
                ready.set()
                await asyncio.sleep(self._reconnect_backoff)
