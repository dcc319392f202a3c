"""Template endpoints of the Marketing Engine."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from xynergy.marketing_engine.config import MarketingSettings
from xynergy.marketing_engine.templates import lookup, service
from xynergy.marketing_engine.templates.schemas import (
    KEY_HARD_MAX,
    KEY_PATTERN,
    Template,
    TemplateCreate,
    TemplateUpdate,
)
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
from xynergy.platform.schemas import Page

__all__ = ["router"]

router = api_router(tags=["templates"])

TemplateReader = Annotated[AuthContext, Depends(require_scopes("campaigns:read"))]
TemplateWriter = Annotated[AuthContext, Depends(require_scopes("templates:write"))]
# A draft calls the AI Routing Engine on the caller's behalf: it must hold that scope too.
TemplateDrafter = Annotated[AuthContext, Depends(require_scopes("templates:write", "ai:generate"))]
KeyPath = Annotated[
    str, Path(min_length=1, max_length=KEY_HARD_MAX, pattern=KEY_PATTERN, description="A key.")
]


# Dependencies are async: a plain def would be sent to the thread pool per request.
async def _marketing(request: Request) -> MarketingSettings:
    settings: MarketingSettings = request.app.state.marketing
    return settings


async def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


MarketingDep = Annotated[MarketingSettings, Depends(_marketing)]
PlatformDep = Annotated[Platform, Depends(_platform)]


@router.get("/templates")
async def list_templates(
    session: SessionDep, auth: TemplateReader, page: PageParamsDep
) -> Page[Template]:
    """List the tenant's latest template versions, then the built-in templates."""
    return await service.list_templates(session, tenant_id=auth.tenant_id, params=page)


@router.post("/templates", status_code=201)
@raises(Conflict)
async def create_template(
    body: TemplateCreate,
    session: SessionDep,
    auth: TemplateWriter,
    marketing: MarketingDep,
    platform: PlatformDep,
) -> Template:
    """Create the next version of a template for a business type and industry."""
    row = await service.create_template(
        session,
        tenant_id=auth.tenant_id,
        business_type=body.business_type,
        industry=body.industry,
        body=body.body,
        marketing=marketing,
        cache=platform.cache,
    )
    return service.from_row(row)


@router.put("/templates/{business_type}/{industry}")
@raises(Conflict)
async def update_template(
    business_type: KeyPath,
    industry: KeyPath,
    body: TemplateUpdate,
    session: SessionDep,
    auth: TemplateWriter,
    marketing: MarketingDep,
    platform: PlatformDep,
) -> Template:
    """Store a new version of the template for this business type and industry."""
    row = await service.create_template(
        session,
        tenant_id=auth.tenant_id,
        business_type=business_type,
        industry=industry,
        body=body.body,
        marketing=marketing,
        cache=platform.cache,
    )
    return service.from_row(row)


@router.get(
    "/templates/{business_type}/{industry}",
    responses={404: {"description": "No stored or built-in template; nothing is drafted."}},
)
async def find_template(
    business_type: KeyPath,
    industry: KeyPath,
    session: SessionDep,
    auth: TemplateReader,
    marketing: MarketingDep,
    platform: PlatformDep,
) -> Template:
    """The template a campaign would start from: the tenant's own or a built-in one."""
    service.check_key("business_type", business_type, marketing)
    service.check_key("industry", industry, marketing)
    return await lookup.find_template(
        session,
        cache=platform.cache,
        tenant_id=auth.tenant_id,
        business_type=business_type,
        industry=industry,
    )


@router.post(
    "/templates/{business_type}/{industry}/draft",
    status_code=201,
    responses={503: {"description": "The AI Routing Engine is unavailable; nothing was stored."}},
)
# Each draft pays for an AI generation: it counts against the AI rate class.
@rate_limit("ai_generate")
@raises(BudgetExceeded, UpstreamUnavailable, CircuitOpen, UpstreamTimeout)
async def draft_template(
    business_type: KeyPath,
    industry: KeyPath,
    session: SessionDep,
    auth: TemplateDrafter,
    marketing: MarketingDep,
    platform: PlatformDep,
) -> Template:
    """Draft the next version of this template with AI and store it (source "ai")."""
    row = await service.draft_template(
        session,
        platform=platform,
        caller=auth,
        business_type=business_type,
        industry=industry,
        marketing=marketing,
    )
    return service.from_row(row)
