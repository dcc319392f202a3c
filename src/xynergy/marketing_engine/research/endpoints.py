"""Keyword research endpoint of the Marketing Engine."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from xynergy.marketing_engine.config import MarketingSettings
from xynergy.marketing_engine.research import service
from xynergy.marketing_engine.research.schemas import ResearchRequest, ResearchResponse
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.exceptions import CircuitOpen, UpstreamTimeout, UpstreamUnavailable
from xynergy.platform.routing import api_router, raises, rate_limit

__all__ = ["router"]

router = api_router(tags=["research"])

# The research calls the ASO Engine and the AI Routing Engine on the caller's
# behalf with a subset of its scopes, so it needs those scopes up front.
Researcher = Annotated[
    AuthContext, Depends(require_scopes("marketing:research", "keywords:read", "ai:generate"))
]


@router.post(
    "/keywords/research",
    responses={
        403: {"description": "A scope is missing (keywords:write for add_to_tracked)."},
        422: {"description": "A bound is exceeded; nothing was done."},
        429: {"description": "Expensive-route rate limit; see Retry-After."},
    },
)
@rate_limit("ai_expensive")
@raises(UpstreamUnavailable, CircuitOpen, UpstreamTimeout)
async def research_keywords(
    body: ResearchRequest, request: Request, auth: Researcher
) -> ResearchResponse:
    """Keyword suggestions from the tenant's own data and AI ideas, cached 24 h."""
    platform = request.app.state.platform
    settings: MarketingSettings = request.app.state.marketing
    return await service.research(
        body,
        services=platform.services,
        cache=platform.cache,
        settings=settings,
        page_size=platform.settings.page_size_max,
        caller=auth,
    )
