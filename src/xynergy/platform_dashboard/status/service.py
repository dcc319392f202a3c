"""The status checks: every service's /readyz, the database, Redis, the queues, the breakers.

Every check runs at once, each under its own timeout, so one hung service shows
as down with its error instead of stalling the answer; the whole check takes
about the slowest single timeout. Services are reached through the platform's
ServiceClient (in process in all-in-one mode, over the network for a slug
named in ``XYNERGY_SERVICE_URLS``), with the caller's identity narrowed to the
scopes each call needs. The queues and the breakers are read from the /metrics
of the service that owns them, so the dashboard never imports another service.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import text

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.exceptions import XynergyError
from xynergy.platform.runtime import Platform
from xynergy.platform_dashboard.config import DashboardSettings
from xynergy.platform_dashboard.status.exposition import samples_of
from xynergy.platform_dashboard.status.schemas import (
    BackendStatus,
    BreakersStatus,
    BreakerState,
    QueueDepth,
    QueuesStatus,
    ServiceStatus,
)

__all__ = ["StatusChecks", "StatusReport"]

ResultT = TypeVar("ResultT")

_METRICS_SCOPES = frozenset({"metrics:read"})
_READY = 200
_RUNS = "xynergy_runtime_runs"
_OLDEST_QUEUED = "xynergy_runtime_oldest_queued_run_age_seconds"
_BREAKER_STATE = "xynergy_circuit_breaker_state"
# The gauge's values (platform/breaker.py).
_BREAKER_STATES = {0.0: "closed", 1.0: "opened", 2.0: "half-opened"}
# The System Runtime has one queue of runs (partitioned per tenant inside).
_RUNS_QUEUE = "runs"


@dataclass(frozen=True, slots=True)
class StatusReport:
    """The checks' results (the window adds when they were made)."""

    services: list[ServiceStatus]
    database: BackendStatus
    redis: BackendStatus
    queues: QueuesStatus
    breakers: BreakersStatus

    @property
    def degraded(self) -> bool:
        """Whether any check is down."""
        parts: list[Any] = [*self.services, self.database, self.redis, self.queues, self.breakers]
        return any(part.status == "down" for part in parts)


class StatusChecks:
    """Runs every check of a status once."""

    def __init__(self, platform: Platform, dashboard: DashboardSettings) -> None:
        self._platform = platform
        self._dashboard = dashboard
        self._timeout = dashboard.status_check_timeout_seconds

    async def run(self, caller: AuthContext) -> StatusReport:
        """Every check at once, each bounded by its own timeout."""
        slugs = self._platform.services.known_services[: self._dashboard.status_services_max]
        services, database, redis, queues, breakers = await asyncio.gather(
            asyncio.gather(*(self._service(slug, caller) for slug in slugs)),
            self._database(),
            self._redis(),
            self._queues(caller),
            self._breakers(caller),
        )
        return StatusReport(list(services), database, redis, queues, breakers)

    async def _bounded(
        self, check: Callable[[], Awaitable[ResultT]]
    ) -> tuple[ResultT | None, float, str | None]:
        """``check()``'s result, its time in ms and None; or None, the time and why it failed."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout):
                result = await check()
        except TimeoutError:
            return None, _ms_since(started), f"no answer within {self._timeout:g} s"
        except Exception as exc:
            return None, _ms_since(started), self._describe(exc)
        return result, _ms_since(started), None

    def _describe(self, exc: BaseException) -> str:
        detail = exc.detail if isinstance(exc, XynergyError) else str(exc)
        why = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        cause = exc.__cause__
        if cause is not None:
            # The transport's own error says what failed (refused, reset, DNS).
            why += (
                f" ({type(cause).__name__}: {cause})"
                if str(cause)
                else f" ({type(cause).__name__})"
            )
        return self._trimmed(why)

    async def _service(self, slug: str, caller: AuthContext) -> ServiceStatus:
        transport = "network" if slug in self._platform.settings.service_urls else "in-process"

        async def call() -> Any:
            return await self._platform.services.request(
                slug, "GET", "/readyz", caller=caller, scopes=()
            )

        response, latency, error = await self._bounded(call)
        if response is None:
            return ServiceStatus(
                name=slug,
                status="down",
                transport=transport,
                http_status=None,
                latency_ms=latency,
                error=error,
            )
        checks = _readiness_checks(response.content)
        if response.status == _READY:
            return ServiceStatus(
                name=slug,
                status="up",
                transport=transport,
                http_status=response.status,
                checks=checks,
                latency_ms=latency,
                error=None,
            )
        failing = [f"{name}: {state}" for name, state in checks.items() if state != "ok"]
        why = f"/readyz answered {response.status}"
        if failing:
            why += " (" + "; ".join(failing) + ")"
        return ServiceStatus(
            name=slug,
            status="down",
            transport=transport,
            http_status=response.status,
            checks=checks,
            latency_ms=latency,
            error=self._trimmed(why),
        )

    def _trimmed(self, why: str) -> str:
        limit = self._dashboard.status_error_max_chars
        return why if len(why) <= limit else why[: limit - 1] + "…"

    async def _database(self) -> BackendStatus:
        engine = self._platform.engine

        async def ping() -> None:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))

        _, latency, error = await self._bounded(ping)
        return BackendStatus(
            status="down" if error else "up",
            backend=engine.url.get_backend_name(),
            latency_ms=latency,
            pool=_pool_figures(engine.pool),
            error=error,
        )

    async def _redis(self) -> BackendStatus:
        redis = self._platform.redis
        if redis is None:
            return BackendStatus(status="not_configured")

        async def ping() -> None:
            await redis.ping()

        _, latency, error = await self._bounded(ping)
        return BackendStatus(
            status="down" if error else "up", backend="redis", latency_ms=latency, error=error
        )

    async def _metrics_of(self, slug: str, caller: AuthContext) -> tuple[str | None, str | None]:
        """``slug``'s /metrics text and None, or None and why it could not be read."""

        async def call() -> Any:
            return await self._platform.services.request(
                slug, "GET", "/metrics", caller=caller, scopes=_METRICS_SCOPES
            )

        response, _, error = await self._bounded(call)
        if response is None:
            return None, error
        if response.status != _READY:
            return None, f"/metrics answered {response.status}"
        return response.content.decode(errors="replace"), None

    async def _queues(self, caller: AuthContext) -> QueuesStatus:
        source = self._dashboard.queues_service
        if source not in self._platform.services.known_services:
            return QueuesStatus(status="not_deployed", source=source)
        exposition, error = await self._metrics_of(source, caller)
        if exposition is None:
            return QueuesStatus(status="down", source=source, error=error)
        runs: dict[str, int] = {}
        oldest = 0.0
        for name, labels, value in samples_of(exposition, frozenset({_RUNS, _OLDEST_QUEUED})):
            if name == _RUNS:
                runs[labels.get("status", "")] = int(value)
            else:
                oldest = value
        depth = QueueDepth(
            name=_RUNS_QUEUE,
            queued=runs.get("queued", 0),
            running=runs.get("running", 0),
            waiting=runs.get("waiting", 0),
            oldest_queued_age_seconds=oldest,
        )
        return QueuesStatus(status="up", source=source, queues=[depth])

    async def _breakers(self, caller: AuthContext) -> BreakersStatus:
        source = self._dashboard.breakers_service
        if source not in self._platform.services.known_services:
            return BreakersStatus(status="not_deployed", source=source, open=0)
        exposition, error = await self._metrics_of(source, caller)
        if exposition is None:
            return BreakersStatus(status="down", source=source, open=0, error=error)
        circuits = sorted(
            (
                BreakerState(
                    circuit=labels.get("circuit", ""),
                    state=cast(Any, _BREAKER_STATES.get(value, "unknown")),
                )
                for _, labels, value in samples_of(exposition, frozenset({_BREAKER_STATE}))
            ),
            key=lambda breaker: breaker.circuit,
        )
        limit = self._dashboard.status_breakers_max
        return BreakersStatus(
            status="up",
            source=source,
            open=sum(1 for breaker in circuits if breaker.state in ("opened", "half-opened")),
            circuits=circuits[:limit],
            truncated=len(circuits) > limit,
        )


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _readiness_checks(content: bytes) -> dict[str, str]:
    """The ``checks`` of a /readyz body, or none if it is not one."""
    try:
        body = json.loads(content)
    except ValueError:
        return {}
    checks = body.get("checks") if isinstance(body, dict) else None
    if not isinstance(checks, dict):
        return {}
    return {str(name): str(state) for name, state in checks.items()}


def _pool_figures(pool: Any) -> dict[str, int] | None:
    """Size, checked-out and overflow connections of a queue pool (others report none)."""
    figures: dict[str, int] = {}
    for name, method in (("size", "size"), ("checked_out", "checkedout"), ("overflow", "overflow")):
        reader = getattr(pool, method, None)
        if callable(reader):
            try:
                figures[name] = int(reader())
            except (TypeError, ValueError):
                continue
    return figures or None
