"""platform: per-minute metric rollups (requests with latency buckets, cache, AI)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The latency histogram's layout as of this revision (platform/rollups/buckets.py):
# written out here so a later change of the code cannot change this migration.
_LATENCY_BUCKETS = 36
_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _key_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("replica_id", sa.String(length=64), nullable=False),
    ]


def _count(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=False)


def _total(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "platform_request_rollups",
        *_key_columns(),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("route", sa.String(length=255), nullable=False),
        _count("requests"),
        _count("errors_4xx"),
        _count("errors_5xx"),
        _count("rate_limited"),
        _total("latency_sum_us"),
        *(_count(f"latency_b{index:02d}") for index in range(_LATENCY_BUCKETS)),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_request_rollups")),
    )
    op.create_index(
        op.f("ix_platform_request_rollups_minute"), "platform_request_rollups", ["minute"]
    )
    op.create_table(
        "platform_cache_rollups",
        *_key_columns(),
        sa.Column("namespace", sa.String(length=64), nullable=False),
        _count("hits"),
        _count("misses"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_cache_rollups")),
    )
    op.create_index(op.f("ix_platform_cache_rollups_minute"), "platform_cache_rollups", ["minute"])
    op.create_table(
        "platform_ai_rollups",
        *_key_columns(),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        _count("requests"),
        _count("errors"),
        _count("cache_hits"),
        _total("input_tokens"),
        _total("output_tokens"),
        _total("cost_nanos"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_platform_ai_rollups_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_ai_rollups")),
    )
    op.create_index(op.f("ix_platform_ai_rollups_minute"), "platform_ai_rollups", ["minute"])
    op.create_index(
        op.f("ix_platform_ai_rollups_tenant_id_minute"),
        "platform_ai_rollups",
        ["tenant_id", "minute"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_platform_ai_rollups_tenant_id_minute"), table_name="platform_ai_rollups")
    op.drop_index(op.f("ix_platform_ai_rollups_minute"), table_name="platform_ai_rollups")
    op.drop_table("platform_ai_rollups")
    op.drop_index(op.f("ix_platform_cache_rollups_minute"), table_name="platform_cache_rollups")
    op.drop_table("platform_cache_rollups")
    op.drop_index(op.f("ix_platform_request_rollups_minute"), table_name="platform_request_rollups")
    op.drop_table("platform_request_rollups")
