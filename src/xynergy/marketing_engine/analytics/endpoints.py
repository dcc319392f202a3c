"""Performance analytics endpoint of the Marketing Engine."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from xynergy.marketing_engine.analytics import service
from xynergy.marketing_engine.analytics.schemas import PerformanceReport
from xynergy.marketing_engine.config import MarketingSettings
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.db.base import utcnow
from xynergy.platform.exceptions import ValidationFailed
from xynergy.platform.routing import api_router

__all__ = ["AnalyticsReader", "router"]

router = api_router(tags=["analytics"])

# analytics:read opens the endpoint; each section also needs its source's scope
# (content:read, keywords:read, ai:usage). A section the key may not read is
# reported as "forbidden" rather than refusing the whole answer.
AnalyticsReader = Annotated[AuthContext, Depends(require_scopes("analytics:read"))]


@router.get("/analytics/performance")
async def performance(
    request: Request,
    auth: AnalyticsReader,
    window: Annotated[
        int | None, Query(ge=1, description="Days ending today (UTC); default from settings.")
    ] = None,
) -> PerformanceReport:
    """Content, keyword movement, campaigns and AI spend over a window; partial if a source fails."""
    marketing: MarketingSettings = request.app.state.marketing
    days = marketing.analytics_window_days_default if window is None else window
    if days > marketing.analytics_window_days_max:
        raise ValidationFailed(f"window must be at most {marketing.analytics_window_days_max}.")
    platform = request.app.state.platform
    return await service.performance_report(
        caller=auth,
        window=service.window_ending(utcnow().date(), days),
        marketing=marketing,
        services=platform.services,
        sessionmaker=platform.sessionmaker,
        cache=platform.cache,
    )
