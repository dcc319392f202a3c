"""The Intelligence Gateway service app."""

from __future__ import annotations

from fastapi import FastAPI

from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.forms.endpoints import router as forms_router
from xynergy.intelligence_gateway.outbox.resolver import INTAKE_FORM, resolve_forms
from xynergy.intelligence_gateway.submissions.endpoints import router as admin_router
from xynergy.intelligence_gateway.submissions.public import router as public_router
from xynergy.intelligence_gateway.submissions.stats import CACHE_NAMESPACE as STATS_NAMESPACE
from xynergy.platform.app import create_service_app
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform

__all__ = ["SLUG", "create_intelligence_gateway_app"]

SLUG = "intelligence-gateway"


def create_intelligence_gateway_app(
    settings: Settings, platform: Platform | None = None, intake: IntakeSettings | None = None
) -> FastAPI:
    """The Intelligence Gateway; its own settings come from ``XYNERGY_INTAKE_*`` unless given."""
    intake = intake or IntakeSettings()

    async def start(shared: Platform) -> None:
        shared.cache.set_default_ttl(STATS_NAMESPACE, intake.stats_cache_ttl_seconds)
        # The platform's one dispatcher delivers the intake's webhooks; it stops
        # with the platform.
        shared.outbox.register(INTAKE_FORM, resolve_forms)
        app.state.outbox = shared.outbox

    app = create_service_app(
        slug=SLUG,
        title="Xynergy Intelligence Gateway",
        settings=settings,
        # Public intake first: it is the hot (and abused) path.
        routers=[public_router, admin_router, forms_router],
        platform=platform,
        on_startup=[start],
    )
    app.state.intake = intake
    return app
