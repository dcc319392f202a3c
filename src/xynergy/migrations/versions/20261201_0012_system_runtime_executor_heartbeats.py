"""system runtime: executor heartbeats (a dead replica's runs are taken over)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "runtime_executors",
        sa.Column("executor_id", sa.String(length=128), nullable=False),
        sa.Column("application_version", sa.String(length=64), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("executor_id", name=op.f("pk_runtime_executors")),
    )


def downgrade() -> None:
    op.drop_table("runtime_executors")
