"""GET /api/resources."""

from __future__ import annotations

from xynergy.platform.routing import api_router
from xynergy.platform_dashboard.auth import MetricsReader
from xynergy.platform_dashboard.dependencies import ResourcesDep
from xynergy.platform_dashboard.resources.monitor import measure_resources
from xynergy.platform_dashboard.resources.schemas import ProcessResources

__all__ = ["router"]

router = api_router(prefix="/api", tags=["resources"])


@router.get("/resources")
async def process_resources(_reader: MetricsReader, monitor: ResourcesDep) -> ProcessResources:
    """This process's memory, file descriptors, disk use, event-loop lag, task count and the
    sizes of its bounded caches (the same figures as on /metrics)."""
    return measure_resources(monitor)
