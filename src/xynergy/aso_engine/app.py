"""The ASO Engine service app."""

from __future__ import annotations

from fastapi import FastAPI

from xynergy.aso_engine.config import AsoSettings
from xynergy.aso_engine.content.endpoints import router as content_router
from xynergy.aso_engine.keywords.endpoints import router as keywords_router
from xynergy.aso_engine.rankings.endpoints import router as rankings_router
from xynergy.aso_engine.rankings.warming import trending_warmer
from xynergy.platform.app import create_service_app
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform

__all__ = ["SLUG", "create_aso_engine_app"]

SLUG = "aso-engine"


def create_aso_engine_app(
    settings: Settings, platform: Platform | None = None, aso: AsoSettings | None = None
) -> FastAPI:
    """The ASO Engine; its own bounds come from ``XYNERGY_ASO_*`` unless given."""
    aso = aso or AsoSettings()

    async def register_cache_ttls(shared: Platform) -> None:
        shared.cache.set_default_ttl("content", aso.list_cache_ttl_seconds)
        shared.cache.set_default_ttl("trending", aso.trending_cache_ttl_seconds)
        shared.cache.add_warmer(trending_warmer(shared.sessionmaker, aso))

    app = create_service_app(
        slug=SLUG,
        title="Xynergy ASO Engine",
        settings=settings,
        # Trending and the keyword routes share a prefix: the fixed path first.
        routers=[rankings_router, keywords_router, content_router],
        platform=platform,
        on_startup=[register_cache_ttls],
    )
    app.state.aso = aso
    return app
