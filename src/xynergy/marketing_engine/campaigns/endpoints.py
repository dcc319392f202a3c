"""Campaign endpoints of the Marketing Engine."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import AwareDatetime

from xynergy.marketing_engine.campaigns import service
from xynergy.marketing_engine.campaigns.schemas import (
    Campaign,
    CampaignDetail,
    CampaignFilters,
    CampaignGenerate,
    CampaignStatus,
)
from xynergy.marketing_engine.config import MarketingSettings
from xynergy.marketing_engine.templates.schemas import KEY_HARD_MAX
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.db.session import SessionDep
from xynergy.platform.exceptions import (
    BudgetExceeded,
    CircuitOpen,
    Conflict,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from xynergy.platform.pagination import PageParamsDep
from xynergy.platform.routing import api_router, raises, rate_limit
from xynergy.platform.runtime import Platform
from xynergy.platform.schemas import Page, ResourceId

__all__ = ["router"]

router = api_router(tags=["campaigns"])

CampaignReader = Annotated[AuthContext, Depends(require_scopes("campaigns:read"))]
CampaignWriter = Annotated[AuthContext, Depends(require_scopes("campaigns:write"))]
# Generation calls the AI Routing Engine on the caller's behalf: it must hold that scope too.
CampaignGenerator = Annotated[
    AuthContext, Depends(require_scopes("campaigns:write", "ai:generate"))
]


# Dependencies are async: a plain def would be sent to the thread pool per request.
async def _marketing(request: Request) -> MarketingSettings:
    settings: MarketingSettings = request.app.state.marketing
    return settings


async def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


async def _filters(
    status: Annotated[CampaignStatus | None, Query()] = None,
    business_type: Annotated[str | None, Query(max_length=KEY_HARD_MAX)] = None,
    created_after: Annotated[
        AwareDatetime | None, Query(description="Only campaigns created at or after this.")
    ] = None,
    created_before: Annotated[
        AwareDatetime | None, Query(description="Only campaigns created before this.")
    ] = None,
) -> CampaignFilters:
    return service.normalise_filters(
        status=status,
        business_type=business_type,
        created_after=created_after,
        created_before=created_before,
    )


MarketingDep = Annotated[MarketingSettings, Depends(_marketing)]
PlatformDep = Annotated[Platform, Depends(_platform)]
FiltersDep = Annotated[CampaignFilters, Depends(_filters)]


@router.post(
    "/campaigns/generate",
    status_code=201,
    responses={
        422: {"description": "A bound is exceeded; nothing was written or called."},
        503: {"description": "The AI Routing Engine is unavailable; nothing was written."},
    },
)
# Each generation may pay for an AI call: it counts against the AI rate class.
@rate_limit("ai_generate")
@raises(BudgetExceeded, UpstreamUnavailable, CircuitOpen, UpstreamTimeout)
async def generate_campaign(
    body: CampaignGenerate,
    session: SessionDep,
    auth: CampaignGenerator,
    marketing: MarketingDep,
    platform: PlatformDep,
) -> CampaignDetail:
    """Generate a draft campaign from a template, personalised through the AI Routing Engine."""
    return await service.generate_campaign(
        session, platform=platform, caller=auth, data=body, marketing=marketing
    )


@router.get("/campaigns")
async def list_campaigns(
    session: SessionDep, auth: CampaignReader, filters: FiltersDep, page: PageParamsDep
) -> Page[Campaign]:
    """List campaigns, newest first, one cursor page at a time."""
    return await service.list_campaigns(
        session, tenant_id=auth.tenant_id, filters=filters, params=page
    )


@router.get("/campaigns/{campaign_id}")
async def get_campaign(
    campaign_id: ResourceId, session: SessionDep, auth: CampaignReader
) -> CampaignDetail:
    """One campaign with the output of each generation step."""
    return await service.get_campaign(session, tenant_id=auth.tenant_id, campaign_id=campaign_id)


@router.post("/campaigns/{campaign_id}/approve")
@raises(Conflict)
async def approve_campaign(
    campaign_id: ResourceId, session: SessionDep, auth: CampaignWriter
) -> Campaign:
    """Approve a draft campaign."""
    return await service.change_status(
        session, tenant_id=auth.tenant_id, campaign_id=campaign_id, action="approve"
    )


@router.post("/campaigns/{campaign_id}/activate")
@raises(Conflict)
async def activate_campaign(
    campaign_id: ResourceId, session: SessionDep, auth: CampaignWriter
) -> Campaign:
    """Activate an approved campaign."""
    return await service.change_status(
        session, tenant_id=auth.tenant_id, campaign_id=campaign_id, action="activate"
    )


@router.post("/campaigns/{campaign_id}/complete")
@raises(Conflict)
async def complete_campaign(
    campaign_id: ResourceId, session: SessionDep, auth: CampaignWriter
) -> Campaign:
    """Mark an active campaign completed."""
    return await service.change_status(
        session, tenant_id=auth.tenant_id, campaign_id=campaign_id, action="complete"
    )


@router.post("/campaigns/{campaign_id}/archive")
@raises(Conflict)
async def archive_campaign(
    campaign_id: ResourceId, session: SessionDep, auth: CampaignWriter
) -> Campaign:
    """Archive a campaign that is not archived yet."""
    return await service.change_status(
        session, tenant_id=auth.tenant_id, campaign_id=campaign_id, action="archive"
    )
