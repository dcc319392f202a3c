"""All SQL of the usage ledger, the usage report, budgets and budget counters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, and_, case, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.ai_routing.usage.models import (
    BudgetCounter,
    BudgetLimit,
    UsageDailyRow,
    UsageEventRow,
)
from xynergy.ai_routing.usage.periods import BudgetCounterRef, Period
from xynergy.platform.db.base import new_id
from xynergy.platform.db.upsert import dialect_insert
from xynergy.platform.pagination import PageParams, keyset_page
from xynergy.platform.tenancy.models import ApiKey

__all__ = [
    "DAILY_SUMS",
    "BudgetCounterRepository",
    "BudgetRepository",
    "UsageAggregate",
    "UsageRepository",
]

_EVENTS = cast(Table, UsageEventRow.__table__)
_BUDGETS = cast(Table, BudgetLimit.__table__)
_COUNTERS = cast(Table, BudgetCounter.__table__)
# The advisory lock key of budget counter writers (PostgreSQL): any fixed bigint
# no other lock of this database uses.
_COUNTER_WRITERS_LOCK = 0x7879_6E62_7564_6774  # "xynbudgt"
_DAILY = cast(Table, UsageDailyRow.__table__)
# The daily rollup's summed columns; a batch's sums are added to them.
DAILY_SUMS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cost_nanos",
    "saved_nanos",
    "cache_hits",
    "deduplicated",
    "errors",
)


@dataclass(frozen=True, slots=True)
class UsageAggregate:
    """Sums over a set of usage events (a group, or the whole window)."""

    requests: int
    input_tokens: int
    output_tokens: int
    cost_nanos: int
    cache_hits: int
    deduplicated: int
    errors: int


def _count_true(column: Any) -> Any:
    return func.coalesce(func.sum(case((column, 1), else_=0)), 0)


def _sums() -> list[Any]:
    events = UsageEventRow
    # SUM of a BIGINT is NUMERIC on PostgreSQL; results are int()-ed below.
    return [
        func.count(),
        func.coalesce(func.sum(events.input_tokens), 0),
        func.coalesce(func.sum(events.output_tokens), 0),
        func.coalesce(func.sum(events.cost_nanos), 0),
        _count_true(events.cache_hit),
        _count_true(events.deduplicated),
        _count_true(events.status != "ok"),
    ]


def _aggregate(values: Sequence[Any]) -> UsageAggregate:
    return UsageAggregate(*(int(value) for value in values))


class UsageRepository:
    """The ledger's rows: batch inserts and the per-tenant report."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ``rows`` with one executemany statement."""
        await self.session.execute(insert(_EVENTS), list(rows))

    async def add_daily(self, sums: Sequence[dict[str, Any]]) -> None:
        """Add each group's ``sums`` to its daily-rollup row, creating it at first."""
        if not sums:
            return
        statement = dialect_insert(self.session, _DAILY)
        statement = statement.on_conflict_do_update(
            index_elements=[column.name for column in _DAILY.primary_key.columns],
            set_={name: _DAILY.c[name] + statement.excluded[name] for name in DAILY_SUMS},
        )
        await self.session.execute(statement, list(sums))

    async def grouped(
        self, tenant_id: str, since: date, until: date, limit: int
    ) -> list[tuple[date, str, str, UsageAggregate]]:
        """Sums per (day, model, task) in ``[since, until]``, at most ``limit`` groups."""
        events = UsageEventRow
        query = (
            select(events.day, events.model, events.task, *_sums())
            .where(events.tenant_id == tenant_id, events.day >= since, events.day <= until)
            .group_by(events.day, events.model, events.task)
            .order_by(events.day, events.model, events.task)
            .limit(limit)
        )
        result = await self.session.execute(query)
        return [(row[0], row[1], row[2], _aggregate(row[3:])) for row in result.all()]

    async def totals(self, tenant_id: str, since: date, until: date) -> UsageAggregate:
        """Sums over every event of the tenant in ``[since, until]``."""
        events = UsageEventRow
        query = select(*_sums()).where(
            events.tenant_id == tenant_id, events.day >= since, events.day <= until
        )
        return _aggregate((await self.session.execute(query)).one())


class BudgetRepository:
    """The tenant's budget limits; every query is filtered by tenant."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def key_belongs_to(self, key_id: str, tenant_id: str) -> bool:
        query = select(ApiKey.id).where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id)
        return (await self.session.scalar(query)) is not None

    async def limits_for(
        self, tenant_id: str, subjects: Sequence[str]
    ) -> list[tuple[str, Period, int]]:
        """(subject, period, limit_nanos) of the tenant's budgets on ``subjects``."""
        query = (
            select(BudgetLimit.subject, BudgetLimit.period, BudgetLimit.limit_nanos)
            .where(BudgetLimit.tenant_id == tenant_id, BudgetLimit.subject.in_(subjects))
            .limit(len(subjects) * 2)  # one per period
        )
        rows = (await self.session.execute(query)).all()
        return [(subject, cast(Period, period), limit) for subject, period, limit in rows]

    async def page(self, tenant_id: str, params: PageParams) -> Sequence[BudgetLimit]:
        query = keyset_page(
            select(BudgetLimit).where(BudgetLimit.tenant_id == tenant_id),
            created_column=BudgetLimit.created_at,
            id_column=BudgetLimit.id,
            params=params,
        )
        return (await self.session.scalars(query)).all()

    async def upsert(
        self, *, tenant_id: str, subject: str, period: Period, limit_nanos: int, now: datetime
    ) -> BudgetLimit:
        """Create the budget or change its limit; the stored row."""
        statement = dialect_insert(self.session, _BUDGETS).values(
            id=new_id(),
            tenant_id=tenant_id,
            subject=subject,
            period=period,
            limit_nanos=limit_nanos,
            created_at=now,
            updated_at=now,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["tenant_id", "subject", "period"],
            set_={"limit_nanos": limit_nanos, "updated_at": now},
        )
        await self.session.execute(statement)
        stored = await self.session.scalar(
            select(BudgetLimit)
            .where(
                BudgetLimit.tenant_id == tenant_id,
                BudgetLimit.subject == subject,
                BudgetLimit.period == period,
            )
            .execution_options(populate_existing=True)
        )
        assert stored is not None  # noqa: S101 - written just above in this transaction
        return stored

    async def delete(self, *, tenant_id: str, subject: str, period: Period) -> bool:
        """Delete one budget; False when the tenant has no such budget."""
        result = await self.session.execute(
            delete(BudgetLimit)
            .where(
                BudgetLimit.tenant_id == tenant_id,
                BudgetLimit.subject == subject,
                BudgetLimit.period == period,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))


class BudgetCounterRepository:
    """Spend counters for SQL mode (no Redis)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def serialise_writers(self) -> None:
        """On PostgreSQL, wait for any other replica's counter transaction to end.

        A batch of the SQL store touches many tenants' counters in arrival order,
        which two replicas could lock in opposite orders (a deadlock, one batch
        aborted). One transaction-scoped advisory lock orders the batches instead;
        SQLite has a single writer already.
        """
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(select(func.pg_advisory_xact_lock(_COUNTER_WRITERS_LOCK)))

    async def ensure(self, tenant_id: str, counters: Sequence[BudgetCounterRef]) -> None:
        """Create the counters that do not exist yet, at zero."""
        rows = [
            {
                "id": new_id(),
                "tenant_id": tenant_id,
                "subject": counter.subject,
                "period": counter.period,
                "period_start": counter.start,
                "spent_nanos": 0,
            }
            for counter in counters
        ]
        statement = (
            dialect_insert(self.session, _COUNTERS)
            .values(rows)
            .on_conflict_do_nothing(
                index_elements=["tenant_id", "subject", "period", "period_start"]
            )
        )
        await self.session.execute(statement)

    def _where(self, tenant_id: str, counter: BudgetCounterRef) -> Any:
        return and_(
            BudgetCounter.tenant_id == tenant_id,
            BudgetCounter.subject == counter.subject,
            BudgetCounter.period == counter.period,
            BudgetCounter.period_start == counter.start,
        )

    async def add_within_limit(
        self, tenant_id: str, counter: BudgetCounterRef, amount: int
    ) -> bool:
        """Add ``amount`` unless that takes the counter past its limit; whether added."""
        spent = BudgetCounter.spent_nanos
        result = await self.session.execute(
            update(BudgetCounter)
            .where(self._where(tenant_id, counter), spent + amount <= counter.limit_nanos)
            .values(spent_nanos=spent + amount)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def add(self, tenant_id: str, counter: BudgetCounterRef, amount: int) -> None:
        """Add ``amount`` (may be negative) whatever the limit."""
        await self.session.execute(
            update(BudgetCounter)
            .where(self._where(tenant_id, counter))
            .values(spent_nanos=BudgetCounter.spent_nanos + amount)
            .execution_options(synchronize_session=False)
        )

    async def spent(self, tenant_id: str, counters: Sequence[BudgetCounterRef]) -> list[int]:
        """The spend on each of ``counters`` (0 where none exists), in order."""
        if not counters:
            return []
        query = (
            select(
                BudgetCounter.subject,
                BudgetCounter.period,
                BudgetCounter.period_start,
                BudgetCounter.spent_nanos,
            )
            .where(
                BudgetCounter.tenant_id == tenant_id,
                or_(
                    *(
                        and_(
                            BudgetCounter.subject == counter.subject,
                            BudgetCounter.period == counter.period,
                            BudgetCounter.period_start == counter.start,
                        )
                        for counter in counters
                    )
                ),
            )
            .limit(len(counters))
        )
        found = {
            (subject, period, start): int(spent)
            for subject, period, start, spent in (await self.session.execute(query)).all()
        }
        return [found.get((c.subject, c.period, c.start), 0) for c in counters]
