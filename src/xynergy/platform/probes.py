"""Health, readiness and metrics endpoints mounted on every service app."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from xynergy.platform.monitoring import CONTENT_TYPE_LATEST
from xynergy.platform.routing import api_router, exempt_from_rate_limit, public

__all__ = ["probes_router"]

probes_router = api_router(tags=["probes"])


@probes_router.get("/healthz")
@public
@exempt_from_rate_limit
async def healthz(request: Request) -> dict[str, str]:
    """Liveness: the process is serving requests."""
    return {"status": "ok", "service": request.app.state.service_slug}


@probes_router.get("/readyz")
@public
@exempt_from_rate_limit
async def readyz(request: Request) -> Response:
    """Readiness: every configured backend answers."""
    checks = await request.app.state.platform.readiness()
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


@probes_router.get("/metrics", include_in_schema=False)
@public
@exempt_from_rate_limit
async def metrics(request: Request) -> Response:
    """Prometheus exposition of request, rate-limit and auth metrics."""
    return Response(request.app.state.platform.metrics.render(), media_type=CONTENT_TYPE_LATEST)
