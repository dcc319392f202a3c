"""The apps under test, as uvicorn factories (``uvicorn --factory apps:bare_app``).

``bare_app`` and ``platform_app`` serve ``GET /ping`` -> ``{"ok": true}`` from an
``async def`` with the same return annotation, so the only difference between them
is what the platform adds: request id, security headers, metrics, access log, body
limit, API key authentication, the scope check and the rate limiter.

``aso_app`` is the real ASO Engine service; the runner measures its cached
``GET /api/keywords/trending?window=7`` against the same bare ``/ping`` (issue 3).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI

from xynergy.aso_engine.app import create_aso_engine_app
from xynergy.platform.app import create_service_app
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.config import Settings, get_settings
from xynergy.platform.logging import configure_logging
from xynergy.platform.routing import api_router

__all__ = ["BENCH_SCOPE", "TRENDING_SCOPE", "aso_app", "bare_app", "platform_app"]

BENCH_SCOPE = "content:read"
# What GET /api/keywords/trending requires.
TRENDING_SCOPE = "keywords:read"

ReadKey = Annotated[AuthContext, Depends(require_scopes(BENCH_SCOPE))]


def bare_app() -> FastAPI:
    """Plain FastAPI: the baseline. It ignores the Authorization header it is sent."""
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    return app


def platform_app() -> FastAPI:
    """The same endpoint as a platform service, configured from ``XYNERGY_*``."""
    settings = get_settings()
    # As `xynergy serve` does: JSON log lines, so the access log costs what it
    # costs in production rather than structlog's slower development renderer.
    configure_logging(settings.log_level)
    router = api_router()

    @router.get("/ping")
    async def ping(_auth: ReadKey) -> dict[str, bool]:
        return {"ok": True}

    return create_service_app(slug="bench", title="Bench", settings=settings, routers=[router])


def aso_app() -> FastAPI:
    """The ASO Engine as `xynergy serve` builds it, configured from ``XYNERGY_*``."""
    settings = Settings()
    configure_logging(settings.log_level)
    return create_aso_engine_app(settings)
