"""Services that are unwell in known ways, mounted beside the dashboard in tests.

Each is a real service app (create_service_app) whose own ``/readyz`` route is
matched before the platform's probe: one answers 503 with a failed backend, one
never answers.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from xynergy.platform.app import create_service_app
from xynergy.platform.config import Settings
from xynergy.platform.routing import api_router, exempt_from_rate_limit, public

UNREADY = "unready-service"
HUNG = "hung-service"
HANG_SECONDS = 60.0

_unready_router = api_router()
_hung_router = api_router()


@_unready_router.get("/readyz")
@public
@exempt_from_rate_limit
async def unready() -> JSONResponse:
    """Readiness that reports its database failing."""
    return JSONResponse(
        {"status": "unavailable", "checks": {"database": "error: OperationalError"}},
        status_code=503,
    )


@_hung_router.get("/readyz")
@public
@exempt_from_rate_limit
async def hung() -> JSONResponse:
    """Readiness that never answers (within any test's patience)."""
    await asyncio.sleep(HANG_SECONDS)
    return JSONResponse({"status": "ok", "checks": {}})


def create_unready_app(settings: Settings) -> FastAPI:
    return create_service_app(
        slug=UNREADY, title="Unready", settings=settings, routers=[_unready_router]
    )


def create_hung_app(settings: Settings) -> FastAPI:
    return create_service_app(slug=HUNG, title="Hung", settings=settings, routers=[_hung_router])
