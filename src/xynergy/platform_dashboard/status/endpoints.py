"""GET /api/status."""

from __future__ import annotations

from fastapi import Response

from xynergy.platform.routing import api_router
from xynergy.platform_dashboard.auth import MetricsReader
from xynergy.platform_dashboard.dependencies import StatusDep
from xynergy.platform_dashboard.status.schemas import PlatformStatus

__all__ = ["router"]

router = api_router(prefix="/api", tags=["status"])


@router.get("/status", response_model=PlatformStatus)
async def platform_status(reader: MetricsReader, board: StatusDep) -> Response:
    """Every service's health and readiness, the database, Redis, the runtime's queues and the
    AI providers' breakers, from a check at most one window old (its age is in the body)."""
    # Rendered once per check (board.py): the model above documents the body.
    return Response(
        await board.render(reader),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )
