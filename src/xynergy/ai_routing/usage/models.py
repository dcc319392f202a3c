"""ORM models of the usage ledger and budgets. Every row carries its tenant."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from xynergy.platform.db.base import Base, UTCDateTime, new_id, utcnow

__all__ = [
    "MODEL_MAX_CHARS",
    "PROVIDER_MAX_CHARS",
    "REQUEST_ID_MAX_CHARS",
    "STATUS_MAX_CHARS",
    "TASK_MAX_CHARS",
    "BudgetCounter",
    "BudgetLimit",
    "UsageDailyRow",
    "UsageEventRow",
]

_TENANT_FK = "tenants.id"

# Column widths; the ledger clips longer values rather than lose a whole batch.
REQUEST_ID_MAX_CHARS = 1024  # the largest request_id_max_length settings allow
TASK_MAX_CHARS = 64
MODEL_MAX_CHARS = 200
PROVIDER_MAX_CHARS = 64
STATUS_MAX_CHARS = 16


class UsageEventRow(Base):
    """One billed AI request. ``day`` is the UTC day of ``occurred_at``, for GROUP BY."""

    __tablename__ = "ai_usage_events"
    __table_args__ = (Index(None, "tenant_id", "day"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey(_TENANT_FK, ondelete="CASCADE"))
    # No foreign key: the ledger is a billing record and outlives a key's row.
    key_id: Mapped[str | None] = mapped_column(String(32))
    request_id: Mapped[str] = mapped_column(String(REQUEST_ID_MAX_CHARS))
    task: Mapped[str] = mapped_column(String(TASK_MAX_CHARS))
    model: Mapped[str] = mapped_column(String(MODEL_MAX_CHARS))
    provider: Mapped[str] = mapped_column(String(PROVIDER_MAX_CHARS))
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    cost_nanos: Mapped[int] = mapped_column(BigInteger)
    # What a cache hit or a joined call would have cost (catalogue price x the
    # answer's tokens); 0 for calls that reached a provider.
    saved_nanos: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    cache_hit: Mapped[bool] = mapped_column(Boolean)
    deduplicated: Mapped[bool] = mapped_column(Boolean)
    latency_ms: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(STATUS_MAX_CHARS))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    day: Mapped[date] = mapped_column(Date)


def _sum_column() -> Mapped[int]:
    return mapped_column(BigInteger, default=0)


class UsageDailyRow(Base):
    """The ledger summed per tenant, UTC day, key, model and task.

    The ledger writer adds each batch's sums here in the transaction that inserts
    the batch, so these rows always equal the ledger's sums; cost reports scan
    days x groups of this table, never the events.
    """

    __tablename__ = "ai_usage_daily"
    # The primary key serves one tenant's day ranges; this index the platform's.
    __table_args__ = (Index(None, "day"),)

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey(_TENANT_FK, ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    # "" rather than NULL for calls without a key: NULLs never conflict in a key.
    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(MODEL_MAX_CHARS), primary_key=True)
    task: Mapped[str] = mapped_column(String(TASK_MAX_CHARS), primary_key=True)
    requests: Mapped[int] = _sum_column()
    input_tokens: Mapped[int] = _sum_column()
    output_tokens: Mapped[int] = _sum_column()
    cost_nanos: Mapped[int] = _sum_column()
    saved_nanos: Mapped[int] = _sum_column()
    cache_hits: Mapped[int] = _sum_column()
    deduplicated: Mapped[int] = _sum_column()
    errors: Mapped[int] = _sum_column()


class BudgetLimit(Base):
    """A spending limit for one period: the whole tenant's (subject "") or one key's."""

    __tablename__ = "ai_budgets"
    __table_args__ = (
        UniqueConstraint("tenant_id", "subject", "period"),
        Index(None, "tenant_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey(_TENANT_FK, ondelete="CASCADE"))
    # "" rather than NULL: NULLs are distinct in a unique constraint.
    subject: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(8))
    limit_nanos: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BudgetCounter(Base):
    """Spend reserved and settled against one budget in one period (without Redis)."""

    __tablename__ = "ai_budget_counters"
    __table_args__ = (UniqueConstraint("tenant_id", "subject", "period", "period_start"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey(_TENANT_FK, ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(8))
    period_start: Mapped[date] = mapped_column(Date)
    spent_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
