"""The Platform Dashboard service app."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from xynergy.platform.app import create_service_app
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform
from xynergy.platform_dashboard.alerts.endpoints import router as alerts_router
from xynergy.platform_dashboard.alerts.setup import start_alerts
from xynergy.platform_dashboard.config import DashboardSettings
from xynergy.platform_dashboard.cost.endpoints import router as cost_router
from xynergy.platform_dashboard.pages.endpoints import dashboard_page
from xynergy.platform_dashboard.pages.endpoints import router as pages_router
from xynergy.platform_dashboard.resources.endpoints import router as resources_router
from xynergy.platform_dashboard.series.endpoints import router as series_router
from xynergy.platform_dashboard.status.board import StatusBoard
from xynergy.platform_dashboard.status.endpoints import router as status_router

__all__ = ["SLUG", "create_platform_dashboard_app"]

SLUG = "platform-dashboard"

# The dashboard's routers, in match order (the hot ones first). Each domain adds
# its own here with one line (e.g. the metric series).
ROUTERS: tuple[APIRouter, ...] = (
    status_router,
    resources_router,
    series_router,
    cost_router,
    alerts_router,
    pages_router,
)


def create_platform_dashboard_app(
    settings: Settings, platform: Platform | None = None, dashboard: DashboardSettings | None = None
) -> FastAPI:
    """The Platform Dashboard; its own settings come from ``XYNERGY_DASHBOARD_*`` unless given."""
    dashboard = dashboard or DashboardSettings()

    async def start(shared: Platform) -> None:
        app.state.dashboard_status = StatusBoard(shared, dashboard)
        start_alerts(app, shared)

    async def stop(shared: Platform) -> None:
        board: StatusBoard | None = getattr(app.state, "dashboard_status", None)
        if board is not None:
            await board.close()

    app = create_service_app(
        slug=SLUG,
        title="Xynergy Platform Dashboard",
        settings=settings,
        routers=ROUTERS,
        platform=platform,
        on_startup=[start],
        on_shutdown=[stop],
    )
    app.state.dashboard = dashboard
    app.state.home_page = dashboard_page  # its `/` is the dashboard, not the services index
    return app
