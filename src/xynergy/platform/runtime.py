"""The platform's long-lived resources, opened once and closed once.

``Platform.open()`` creates the database engine, the Redis client, outbound HTTP
sessions, the key verifier and its background tasks; ``close()`` releases all of
them in reverse. In all-in-one mode every mounted service shares one Platform;
a standalone service opens its own. Nothing connects at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cachetools import TTLCache
from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from xynergy.platform.auth.internal_secret_reload import InternalSecretPart
from xynergy.platform.auth.internal_tokens import InternalTokens
from xynergy.platform.auth.verifier import KeyVerifier
from xynergy.platform.breaker import Breakers
from xynergy.platform.cache import PlatformCache
from xynergy.platform.config import Settings
from xynergy.platform.db.engine import create_engine_from_settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.http import OutboundHTTP
from xynergy.platform.idempotency_purge import IdempotencyPurger
from xynergy.platform.idempotency_store import OutcomeRetries
from xynergy.platform.logging import flush_stdout_forever, get_logger
from xynergy.platform.metrics_port import MetricsPort
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.outbox.dispatcher import OutboxDispatcher
from xynergy.platform.process_monitor import ProcessMonitor
from xynergy.platform.rate_limit import RateLimiter
from xynergy.platform.readiness import Readiness, ReadinessProbe
from xynergy.platform.rollups import retention as rollup_retention
from xynergy.platform.rollups.recorder import RollupRecorder
from xynergy.platform.secrets import SecretsRegistry, SecretsWatcher
from xynergy.platform.services import ServiceClient
from xynergy.platform.tenancy.repository import TenantRepository
from xynergy.platform.web_sessions.service import MAINTENANCE_JOB as WEB_SESSIONS_JOB
from xynergy.platform.web_sessions.service import WebSessions

__all__ = ["MaintenanceJob", "Platform"]

log = get_logger(__name__)

# Periodic upkeep a service registers (see Platform.add_maintenance).
MaintenanceJob = Callable[[], Awaitable[None]]


def create_redis(settings: Settings) -> Redis | None:
    """The shared Redis client (one pool), or None when Redis is not configured.

    A blocking pool: past ``redis_max_connections`` a command waits (up to the
    socket timeout) for a free connection instead of failing at once, so a burst
    of requests queues rather than turning into limiter and cache errors.
    """
    if not settings.redis_url:
        return None
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_socket_timeout_seconds,
        socket_timeout=settings.redis_socket_timeout_seconds,
        socket_connect_timeout=settings.redis_socket_timeout_seconds,
        health_check_interval=settings.redis_health_check_interval_seconds,
    )
    return Redis.from_pool(pool)


@dataclass
class Platform:
    """Everything a request may need that outlives a request."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis | None
    http: OutboundHTTP
    metrics: PlatformMetrics
    rate_limiter: RateLimiter
    key_verifier: KeyVerifier
    internal_tokens: InternalTokens
    breakers: Breakers
    cache: PlatformCache
    services: ServiceClient
    secrets: SecretsRegistry
    closed: bool = False
    # Browser sessions (platform/web_sessions): they check keys through key_verifier.
    web_sessions: WebSessions = field(init=False)
    idempotency_retries: OutcomeRetries = field(init=False)
    _known_tenants: TTLCache[str, bool] = field(init=False)
    _log_flusher: asyncio.Task[None] | None = field(init=False, default=None)
    _readiness: ReadinessProbe = field(init=False)
    _metrics_port: MetricsPort | None = field(init=False, default=None)
    _secrets_watcher: SecretsWatcher | None = field(init=False, default=None)
    _idempotency_purger: IdempotencyPurger | None = field(init=False, default=None)
    # The webhook outbox's one dispatcher; services register resolvers on it.
    outbox: OutboxDispatcher = field(init=False)
    # This process's resource gauges, lag sampler and memory-pressure check
    # (started by open(), in every app, not only the dashboard's).
    process: ProcessMonitor = field(init=False)
    # Per-minute rollups (None when XYNERGY_ROLLUPS_ENABLED is false).
    rollups: RollupRecorder | None = field(init=False, default=None)
    # Run once every service is started and reachable in process (bounded: one per
    # service that asks, at start-up).
    _when_ready: list[Callable[[], Awaitable[None]]] = field(init=False, default_factory=list)
    # Periodic upkeep by name (one per service that registers, at start-up).
    _maintenance: dict[str, MaintenanceJob] = field(init=False, default_factory=dict)
    # Jobs the runtime runs every minute (e.g. alert evaluation), by name.
    _every_minute: dict[str, MaintenanceJob] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.web_sessions = WebSessions(self.settings, self.sessionmaker, self.key_verifier)
        self.idempotency_retries = OutcomeRetries()
        self.outbox = OutboxDispatcher(
            settings=self.settings,
            sessionmaker=self.sessionmaker,
            http=self.http,
            breakers=self.breakers,
            metrics=self.metrics,
        )
        self.process = ProcessMonitor(
            self.settings, self.metrics, cache=self.cache, breakers=self.breakers
        )
        self._known_tenants = TTLCache(
            self.settings.key_cache_max_entries, self.settings.key_cache_ttl_seconds
        )
        self._readiness = ReadinessProbe(
            self._check_backends,
            max_age=self.settings.readiness_cache_seconds,
            on_check=self.metrics.readiness_checks.inc,
        )

    @classmethod
    async def open(cls, settings: Settings) -> Platform:
        """Open every pool and client and start background tasks."""
        engine = create_engine_from_settings(settings)
        sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        redis = create_redis(settings)
        metrics = PlatformMetrics()
        http = OutboundHTTP(settings)
        tokens = InternalTokens.from_settings(settings)
        breakers = Breakers(settings, metrics, redis)
        platform = cls(
            settings=settings,
            engine=engine,
            sessionmaker=sessionmaker,
            redis=redis,
            http=http,
            metrics=metrics,
            rate_limiter=RateLimiter(settings, redis, metrics),
            key_verifier=KeyVerifier(settings, sessionmaker, redis),
            internal_tokens=tokens,
            breakers=breakers,
            cache=PlatformCache(settings, metrics),
            services=ServiceClient(settings, http, tokens, breakers),
            secrets=SecretsRegistry(metrics=metrics, max_bytes=settings.secret_file_max_bytes),
        )
        try:
            # The internal token secrets rotate live; start-up fails on a refused set.
            platform.secrets.register(InternalSecretPart(settings=settings, tokens=tokens))
            await platform.cache.open()
            await platform.key_verifier.start()
            await platform.web_sessions.start()
            platform.add_maintenance(WEB_SESSIONS_JOB, platform.web_sessions.maintain)
            platform._idempotency_purger = IdempotencyPurger(sessionmaker, settings)
            platform._idempotency_purger.start()
            await platform.outbox.start()  # idle (no query) until a resolver is registered
            if settings.rollups_enabled:
                platform.rollups = RollupRecorder(settings, sessionmaker, metrics)
                metrics.rollups = platform.rollups
                platform.rollups.start()
                platform.add_maintenance(
                    rollup_retention.JOB_NAME,
                    rollup_retention.retention_job(settings, sessionmaker),
                )
            platform.process.start()
            platform._log_flusher = asyncio.create_task(
                flush_stdout_forever(settings.log_flush_interval_seconds), name="log-flusher"
            )
            if settings.metrics_port is not None:
                platform._metrics_port = await MetricsPort.start(settings, metrics)
            platform._secrets_watcher = SecretsWatcher(
                platform.secrets, poll_interval_seconds=settings.secrets_poll_interval_seconds
            )
            platform._secrets_watcher.start(sighup=settings.secrets_reload_on_sighup)
        except BaseException:
            await platform.close()
            raise
        log.info("platform.opened", database=engine.url.get_backend_name(), redis=redis is not None)
        return platform

    async def close(self) -> None:
        """Stop background work and close every pool and client, in reverse order."""
        if self.closed:
            return
        self.closed = True
        try:
            if self._secrets_watcher is not None:
                await self._secrets_watcher.stop()
            if self._metrics_port is not None:
                await self._metrics_port.stop()
            await self._readiness.close()
            if self._idempotency_purger is not None:
                await self._idempotency_purger.stop()
            await self.idempotency_retries.stop()  # before the engine they write to closes
            await self.outbox.stop()  # before outbound HTTP and the engine close
            if self.rollups is not None:
                # Last of the background work: this minute's counts reach the database.
                await self.rollups.stop()
            await self.process.stop()  # the caches get their bounds back
            if self._log_flusher is not None:
                self._log_flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._log_flusher
            await self.web_sessions.stop()
            await self.key_verifier.stop()
        finally:
            await self.cache.close()
            await self.services.close()
            await self.http.close()
            if self.redis is not None:
                await self.redis.aclose()
            await self.engine.dispose()
        log.info("platform.closed")

    async def settle_after_startup(self) -> None:
        """Warm the cache, then freeze what start-up allocated so full GC passes
        skip it (process-wide)."""
        for hook in self._when_ready:
            await hook()
        self._when_ready.clear()
        await self.cache.warm()
        if self.settings.gc_freeze_after_startup:
            gc.collect()
            gc.freeze()

    def when_ready(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` once every service of this process has started and can be
        called (in all-in-one mode, after all are mounted): e.g. work that calls
        other services, such as recovering workflows."""
        self._when_ready.append(hook)

    def add_maintenance(self, name: str, job: MaintenanceJob) -> None:
        """Register periodic upkeep (e.g. deleting expired rows) under ``name``.

        The System Runtime runs every registered job on its maintenance schedule,
        once per tick across replicas (``XYNERGY_RUNTIME_MAINTENANCE_EVERY_HOURS``).
        A job must be safe to repeat: a tick interrupted by a crash runs it again.
        """
        self._maintenance[name] = job  # guard: allow XG005 one per service, named in code

    def add_every_minute(self, name: str, job: MaintenanceJob) -> None:
        """Register ``job`` to run every minute, once per tick across replicas (the
        System Runtime's minutely schedule); it must be safe to repeat, like upkeep."""
        self._every_minute[name] = job  # guard: allow XG005 one per service, named in code

    @property
    def every_minute_jobs(self) -> Mapping[str, MaintenanceJob]:
        """The registered minutely jobs, by name."""
        return MappingProxyType(self._every_minute)

    @property
    def maintenance_jobs(self) -> Mapping[str, MaintenanceJob]:
        """The registered upkeep jobs, by name."""
        return MappingProxyType(self._maintenance)

    async def tenant_exists(self, tenant_id: str) -> bool:
        """Whether ``tenant_id`` exists (cached briefly; tenants are never renamed)."""
        if tenant_id in self._known_tenants:
            return True
        async with unit_of_work(self.sessionmaker) as session:
            found = await TenantRepository(session).get(tenant_id) is not None
        if found:
            self._known_tenants[tenant_id] = True
        return found

    @property
    def metrics_listener(self) -> MetricsPort | None:
        """The loopback ``metrics_port`` listener, when one is configured."""
        return self._metrics_port

    async def readiness(self) -> Readiness:
        """Each backend's state, from a check at most ``readiness_cache_seconds`` old."""
        return await self._readiness.current()

    async def _check_backends(self) -> dict[str, str]:
        timeout = self.settings.readiness_check_timeout_seconds
        checks: dict[str, str] = {}
        try:
            async with asyncio.timeout(timeout), self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        if self.redis is not None:
            try:
                async with asyncio.timeout(timeout):
                    await self.redis.ping()
                checks["redis"] = "ok"
            except Exception as exc:
                checks["redis"] = f"error: {type(exc).__name__}"
        return checks
