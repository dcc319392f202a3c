"""Usage and budgets endpoints of the AI Routing Engine."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Depends, Query, Request

from xynergy.ai_routing.usage import service
from xynergy.ai_routing.usage.budgets import BudgetGuard
from xynergy.ai_routing.usage.periods import Period
from xynergy.ai_routing.usage.schemas import KEY_ID_PATTERN, Budget, BudgetSet, UsageReport
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import SessionDep
from xynergy.platform.exceptions import NotFound, ValidationFailed
from xynergy.platform.pagination import PageParamsDep
from xynergy.platform.routing import api_router, raises
from xynergy.platform.schemas import Page

__all__ = ["BudgetsWriter", "UsageReader", "router"]

router = api_router(prefix="/api", tags=["usage"])

UsageReader = Annotated[AuthContext, Depends(require_scopes("ai:usage"))]
BudgetsWriter = Annotated[AuthContext, Depends(require_scopes("ai:budgets"))]

_ISO_DAY = r"^\d{4}-\d{2}-\d{2}$"
DayParam = Annotated[
    str | None, Query(min_length=10, max_length=10, pattern=_ISO_DAY, description="YYYY-MM-DD.")
]
KeyIdParam = Annotated[
    str | None, Query(min_length=32, max_length=32, pattern=KEY_ID_PATTERN, description="A key id.")
]


def _guard(request: Request) -> BudgetGuard:
    guard: BudgetGuard = request.app.state.ai.budgets
    return guard


def _day(name: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValidationFailed(f"{name}: not a calendar date (YYYY-MM-DD).") from exc


@router.get("/usage")
async def get_usage(
    request: Request,
    session: SessionDep,
    auth: UsageReader,
    since: DayParam = None,
    until: DayParam = None,
) -> UsageReport:
    """The tenant's AI usage per UTC day, model and task (default: the last 30 days)."""
    ai = _guard(request).ai
    first, last = service.report_window(
        since=_day("since", since), until=_day("until", until), ai=ai, today=utcnow().date()
    )
    return await service.usage_report(
        session, tenant_id=auth.tenant_id, since=first, until=last, ai=ai
    )


@router.get("/budgets")
async def list_budgets(
    request: Request, session: SessionDep, params: PageParamsDep, auth: UsageReader
) -> Page[Budget]:
    """The tenant's budgets with the current period's spend, newest first."""
    items, cursor = await service.list_budgets(
        session, tenant_id=auth.tenant_id, params=params, guard=_guard(request)
    )
    return Page[Budget](items=items, next_cursor=cursor)


@router.put("/budgets")
@raises(NotFound)
async def set_budget(
    body: BudgetSet, request: Request, session: SessionDep, auth: BudgetsWriter
) -> Budget:
    """Set the tenant's (or one of its keys') spending limit for a day or a month."""
    return await service.set_budget(
        session, tenant_id=auth.tenant_id, data=body, guard=_guard(request)
    )


@router.delete("/budgets/{period}", status_code=204)
async def delete_budget(
    period: Period,
    request: Request,
    session: SessionDep,
    auth: BudgetsWriter,
    key_id: KeyIdParam = None,
) -> None:
    """Remove the tenant's budget for a period (or one key's, with ?key_id=)."""
    await service.delete_budget(
        session, tenant_id=auth.tenant_id, period=period, key_id=key_id, guard=_guard(request)
    )
