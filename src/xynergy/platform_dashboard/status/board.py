"""The status as callers get it: one check per window, rendered once per check."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import Counter

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.runtime import Platform
from xynergy.platform.shared_window import SharedWindow, Stamped
from xynergy.platform_dashboard.config import DashboardSettings
from xynergy.platform_dashboard.status.service import StatusChecks, StatusReport

__all__ = ["StatusBoard"]


@dataclass(frozen=True, slots=True)
class _Rendered:
    """A report's JSON, apart from its age (which changes with every answer)."""

    head: str  # `"status":…,"computed_at":…,`
    tail: str  # `"window_seconds":…,"services":…,…}`


class StatusBoard:
    """Answers GET /api/status from a check at most ``status_window_seconds`` old."""

    def __init__(self, platform: Platform, dashboard: DashboardSettings) -> None:
        self._checks = StatusChecks(platform, dashboard)
        self._window_seconds = dashboard.status_window_seconds
        self._window: SharedWindow[_Rendered] = SharedWindow(
            window_seconds=dashboard.status_window_seconds, task_name="dashboard-status"
        )
        self._computations = platform.metrics.service_metric(
            Counter,
            "xynergy_dashboard_status_computations",
            "Status checks run for GET /api/status (answers in between reuse the last one).",
        )

    async def render(self, caller: AuthContext) -> bytes:
        """The status body as JSON; ``caller`` is the identity a new check calls services as."""

        async def compute() -> _Rendered:
            self._computations.inc()
            return await self._render(await self._checks.run(caller))

        stamped = await self._window.current(compute)
        return _with_age(stamped)

    async def _render(self, report: StatusReport) -> _Rendered:
        head = {
            "status": "degraded" if report.degraded else "ok",
            "computed_at": datetime.now(UTC).isoformat(),
        }
        tail = {
            "window_seconds": self._window_seconds,
            "services": [service.model_dump(mode="json") for service in report.services],
            "database": report.database.model_dump(mode="json"),
            "redis": report.redis.model_dump(mode="json"),
            "queues": report.queues.model_dump(mode="json"),
            "breakers": report.breakers.model_dump(mode="json"),
        }
        return _Rendered(_compact(head)[1:-1] + ",", _compact(tail)[1:])

    async def close(self) -> None:
        """Cancel a check still in flight."""
        await self._window.close()


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _with_age(stamped: Stamped[_Rendered]) -> bytes:
    # Rendered once per check; each answer only splices in its own age.
    rendered = stamped.value
    age = round(stamped.age(), 3)
    return f'{{{rendered.head}"age_seconds":{age},{rendered.tail}'.encode()
