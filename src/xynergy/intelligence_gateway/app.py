"""The Intelligence Gateway service app."""

from __future__ import annotations

from fastapi import FastAPI

from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.forms.endpoints import router as forms_router
from xynergy.intelligence_gateway.outbox.dispatcher import OutboxDispatcher
from xynergy.intelligence_gateway.submissions.endpoints import router as admin_router
from xynergy.intelligence_gateway.submissions.public import router as public_router
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
        dispatcher = OutboxDispatcher(settings=settings, intake=intake, platform=shared)
        app.state.outbox = dispatcher
        await dispatcher.start()

    async def stop(shared: Platform) -> None:
        dispatcher: OutboxDispatcher | None = getattr(app.state, "outbox", None)
        if dispatcher is not None:
            await dispatcher.stop()

    app = create_service_app(
        slug=SLUG,
        title="Xynergy Intelligence Gateway",
        settings=settings,
        # Public intake first: it is the hot (and abused) path.
        routers=[public_router, admin_router, forms_router],
        platform=platform,
        on_startup=[start],
        on_shutdown=[stop],
    )
    app.state.intake = intake
    return app
