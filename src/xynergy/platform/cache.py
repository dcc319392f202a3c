"""The shared cache layer, on ``cashews``.

* In-process memory by default. With Redis, a bounded in-process L1 in front of
  Redis (L2), kept coherent by Redis client-side tracking in broadcast mode on
  our key prefix: any write or delete of a cached key, by any replica, evicts it
  from every replica's L1 within milliseconds.
* Every key is ``<prefix>cache:v<schema version>:<namespace>:<tenant>:<digest>``:
  tenant-scoped, and a schema-version bump orphans old entries at once.
* Stampede protection: concurrent misses of one key in a process share one
  computation (singleflight; a bounded map, entries removed when done).
* Tags for write-through invalidation: an entry is stored under tags; a write
  calls :meth:`PlatformCache.invalidate` with the tags it affects. Each tag has
  a version, bumped on invalidation: a value computed while its tags changed is
  returned but not stored, so a read racing a write cannot re-cache old data.
* Values are JSON, never pickles: an entry read back from Redis cannot run
  code, and a caller cannot mutate a value another request is reading.
* Hit/miss counts and computation latency per namespace on ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from cashews import Cache
from redis.asyncio import Redis

from xynergy.platform.config import Settings
from xynergy.platform.local_cache import LocalEntries
from xynergy.platform.logging import get_logger
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.shared_calls import SharedCalls

__all__ = ["PlatformCache", "Warmer"]

Warmer = Callable[["PlatformCache"], Awaitable[None]]
log = get_logger(__name__)

_MISSING = object()
_INVALIDATE_CHANNEL = "__redis__:invalidate"


# Long enough to outlive any computation; the key is bounded by the tag set.
_TAG_VERSION_TTL_SECONDS = 86_400


def _version_key(tag: str) -> str:
    return tag + ":version"


def _checked_ttl(namespace: str, seconds: float) -> float:
    """``seconds`` if it is a usable TTL. cashews keeps an entry stored with expire 0
    for ever, so a TTL that is not a positive number of seconds is refused."""
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"cache namespace {namespace!r}: TTL must be positive, got {seconds!r}")
    return float(seconds)


def _digest(parts: Sequence[Any]) -> str:
    canonical = json.dumps(list(parts), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class PlatformCache:
    """Namespaced, tenant-scoped, versioned JSON cache with singleflight and tags."""

    def __init__(self, settings: Settings, metrics: PlatformMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._prefix = f"{settings.redis_key_prefix}cache:v{settings.cache_schema_version}:"
        self._shared = Cache(name="xynergy-shared")
        # In-process copies, in front of the shared store in both modes; kept
        # coherent by Redis tracking messages, or cleared on every invalidation
        # when the shared store is in-process too.
        self._local = LocalEntries(settings.cache_memory_max_entries, on_evict=self._evicted)
        # L1 evictions per namespace since start (namespaces come from code).
        self._evictions: dict[str, int] = {}  # guard: allow XG005 one per namespace in code
        self._inflight: SharedCalls[str, str] = SharedCalls(settings.cache_max_inflight)
        # Both filled by services while they are built (names and hooks come from code).
        self._warmers: list[Warmer] = []  # guard: allow XG005 registered by code at start-up
        self._service_ttls: dict[str, float] = {}  # guard: allow XG005 one per namespace in code
        # Bumped on every invalidation message: a value read from Redis is put in
        # L1 only if no invalidation arrived while it was being read.
        self._generation = 0
        self._tracking: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Connect the backends and, with Redis, start client-side tracking."""
        settings = self._settings
        # No expiry sweep (cashews' default walks every entry once a second, ~2 % of a
        # proxied AI request at 10,000 entries): an expired entry is dropped when
        # read, and the LRU bound holds the store's size either way.
        memory = f"mem://?size={settings.cache_memory_max_entries}&check_interval=0"
        if settings.redis_url is None:
            self._shared.setup(memory, pickle_type="null")
            await self._shared.init()
            return
        self._shared.setup(
            settings.redis_url,
            # Entries are JSON text already; cashews' JSON pickler only quotes it,
            # and unlike its default it never unpickles what Redis hands back.
            pickle_type="json",
            socket_timeout=settings.redis_socket_timeout_seconds,
            socket_connect_timeout=settings.redis_socket_timeout_seconds,
            max_connections=settings.redis_max_connections,
            # A Redis outage degrades to computing (and a 503 from /readyz), not
            # to failing requests.
            suppress=True,
        )
        await self._shared.init()
        ready = asyncio.Event()
        self._tracking = asyncio.create_task(self._track_forever(ready), name="cache-tracking")
        await ready.wait()

    async def close(self) -> None:
        """Stop tracking and close the backends."""
        if self._tracking is not None:
            self._tracking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tracking
        await self._shared.close()
        self._local.clear()

    def add_warmer(self, warmer: Warmer) -> None:
        """Register a hook that fills the cache at start-up."""
        self._warmers.append(warmer)

    async def warm(self) -> None:
        """Run every warming hook (called once the app has started)."""
        for warmer in self._warmers:
            await warmer(self)

    def key(self, namespace: str, tenant_id: str, parts: Sequence[Any]) -> str:
        """The full key of an entry: versioned, namespaced and tenant-scoped."""
        return f"{self._prefix}{namespace}:{tenant_id}:{_digest(parts)}"

    def tag(self, namespace: str, tenant_id: str, name: str = "all") -> str:
        """A tag naming a group of one tenant's entries (e.g. everything it lists)."""
        return f"{self._prefix}{namespace}:{tenant_id}:tag:{name}"

    def set_default_ttl(self, namespace: str, seconds: float) -> None:
        """A service's own default TTL for ``namespace`` (settings still win).

        Raises:
            ValueError: ``seconds`` is not positive (an entry must expire).
        """
        self._service_ttls[namespace] = _checked_ttl(namespace, seconds)

    def declared_ttl(self, namespace: str) -> float | None:
        """The TTL settings or the owning service gave ``namespace``; None if neither did."""
        configured = self._settings.cache_ttls.get(namespace)
        return configured if configured is not None else self._service_ttls.get(namespace)

    def ttl(self, namespace: str) -> float:
        """The namespace's TTL: settings, then the service's default, then the global one."""
        declared = self.declared_ttl(namespace)
        return declared if declared is not None else self._settings.cache_default_ttl_seconds

    def _expiry(self, namespace: str, ttl: float | None) -> float:
        """The TTL an entry is stored (or an L1 copy kept) with; a given one is checked."""
        return self.ttl(namespace) if ttl is None else _checked_ttl(namespace, ttl)

    async def get_or_compute(
        self,
        namespace: str,
        tenant_id: str,
        parts: Sequence[Any],
        compute: Callable[[], Awaitable[Any]],
        *,
        tags: Sequence[str] = (),
        ttl: float | None = None,
    ) -> Any:
        """The cached value, or ``compute()``'s (stored under ``tags``) on a miss.

        Concurrent misses of one key in this process share one ``compute()``.
        ``ttl`` overrides the namespace TTL from settings (a service's own default).
        """
        text = await self.get_or_compute_json(
            namespace, tenant_id, parts, compute, tags=tags, ttl=ttl
        )
        return json.loads(text)

    async def get_or_compute_json(
        self,
        namespace: str,
        tenant_id: str,
        parts: Sequence[Any],
        compute: Callable[[], Awaitable[Any]],
        *,
        tags: Sequence[str] = (),
        ttl: float | None = None,
    ) -> str:
        """Like :meth:`get_or_compute`, but the value's JSON text, undecoded.

        For endpoints that answer with the cached value as it is: a hit costs no
        decode, no model validation and no re-encode.
        """
        key = self.key(namespace, tenant_id, parts)
        expire = self._expiry(namespace, ttl)
        requests = self._metrics.cache_requests
        cached = await self._lookup(key, expire)
        if cached is not None:
            requests.labels(namespace=namespace, result="hit").inc()
            self._metrics.rollups.cache(namespace, hit=True)
            return cached
        requests.labels(namespace=namespace, result="miss").inc()
        self._metrics.rollups.cache(namespace, hit=False)

        async def compute_and_store() -> str:
            versions = await self._tag_versions(tags)
            with self._metrics.cache_compute_seconds.labels(namespace=namespace).time():
                value = await compute()
            text = json.dumps(value, separators=(",", ":"), default=str)
            # A write that invalidated these tags while we computed may not be in
            # our value: serve it to this request, but do not store it.
            if await self._tag_versions(tags) == versions:
                await self._shared.set(key, text, expire=expire, tags=tags)
            return text

        return await self._inflight.run(key, compute_and_store)

    async def lookup_json(
        self,
        namespace: str,
        tenant_id: str,
        parts: Sequence[Any],
        *,
        ttl: float | None = None,
        count_miss: bool = True,
        key: str | None = None,
    ) -> str | None:
        """The cached JSON text under these parts, or None (counted as hit or miss).

        For callers that must decide what to do on a miss themselves (the AI
        gateway shares in-flight upstream calls, streams included); others use
        :meth:`get_or_compute_json`. ``count_miss=False`` is for a fast path that
        falls back to a full path which looks again (and counts the miss there).
        ``key``: :meth:`key` of these parts, when the caller already has it.
        """
        key = self.key(namespace, tenant_id, parts) if key is None else key
        cached = await self._lookup(key, self._expiry(namespace, ttl))
        if cached is not None:
            self._metrics.cache_requests.labels(namespace=namespace, result="hit").inc()
            self._metrics.rollups.cache(namespace, hit=True)
        elif count_miss:
            self._metrics.cache_requests.labels(namespace=namespace, result="miss").inc()
            self._metrics.rollups.cache(namespace, hit=False)
        return cached

    async def store_json(
        self,
        namespace: str,
        tenant_id: str,
        parts: Sequence[Any],
        text: str,
        *,
        ttl: float | None = None,
        tags: Sequence[str] = (),
        key: str | None = None,
    ) -> None:
        """Store JSON text under these parts (a pair to :meth:`lookup_json`); ``key``
        as there."""
        key = self.key(namespace, tenant_id, parts) if key is None else key
        expire = self._expiry(namespace, ttl)
        generation = self._generation
        await self._shared.set(key, text, expire=expire, tags=tags)
        # The in-process copy follows the write: a caller that replaces an entry
        # (the assistant's hot context) must read back what it stored, not the copy
        # an earlier lookup kept. Kept only if no invalidation arrived meanwhile
        # (another replica may have written after us); else dropped, so the next
        # read goes to the shared store.
        if generation == self._generation:
            self._local.put(key, text, expire)
        else:
            self._local.drop(key)

    async def _lookup(self, key: str, expire: float) -> str | None:
        local = self._local.get(key)
        if local is not None:
            return local
        generation = self._generation
        shared = await self._shared.get(key, default=_MISSING)
        if shared is _MISSING or shared is None:
            return None
        text = shared.decode() if isinstance(shared, bytes) else cast(str, shared)
        if generation == self._generation:
            # At most the entry's own TTL (the shared copy may expire sooner; then
            # this copy outlives it by less than one TTL, never indefinitely).
            self._local.put(key, text, expire)
        return text

    async def invalidate(self, *tags: str) -> None:
        """Delete every entry stored under any of ``tags``, on every replica."""
        if self._tracking is None:
            # The shared store is in-process: no tracking message will come, and
            # L1 copies carry no tags, so drop them all (writes are the rare case).
            self._forget_local()
        else:
            # Our own L1 is cleared by the tracking message too; this makes the
            # writer's next read fresh without waiting for it.
            self._generation += 1
        for tag in tags:
            await self._shared.incr(_version_key(tag), expire=_TAG_VERSION_TTL_SECONDS)
        await self._shared.delete_tags(*tags)

    async def _tag_versions(self, tags: Sequence[str]) -> tuple[Any, ...]:
        if not tags:
            return ()
        return tuple(await self._shared.get_many(*(_version_key(tag) for tag in tags)))

    @property
    def local_entries(self) -> LocalEntries:
        """The in-process copies (L1): their size and bound, for resource reports."""
        return self._local

    def namespace_of(self, key: str) -> str | None:
        """The namespace of a full key of this cache; None for another key."""
        if not key.startswith(self._prefix):
            return None
        namespace, _sep, _rest = key[len(self._prefix) :].partition(":")
        return namespace

    @property
    def evictions(self) -> dict[str, int]:
        """In-process (L1) entries dropped for room since start, per namespace."""
        return dict(self._evictions)

    def _evicted(self, key: str) -> None:
        namespace = self.namespace_of(key)
        if namespace is not None:
            self._evictions[namespace] = self._evictions.get(namespace, 0) + 1
            self._metrics.rollups.cache_evictions(namespace)

    @property
    def inflight(self) -> int:
        """Computations running now (for tests and metrics)."""
        return len(self._inflight)

    async def _track_forever(self, ready: asyncio.Event) -> None:
        assert self._settings.redis_url is not None  # noqa: S101 - only started with Redis
        while True:
            try:
                await self._track(ready)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # No traceback: this repeats while Redis is down.
                log.warning("cache.tracking_reconnecting", error=repr(exc))
            ready.set()
            await asyncio.sleep(self._settings.redis_reconnect_backoff_seconds)

    async def _track(self, ready: asyncio.Event) -> None:
        # RESP2 and a self-redirect: one dedicated connection both enables
        # broadcast tracking and receives the invalidations, so tracking lives
        # exactly as long as the subscription does.
        client = Redis.from_url(
            cast(str, self._settings.redis_url),
            protocol=2,
            socket_connect_timeout=self._settings.redis_socket_timeout_seconds,
        )
        try:
            async with client.pubsub() as pubsub:
                await pubsub.execute_command("CLIENT", "ID")
                client_id = await pubsub.parse_response()
                await pubsub.execute_command(
                    "CLIENT", "TRACKING", "on", "REDIRECT", str(client_id),
                    "BCAST", "PREFIX", self._prefix,
                )  # fmt: skip
                await pubsub.parse_response()
                await pubsub.subscribe(_INVALIDATE_CHANNEL)
                # Anything cached before this point may have missed an invalidation.
                self._forget_local()
                ready.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._evict(message.get("data"))
        finally:
            # Until tracking is back, no eviction reaches this process, not even
            # for its own writes: in-process copies could stay stale for their
            # whole TTL. Reads meanwhile miss (Redis errors are suppressed) and
            # compute, which stores nothing locally.
            self._forget_local()
            await client.aclose()

    async def _evict(self, keys: Any) -> None:
        self._generation += 1
        if not keys:  # None means "flush everything" (e.g. FLUSHDB)
            self._forget_local()
            return
        for raw in keys:
            self._local.drop(raw.decode() if isinstance(raw, bytes) else str(raw))

    def _forget_local(self) -> None:
        self._generation += 1
        self._local.clear()
