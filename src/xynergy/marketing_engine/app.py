"""The Marketing Engine service app."""

from __future__ import annotations

from fastapi import FastAPI

from xynergy.marketing_engine.analytics.endpoints import router as analytics_router
from xynergy.marketing_engine.campaigns.endpoints import router as campaigns_router
from xynergy.marketing_engine.config import MarketingSettings
from xynergy.marketing_engine.research.endpoints import router as research_router
from xynergy.marketing_engine.templates.endpoints import router as templates_router
from xynergy.marketing_engine.templates.warming import template_warmer
from xynergy.platform.app import create_service_app
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform

__all__ = ["SLUG", "create_marketing_engine_app"]

SLUG = "marketing-engine"


def create_marketing_engine_app(
    settings: Settings, platform: Platform | None = None, marketing: MarketingSettings | None = None
) -> FastAPI:
    """The Marketing Engine; its own settings come from ``XYNERGY_MARKETING_*`` unless given."""
    marketing = marketing or MarketingSettings()

    async def register_cache_ttls(shared: Platform) -> None:
        shared.cache.set_default_ttl("marketing-research", marketing.research_cache_ttl_seconds)
        shared.cache.set_default_ttl("marketing-templates", marketing.template_cache_ttl_seconds)
        shared.cache.set_default_ttl("marketing-steps", marketing.step_cache_ttl_seconds)
        shared.cache.set_default_ttl("marketing-analytics", marketing.analytics_cache_ttl_seconds)
        shared.cache.add_warmer(template_warmer(shared.sessionmaker, marketing))

    app = create_service_app(
        slug=SLUG,
        title="Xynergy Marketing Engine",
        settings=settings,
        routers=[research_router, campaigns_router, templates_router, analytics_router],
        platform=platform,
        on_startup=[register_cache_ttls],
    )
    app.state.marketing = marketing
    return app
