"""ai-routing-engine: cache savings on the ledger and its daily rollup (spend reports)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SUMS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cost_nanos",
    "saved_nanos",
    "cache_hits",
    "deduplicated",
    "errors",
)
_GROUP = ("tenant_id", "day", "key_id", "model", "task")


def upgrade() -> None:
    with op.batch_alter_table("ai_usage_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("saved_nanos", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
        )
    op.create_table(
        "ai_usage_daily",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _SUMS),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_ai_usage_daily_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(*_GROUP, name=op.f("pk_ai_usage_daily")),
    )
    op.create_index(op.f("ix_ai_usage_daily_day"), "ai_usage_daily", ["day"], unique=False)
    _backfill()


def _backfill() -> None:
    """The rollup of every ledger row written before this revision: one INSERT ... SELECT
    (a single pass over what exists, grouped in the database)."""
    events = sa.table(
        "ai_usage_events",
        *(sa.column(name) for name in ("tenant_id", "day", "key_id", "model", "task")),
        sa.column("input_tokens"),
        sa.column("output_tokens"),
        sa.column("cost_nanos"),
        sa.column("cache_hit"),
        sa.column("deduplicated"),
        sa.column("status"),
    )
    daily = sa.table("ai_usage_daily", *(sa.column(name) for name in (*_GROUP, *_SUMS)))

    def count_true(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    key = sa.func.coalesce(events.c.key_id, "")
    grouped = sa.select(
        events.c.tenant_id,
        events.c.day,
        key,
        events.c.model,
        events.c.task,
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(events.c.input_tokens), 0),
        sa.func.coalesce(sa.func.sum(events.c.output_tokens), 0),
        sa.func.coalesce(sa.func.sum(events.c.cost_nanos), 0),
        sa.literal(0),  # no savings were recorded before this revision
        count_true(events.c.cache_hit == sa.true()),
        count_true(events.c.deduplicated == sa.true()),
        count_true(events.c.status != "ok"),
    ).group_by(events.c.tenant_id, events.c.day, key, events.c.model, events.c.task)
    op.execute(daily.insert().from_select([*_GROUP, *_SUMS], grouped))


def downgrade() -> None:
    op.drop_index(op.f("ix_ai_usage_daily_day"), table_name="ai_usage_daily")
    op.drop_table("ai_usage_daily")
    with op.batch_alter_table("ai_usage_events", schema=None) as batch_op:
        batch_op.drop_column("saved_nanos")
