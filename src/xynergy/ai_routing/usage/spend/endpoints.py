"""Spend endpoints of the AI Routing Engine."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.usage.endpoints import UsageReader
from xynergy.ai_routing.usage.spend import service
from xynergy.ai_routing.usage.spend.months import MONTH_PATTERN, Month, parse_month
from xynergy.ai_routing.usage.spend.schemas import SpendReport, TenantSpend
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.auth.operator import visible_tenant
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import SessionDep
from xynergy.platform.exceptions import BadRequest, Forbidden, NotFound
from xynergy.platform.pagination import PageRequestDep
from xynergy.platform.routing import api_router, raises
from xynergy.platform.schemas import Page

__all__ = ["router"]

router = api_router(prefix="/api/spend", tags=["usage"])

MetricsReader = Annotated[AuthContext, Depends(require_scopes("metrics:read"))]
MonthParam = Annotated[
    str | None,
    Query(
        min_length=7,
        max_length=7,
        pattern=MONTH_PATTERN,
        description="YYYY-MM (UTC); default: the current month.",
    ),
]
TenantParam = Annotated[
    str | None,
    Query(
        min_length=32,
        max_length=32,
        pattern=r"^[0-9a-f]{32}$",
        description="Operators: one tenant; omitted: the whole platform.",
    ),
]


def _ai(request: Request) -> AiSettings:
    ai: AiSettings = request.app.state.ai.ai
    return ai


def _month(request: Request, month: str | None) -> Month:
    return parse_month(month, now=utcnow(), max_months=_ai(request).spend_max_months)


@router.get("")
async def get_spend(
    request: Request, session: SessionDep, auth: UsageReader, month: MonthParam = None
) -> SpendReport:
    """The tenant's AI spend for a month: per day, model, task and key, budgets, projection."""
    return await service.spend_report(
        session,
        tenant_id=auth.tenant_id,
        month=_month(request, month),
        now=utcnow(),
        ai=_ai(request),
    )


@router.get("/overview")
@raises(NotFound)
async def get_spend_overview(
    request: Request,
    session: SessionDep,
    auth: MetricsReader,
    month: MonthParam = None,
    tenant: TenantParam = None,
) -> SpendReport:
    """The dashboard's spend report: an operator's platform (or chosen tenant), else the
    key's own tenant."""
    parsed = _month(request, month)
    tenant_id = await visible_tenant(session, auth, tenant)
    return await service.spend_report(
        session, tenant_id=tenant_id, month=parsed, now=utcnow(), ai=_ai(request)
    )


@router.get("/tenants")
@raises(BadRequest, Forbidden)
async def list_tenant_spend(
    request: Request,
    session: SessionDep,
    auth: MetricsReader,
    page: PageRequestDep,
    month: MonthParam = None,
) -> Page[TenantSpend]:
    """Operators: the month's AI spend per tenant, by tenant id."""
    items, cursor = await service.tenants_page(
        session, auth=auth, month=_month(request, month), now=utcnow(), page=page
    )
    return Page[TenantSpend](items=items, next_cursor=cursor)
