"""Usage report and budget operations. Functions only flush."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.usage.budgets import BudgetGuard
from xynergy.ai_routing.usage.models import BudgetLimit
from xynergy.ai_routing.usage.periods import BudgetCounterRef, Period, period_start
from xynergy.ai_routing.usage.repository import BudgetRepository, UsageAggregate, UsageRepository
from xynergy.ai_routing.usage.schemas import (
    Budget,
    BudgetSet,
    UsageReport,
    UsageRow,
    UsageTotals,
    nanos_to_usd,
    usd_to_nanos,
)
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import on_commit
from xynergy.platform.exceptions import NotFound, ValidationFailed
from xynergy.platform.pagination import PageParams, split_page

__all__ = [
    "DEFAULT_WINDOW_DAYS",
    "delete_budget",
    "list_budgets",
    "report_window",
    "set_budget",
    "usage_report",
]

# The report's window when none is asked for: the last 30 days, today included.
DEFAULT_WINDOW_DAYS = 30
_TENANT_SUBJECT = ""


def _totals(aggregate: UsageAggregate) -> UsageTotals:
    return UsageTotals(
        requests=aggregate.requests,
        input_tokens=aggregate.input_tokens,
        output_tokens=aggregate.output_tokens,
        cost_usd=nanos_to_usd(aggregate.cost_nanos),
        cache_hits=aggregate.cache_hits,
        deduplicated=aggregate.deduplicated,
        errors=aggregate.errors,
    )


def report_window(
    *, since: date | None, until: date | None, ai: AiSettings, today: date
) -> tuple[date, date]:
    """The inclusive window ``[since, until]``, defaults applied and bounds checked."""
    until = until or today
    since = since or until - timedelta(days=min(DEFAULT_WINDOW_DAYS, ai.usage_max_days) - 1)
    if since > until:
        raise ValidationFailed("since must not be after until.")
    if (until - since).days + 1 > ai.usage_max_days:
        raise ValidationFailed(f"The window may span at most {ai.usage_max_days} days.")
    return since, until


async def usage_report(
    session: AsyncSession, *, tenant_id: str, since: date, until: date, ai: AiSettings
) -> UsageReport:
    """The tenant's usage in ``[since, until]``: totals and per day/model/task rows."""
    repository = UsageRepository(session)
    groups = await repository.grouped(tenant_id, since, until, ai.usage_max_rows + 1)
    totals = await repository.totals(tenant_id, since, until)
    rows = [
        UsageRow(day=day, model=model, task=task, **_totals(aggregate).model_dump())
        for day, model, task, aggregate in groups[: ai.usage_max_rows]
    ]
    return UsageReport(
        since=since,
        until=until,
        totals=_totals(totals),
        rows=rows,
        truncated=len(groups) > ai.usage_max_rows,
    )


async def _shape(
    guard: BudgetGuard, tenant_id: str, budgets: Sequence[BudgetLimit], now: datetime
) -> list[Budget]:
    counters = [
        BudgetCounterRef(
            budget.subject,
            period := _period(budget.period),
            period_start(period, now),
            budget.limit_nanos,
        )
        for budget in budgets
    ]
    spent = await guard.current_spend(tenant_id, counters)
    return [
        Budget(
            period=counter.period,
            key_id=budget.subject or None,
            limit_usd=nanos_to_usd(budget.limit_nanos),
            spent_usd=nanos_to_usd(used),
            remaining_usd=nanos_to_usd(max(0, budget.limit_nanos - used)),
            period_start=counter.start,
            resets_at=counter.resets_at,
            updated_at=budget.updated_at,
        )
        for budget, counter, used in zip(budgets, counters, spent, strict=True)
    ]


def _period(value: str) -> Period:
    if value == "day":
        return "day"
    if value == "month":
        return "month"
    raise ValueError(f"unknown budget period {value!r}")


async def list_budgets(
    session: AsyncSession, *, tenant_id: str, params: PageParams, guard: BudgetGuard
) -> tuple[list[Budget], str | None]:
    """One page of the tenant's budgets with the current period's spend, oldest last."""
    rows = await BudgetRepository(session).page(tenant_id, params)
    page, cursor = split_page(rows, params, lambda b: (b.created_at, b.id))
    return await _shape(guard, tenant_id, page, utcnow()), cursor


async def set_budget(
    session: AsyncSession, *, tenant_id: str, data: BudgetSet, guard: BudgetGuard
) -> Budget:
    """Create or change a budget; another tenant's key id is NotFound."""
    repository = BudgetRepository(session)
    if data.key_id is not None and not await repository.key_belongs_to(data.key_id, tenant_id):
        raise NotFound("No such key.")
    now = utcnow()
    budget = await repository.upsert(
        tenant_id=tenant_id,
        subject=data.key_id or _TENANT_SUBJECT,
        period=data.period,
        limit_nanos=usd_to_nanos(data.limit_usd),
        now=now,
    )
    on_commit(session, lambda: guard.invalidate(tenant_id))
    (shaped,) = await _shape(guard, tenant_id, [budget], now)
    return shaped


async def delete_budget(
    session: AsyncSession,
    *,
    tenant_id: str,
    period: Period,
    key_id: str | None,
    guard: BudgetGuard,
) -> None:
    """Remove a budget; NotFound when the tenant has none for that period (and key)."""
    deleted = await BudgetRepository(session).delete(
        tenant_id=tenant_id, subject=key_id or _TENANT_SUBJECT, period=period
    )
    if not deleted:
        raise NotFound("No such budget.")
    on_commit(session, lambda: guard.invalidate(tenant_id))
