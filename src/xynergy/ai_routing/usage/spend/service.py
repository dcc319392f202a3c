"""Spend reports: one tenant's month, the platform's month, and spend per tenant.

Who sees what: ``ai:usage`` reads the caller's own tenant. ``metrics:read``
reads the dashboard's view: a tenant's key its own tenant, an operator (an
``admin`` key, or ``metrics:read`` on the operator tenant) the whole platform
or any one tenant, and the per-tenant list. Another tenant asked for by a
tenant's key is a 404, as everywhere.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.usage.schemas import nanos_to_usd
from xynergy.ai_routing.usage.spend.months import Month, projected_month_end
from xynergy.ai_routing.usage.spend.repository import Dimension, SpendRepository, SpendSums
from xynergy.ai_routing.usage.spend.schemas import (
    BudgetUse,
    SpendBreakdown,
    SpendDay,
    SpendGroup,
    SpendReport,
    SpendTotals,
    TenantSpend,
)
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.operator import is_operator
from xynergy.platform.exceptions import BadRequest, Forbidden
from xynergy.platform.pagination import PageRequest, encode_keyset_cursor

__all__ = ["spend_report", "tenants_page"]

_PERCENT_PLACES = 2
_TENANT_ID = re.compile(r"[0-9a-f]{32}")


def _totals(sums: SpendSums) -> SpendTotals:
    return SpendTotals(
        requests=sums.requests,
        input_tokens=sums.input_tokens,
        output_tokens=sums.output_tokens,
        cost_usd=nanos_to_usd(sums.cost_nanos),
        saved_usd=nanos_to_usd(sums.saved_nanos),
        cache_hits=sums.cache_hits,
        deduplicated=sums.deduplicated,
        errors=sums.errors,
    )


async def _breakdown(
    repository: SpendRepository,
    dimension: Dimension,
    window: tuple[date, date],
    *,
    total: SpendSums,
    limit: int,
) -> SpendBreakdown:
    groups = await repository.top(dimension, *window, limit)
    listed = SpendSums()
    for _, sums in groups:
        listed = listed.plus(sums)
    rest = total.minus(listed)
    return SpendBreakdown(
        items=[SpendGroup(name=name, **_totals(sums).model_dump()) for name, sums in groups],
        other=_totals(rest) if rest.requests else None,
    )


def _percent(spent: int, limit: int) -> float | None:
    return round(spent * 100 / limit, _PERCENT_PLACES) if limit else None


async def _budgets(
    repository: SpendRepository, window: tuple[date, date], *, total: SpendSums, limit: int
) -> list[BudgetUse]:
    budgets = await repository.month_budgets(limit)
    keys = [subject for subject, _ in budgets if subject]
    per_key = await repository.cost_of_keys(*window, keys)
    uses = []
    for subject, limit_nanos in budgets:
        spent = per_key.get(subject, 0) if subject else total.cost_nanos
        uses.append(
            BudgetUse(
                key_id=subject or None,
                limit_usd=nanos_to_usd(limit_nanos),
                spent_usd=nanos_to_usd(spent),
                percent=_percent(spent, limit_nanos),
            )
        )
    return uses


async def spend_report(
    session: AsyncSession, *, tenant_id: str | None, month: Month, now: datetime, ai: AiSettings
) -> SpendReport:
    """The month's spend of ``tenant_id`` (None: every tenant), as of ``now``."""
    repository = SpendRepository(session, tenant_id)
    window = (month.first, month.until(now.date()))
    top = ai.spend_top_groups
    days = await repository.by_day(*window)
    # Every day of the window is in ``days`` (by_day's LIMIT is the window's length),
    # so their sum is the month's: one scan of the rollup fewer per report.
    total = SpendSums()
    for _, sums in days:
        total = total.plus(sums)
    projected = projected_month_end(total.cost_nanos, month, now)
    tenant_report = tenant_id is not None
    per_key = (
        await _breakdown(repository, "key_id", window, total=total, limit=top)
        if tenant_report
        else None
    )
    return SpendReport(
        month=month.label,
        tenant_id=tenant_id,
        since=month.first,
        until=window[1],
        totals=_totals(total),
        days=[SpendDay(day=day, **_totals(sums).model_dump()) for day, sums in days],
        models=await _breakdown(repository, "model", window, total=total, limit=top),
        tasks=await _breakdown(repository, "task", window, total=total, limit=top),
        keys=per_key,
        tenants=None
        if tenant_report
        else await _breakdown(repository, "tenant_id", window, total=total, limit=top),
        budgets=await _budgets(repository, window, total=total, limit=ai.spend_budgets_max),
        projected_month_end_usd=None if projected is None else nanos_to_usd(projected),
    )


def _after_tenant(page: PageRequest, month: Month) -> str | None:
    """The tenant id a cursor positions after; a cursor names its month, so one from
    another month's list (or anything else) is refused."""
    if page.cursor is None:
        return None
    label, tenant_id = page.after([str, str]) or ("", "")
    if label != month.label or not _TENANT_ID.fullmatch(str(tenant_id)):
        raise BadRequest("The cursor is not one this API issued for this month.")
    return str(tenant_id)


async def tenants_page(
    session: AsyncSession, *, auth: AuthContext, month: Month, now: datetime, page: PageRequest
) -> tuple[list[TenantSpend], str | None]:
    """One page of the month's spend per tenant, by tenant id (operators only)."""
    # A forged cursor is refused (400) whoever sends it, before the operator check.
    after = _after_tenant(page, month)
    if not await is_operator(session, auth):
        raise Forbidden("Spend per tenant is for operators.")
    repository = SpendRepository(session, None)
    rows = await repository.tenants_page(month.first, month.until(now.date()), after, page.limit)
    shown = rows[: page.limit]
    names = await repository.tenant_names([tenant_id for tenant_id, _ in shown])
    cursor = encode_keyset_cursor([month.label, shown[-1][0]]) if len(rows) > page.limit else None
    items = [
        TenantSpend(tenant_id=tenant_id, name=names.get(tenant_id), **_totals(sums).model_dump())
        for tenant_id, sums in shown
    ]
    return items, cursor
