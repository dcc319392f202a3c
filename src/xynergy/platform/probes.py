"""Health, readiness and metrics endpoints mounted on every service app.

``/healthz`` and ``/readyz`` are public and never rate limited (load balancers
poll them), so they must be cheap: liveness touches nothing, readiness answers
from a backend check shared by every caller for ``readiness_cache_seconds``.
``/metrics`` shows every tenant's traffic and costs a render of every series,
so it needs a ``metrics:read`` key and has its own rate-limit class; a local
Prometheus may scrape the loopback ``metrics_port`` instead.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.monitoring import CONTENT_TYPE_LATEST
from xynergy.platform.routing import api_router, exempt_from_rate_limit, public, rate_limit

__all__ = ["METRICS_RATE_CLASS", "METRICS_SCOPE", "probes_router"]

METRICS_SCOPE = "metrics:read"
METRICS_RATE_CLASS = "metrics"
# Probe answers are about this instant: no cache between the prober and us may keep one.
_NO_STORE = {"Cache-Control": "no-store"}


class ReadinessBody(BaseModel):
    """What ``/readyz`` answers, ready (200) or not (503): not an error body, a report."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(
        description='Each backend: `"ok"` or `"error: <why>"`.',
    )
    age_seconds: float = Field(ge=0, description="Seconds since the checks ran.")


_READINESS_HEADERS = {
    "Cache-Control": {"description": "`no-store`.", "schema": {"type": "string"}, "required": True}
}
_READINESS_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"description": "Every backend answered its last check.", "headers": _READINESS_HEADERS},
    503: {
        "model": ReadinessBody,
        "description": "A backend failed its last check (which one is in `checks`).",
        "headers": _READINESS_HEADERS,
    },
}

probes_router = api_router(tags=["probes"])
MetricsReader = Annotated[AuthContext, Depends(require_scopes(METRICS_SCOPE))]


@probes_router.get("/healthz")
@public
@exempt_from_rate_limit
async def healthz(request: Request) -> dict[str, str]:
    """Liveness: the process is serving requests."""
    return {"status": "ok", "service": request.app.state.service_slug}


@probes_router.get("/readyz", response_model=ReadinessBody, responses=_READINESS_RESPONSES)
@public
@exempt_from_rate_limit
async def readyz(request: Request) -> Response:
    """Readiness: every configured backend answered its last check."""
    readiness = await request.app.state.platform.readiness()
    return JSONResponse(
        {
            "status": "ok" if readiness.ready else "unavailable",
            "checks": readiness.checks,
            "age_seconds": round(readiness.age(), 3),
        },
        status_code=200 if readiness.ready else 503,
        headers=_NO_STORE,
    )


@probes_router.get("/metrics", include_in_schema=False)
@rate_limit(METRICS_RATE_CLASS)
async def metrics(request: Request, _reader: MetricsReader) -> Response:
    """Prometheus exposition of request, rate-limit and auth metrics."""
    return Response(
        request.app.state.platform.metrics.render(),
        media_type=CONTENT_TYPE_LATEST,
        headers=_NO_STORE,
    )
