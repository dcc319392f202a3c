"""GET /api/cost and GET /api/cost/tenants: AI spend for the dashboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from pydantic import ValidationError

from xynergy.platform.exceptions import (
    BadRequest,
    Forbidden,
    NotFound,
    UpstreamUnavailable,
    ValidationFailed,
)
from xynergy.platform.pagination import PageRequestDep
from xynergy.platform.routing import api_router, raises
from xynergy.platform.schemas import Page
from xynergy.platform_dashboard.auth import MetricsReader
from xynergy.platform_dashboard.cost.client import read_spend
from xynergy.platform_dashboard.cost.schemas import CostReport, TenantCost

__all__ = ["router"]

router = api_router(prefix="/api/cost", tags=["cost"])

MonthParam = Annotated[
    str | None,
    Query(
        min_length=7,
        max_length=7,
        pattern=r"^\d{4}-\d{2}$",
        description="YYYY-MM (UTC); default: the current month.",
    ),
]
TenantParam = Annotated[
    str | None,
    Query(
        min_length=32,
        max_length=32,
        pattern=r"^[0-9a-f]{32}$",
        description="Operators: one tenant; omitted: all.",
    ),
]


def _params(**values: str | int | None) -> dict[str, str]:
    return {name: str(value) for name, value in values.items() if value is not None}


@router.get("")
@raises(NotFound, ValidationFailed, UpstreamUnavailable)
async def get_cost(
    request: Request, auth: MetricsReader, month: MonthParam = None, tenant: TenantParam = None
) -> CostReport:
    """AI spend for a month: per day, model, task and key (or tenant), budgets, the
    projected month end and cache savings."""
    body = await read_spend(
        request.app.state.platform.services,
        caller=auth,
        path="/api/spend/overview",
        params=_params(month=month, tenant=tenant),
    )
    try:
        return CostReport.model_validate(body)
    except ValidationError as exc:
        raise UpstreamUnavailable("The AI Routing Engine's spend report was malformed.") from exc


@router.get("/tenants")
@raises(BadRequest, Forbidden, ValidationFailed, UpstreamUnavailable)
async def list_tenant_costs(
    request: Request, auth: MetricsReader, page: PageRequestDep, month: MonthParam = None
) -> Page[TenantCost]:
    """Operators: the month's AI spend per tenant, by tenant id."""
    body = await read_spend(
        request.app.state.platform.services,
        caller=auth,
        path="/api/spend/tenants",
        params=_params(month=month, limit=page.limit, cursor=page.cursor),
    )
    try:
        return Page[TenantCost].model_validate(body)
    except ValidationError as exc:
        raise UpstreamUnavailable("The AI Routing Engine's tenant list was malformed.") from exc
