"""All SQL of the spend reports. Every query reads the daily rollup (never the
ledger's events) over a bounded day range, and is an aggregate or LIMITed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.ai_routing.usage.models import BudgetLimit, UsageDailyRow
from xynergy.ai_routing.usage.repository import DAILY_SUMS
from xynergy.platform.tenancy.models import Tenant

__all__ = ["Dimension", "SpendRepository", "SpendSums"]

Dimension = Literal["key_id", "model", "task", "tenant_id"]
_MONTH_PERIOD = "month"


@dataclass(frozen=True, slots=True)
class SpendSums:
    """The daily rollup's sums over a set of its rows."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_nanos: int = 0
    saved_nanos: int = 0
    cache_hits: int = 0
    deduplicated: int = 0
    errors: int = 0

    def minus(self, other: SpendSums) -> SpendSums:
        return SpendSums(*(getattr(self, n) - getattr(other, n) for n in DAILY_SUMS))

    def plus(self, other: SpendSums) -> SpendSums:
        return SpendSums(*(getattr(self, n) + getattr(other, n) for n in DAILY_SUMS))


def _sum_columns() -> list[Any]:
    # SUM of a BIGINT is NUMERIC on PostgreSQL; values are int()-ed below.
    return [func.coalesce(func.sum(getattr(UsageDailyRow, name)), 0) for name in DAILY_SUMS]


def _sums(values: Sequence[Any]) -> SpendSums:
    return SpendSums(*(int(value) for value in values))


class SpendRepository:
    """Sums of one tenant's rollup rows (``tenant_id``), or every tenant's (None)."""

    def __init__(self, session: AsyncSession, tenant_id: str | None) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def _where(self, since: date, until: date) -> list[ColumnElement[bool]]:
        daily = UsageDailyRow
        clauses = [daily.day >= since, daily.day <= until]
        if self.tenant_id is not None:
            clauses.append(daily.tenant_id == self.tenant_id)
        return clauses

    def _select(self, *columns: Any, since: date, until: date) -> Select[Any]:
        return select(*columns, *_sum_columns()).where(*self._where(since, until))

    async def by_day(self, since: date, until: date) -> list[tuple[date, SpendSums]]:
        """Sums per day of ``[since, until]`` that has any, in day order."""
        day = UsageDailyRow.day
        query = (
            self._select(day, since=since, until=until)
            .group_by(day)
            .order_by(day)
            .limit((until - since).days + 1)
        )
        rows = (await self.session.execute(query)).all()
        return [(row[0], _sums(row[1:])) for row in rows]

    async def top(
        self, dimension: Dimension, since: date, until: date, limit: int
    ) -> list[tuple[str, SpendSums]]:
        """The ``limit`` groups of ``dimension`` that cost most (ties by name)."""
        column = getattr(UsageDailyRow, dimension)
        cost = func.sum(UsageDailyRow.cost_nanos)
        query = (
            self._select(column, since=since, until=until)
            .group_by(column)
            .order_by(cost.desc(), column)
            .limit(limit)
        )
        rows = (await self.session.execute(query)).all()
        return [(row[0], _sums(row[1:])) for row in rows]

    async def cost_of_keys(
        self, since: date, until: date, key_ids: Sequence[str]
    ) -> dict[str, int]:
        """The cost per key of ``key_ids`` (absent: nothing spent)."""
        if not key_ids:
            return {}
        key = UsageDailyRow.key_id
        query = (
            select(key, func.coalesce(func.sum(UsageDailyRow.cost_nanos), 0))
            .where(*self._where(since, until), key.in_(key_ids))
            .group_by(key)
            .limit(len(key_ids))
        )
        return {row[0]: int(row[1]) for row in (await self.session.execute(query)).all()}

    async def month_budgets(self, limit: int) -> list[tuple[str, int]]:
        """(subject, limit_nanos) of the tenant's month budgets: "" (the tenant's) first."""
        if self.tenant_id is None:
            return []
        query = (
            select(BudgetLimit.subject, BudgetLimit.limit_nanos)
            .where(BudgetLimit.tenant_id == self.tenant_id, BudgetLimit.period == _MONTH_PERIOD)
            .order_by(BudgetLimit.subject)
            .limit(limit)
        )
        return [(row[0], int(row[1])) for row in (await self.session.execute(query)).all()]

    async def tenants_page(
        self, since: date, until: date, after: str | None, limit: int
    ) -> list[tuple[str, SpendSums]]:
        """Sums per tenant in tenant id order after ``after``; one extra row tells a next page."""
        tenant = UsageDailyRow.tenant_id
        query = self._select(tenant, since=since, until=until)
        if after is not None:
            query = query.where(tenant > after)
        query = query.group_by(tenant).order_by(tenant).limit(limit + 1)
        rows = (await self.session.execute(query)).all()
        return [(row[0], _sums(row[1:])) for row in rows]

    async def tenant_names(self, tenant_ids: Sequence[str]) -> dict[str, str]:
        """Names of ``tenant_ids`` (a deleted tenant's rows went with it)."""
        if not tenant_ids:
            return {}
        query = select(Tenant.id, Tenant.name).where(Tenant.id.in_(tenant_ids))
        query = query.limit(len(tenant_ids))
        return {row[0]: row[1] for row in (await self.session.execute(query)).all()}
