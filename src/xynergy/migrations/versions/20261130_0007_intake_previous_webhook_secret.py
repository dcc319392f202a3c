"""intake previous webhook secret

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns, no default: existing forms have no previous secret.
    with op.batch_alter_table("intake_forms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_webhook_secret", sa.String(length=128)))
        batch_op.add_column(
            sa.Column("previous_webhook_secret_expires_at", sa.DateTime(timezone=True))
        )


def downgrade() -> None:
    with op.batch_alter_table("intake_forms", schema=None) as batch_op:
        batch_op.drop_column("previous_webhook_secret_expires_at")
        batch_op.drop_column("previous_webhook_secret")
