"""platform: rate-limit rejection rollups; cache evictions on the cache rollups

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "platform_rate_limit_rollups",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("replica_id", sa.String(length=64), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("route", sa.String(length=255), nullable=False),
        sa.Column("rate_class", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=True),
        sa.Column("rejections", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_platform_rate_limit_rollups_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_rate_limit_rollups")),
    )
    op.create_index(
        op.f("ix_platform_rate_limit_rollups_minute"), "platform_rate_limit_rollups", ["minute"]
    )
    op.create_index(
        op.f("ix_platform_rate_limit_rollups_tenant_id_minute"),
        "platform_rate_limit_rollups",
        ["tenant_id", "minute"],
    )
    # A server default fills the rows written before this revision (none evicted then).
    with op.batch_alter_table("platform_cache_rollups") as batch:
        batch.add_column(
            sa.Column("evictions", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("platform_cache_rollups") as batch:
        batch.drop_column("evictions")
    op.drop_index(
        op.f("ix_platform_rate_limit_rollups_tenant_id_minute"),
        table_name="platform_rate_limit_rollups",
    )
    op.drop_index(
        op.f("ix_platform_rate_limit_rollups_minute"), table_name="platform_rate_limit_rollups"
    )
    op.drop_table("platform_rate_limit_rollups")
