"""The apps under test, as uvicorn factories (``uvicorn --factory apps:bare_app``).

``bare_app`` and ``platform_app`` serve ``GET /ping`` -> ``{"ok": true}`` from an
``async def`` with the same return annotation, so the only difference between them
is what the platform adds: request id, security headers, metrics, access log, body
limit, API key authentication, the scope check and the rate limiter.

``aso_app`` is the real ASO Engine service; the runner measures its cached
``GET /api/keywords/trending?window=7`` against the same bare ``/ping`` (issue 3)
and against ``bare_trending_app``: plain FastAPI serving the same path with the
same five query parameters and the same JSON body, read once at start-up from the
file named by ``BENCH_TRENDING_BODY`` (the runner writes the real app's body there).

``python bench/apps.py FACTORY HOST PORT`` serves ``FACTORY()`` on the server
``xynergy serve`` runs (``xynergy.platform.serving.run`` with ``Settings()`` from
``XYNERGY_*``): the platform rows measure the server that ships.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Response

from xynergy.aso_engine.app import create_aso_engine_app
from xynergy.aso_engine.rankings.schemas import (
    Direction,
    EngineFilter,
    LocaleFilter,
    TrendingKeywords,
)
from xynergy.platform.app import create_service_app
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.config import Settings, get_settings
from xynergy.platform.logging import configure_logging
from xynergy.platform.routing import api_router
from xynergy.platform.serving import run
from xynergy.platform_dashboard.app import create_platform_dashboard_app

__all__ = [
    "BENCH_SCOPE",
    "TRENDING_BODY_ENV",
    "TRENDING_SCOPE",
    "aso_app",
    "bare_app",
    "bare_trending_app",
    "dashboard_app",
    "platform_app",
]

BENCH_SCOPE = "content:read"
# What GET /api/keywords/trending requires.
TRENDING_SCOPE = "keywords:read"
# Names the file holding the response body bare_trending_app serves (UTF-8 JSON).
TRENDING_BODY_ENV = "BENCH_TRENDING_BODY"
# The real endpoint's bounds (rankings/endpoints.py), copied, not imported.
_WINDOW_HARD_MAX_DAYS = 366
_TRENDING_HARD_MAX = 1000

ReadKey = Annotated[AuthContext, Depends(require_scopes(BENCH_SCOPE))]


def bare_app() -> FastAPI:
    """Plain FastAPI: the baseline. It ignores the Authorization header it is sent."""
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    return app


def bare_trending_app() -> FastAPI:
    """Plain FastAPI serving ``GET /api/keywords/trending`` like the ASO Engine does:
    the same five query parameters with the same types and bounds, and the same
    body, returned as the real endpoint returns its cached text. No auth, cache,
    rate limit or middleware; it ignores the Authorization header it is sent."""
    # Read once: the same str the real endpoint takes from its cache, encoded by
    # Response per request just as there.
    body = Path(os.environ[TRENDING_BODY_ENV]).read_text(encoding="utf-8")
    app = FastAPI()

    @app.get("/api/keywords/trending", response_model=TrendingKeywords)
    async def trending_keywords(
        window: Annotated[int, Query(ge=1, le=_WINDOW_HARD_MAX_DAYS, description="Days.")],
        direction: Direction = "improved",
        engine: Annotated[EngineFilter | None, Query()] = None,
        locale: Annotated[LocaleFilter | None, Query()] = None,
        limit: Annotated[int | None, Query(ge=1, le=_TRENDING_HARD_MAX)] = None,
    ) -> Response:
        return Response(content=body, media_type="application/json")

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


def dashboard_app() -> FastAPI:
    """The Platform Dashboard alone as `xynergy serve --service platform-dashboard` builds it."""
    settings = Settings()
    configure_logging(settings.log_level)
    return create_platform_dashboard_app(settings)


def main(argv: list[str]) -> None:
    """Serve ``argv[0]()`` on ``argv[1]:argv[2]`` as ``xynergy serve`` would."""
    factory, host, port = argv
    # configure_logging runs in the factories, as in `xynergy serve` before run().
    app = globals()[factory]()
    run(app, Settings(), host=host, port=int(port))


if __name__ == "__main__":
    main(sys.argv[1:])
