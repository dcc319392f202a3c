"""ai routing usage and budgets

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 14:23:18.631300
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ai_budget_counters",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("spent_nanos", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_ai_budget_counters_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_budget_counters")),
        sa.UniqueConstraint(
            "tenant_id",
            "subject",
            "period",
            "period_start",
            name=op.f("uq_ai_budget_counters_tenant_id_subject_period_period_start"),
        ),
    )
    op.create_table(
        "ai_budgets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("limit_nanos", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_ai_budgets_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_budgets")),
        sa.UniqueConstraint(
            "tenant_id", "subject", "period", name=op.f("uq_ai_budgets_tenant_id_subject_period")
        ),
    )
    with op.batch_alter_table("ai_budgets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ai_budgets_tenant_id_created_at_id"),
            ["tenant_id", "created_at", "id"],
            unique=False,
        )

    op.create_table(
        "ai_usage_events",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=True),
        sa.Column("request_id", sa.String(length=1024), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_nanos", sa.BigInteger(), nullable=False),
        sa.Column("cache_hit", sa.Boolean(), nullable=False),
        sa.Column("deduplicated", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_ai_usage_events_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_usage_events")),
    )
    with op.batch_alter_table("ai_usage_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ai_usage_events_tenant_id_day"), ["tenant_id", "day"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ai_usage_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ai_usage_events_tenant_id_day"))

    op.drop_table("ai_usage_events")
    with op.batch_alter_table("ai_budgets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ai_budgets_tenant_id_created_at_id"))

    op.drop_table("ai_budgets")
    op.drop_table("ai_budget_counters")
