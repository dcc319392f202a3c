"""platform: one transactional outbox for every service's signed webhooks

Creates ``platform_outbox`` (a message names its destination by source kind and
id, resolved at delivery time), copies every ``intake_outbox`` row into it as
source kind ``intake-form`` (pending rows keep their attempts, schedule and
lease; delivered and failed rows keep their history), then drops
``intake_outbox``: nothing reads or writes it any more, and a second copy would
only drift from the first.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INTAKE_FORM = "intake-form"
# Columns both tables have, in the same meaning.
_SHARED = (
    "id",
    "tenant_id",
    "event",
    "payload",
    "attempts",
    "next_attempt_at",
    "locked_until",
    "delivered_at",
    "failed_at",
    "last_error",
    "created_at",
)


def _table(name: str, *columns: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(column) for column in columns))


def upgrade() -> None:
    op.create_table(
        "platform_outbox",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("source_kind", sa.String(length=32), nullable=False),
        sa.Column("source_id", sa.String(length=32), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_platform_outbox_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_outbox")),
    )
    with op.batch_alter_table("platform_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_platform_outbox_delivered_at_next_attempt_at"),
            ["delivered_at", "next_attempt_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_platform_outbox_source_kind_source_id"),
            ["source_kind", "source_id"],
            unique=False,
        )

    # One INSERT … SELECT on the server: no row passes through Python.
    old = _table("intake_outbox", *_SHARED, "form_id")
    new = _table("platform_outbox", *_SHARED, "source_kind", "source_id")
    rows = sa.select(
        *(old.c[name] for name in _SHARED),
        sa.literal(_INTAKE_FORM, sa.String()).label("source_kind"),
        old.c.form_id.label("source_id"),
    )
    op.execute(new.insert().from_select([*_SHARED, "source_kind", "source_id"], rows))

    with op.batch_alter_table("intake_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intake_outbox_delivered_at_next_attempt_at"))
    op.drop_table("intake_outbox")


def downgrade() -> None:
    op.create_table(
        "intake_outbox",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("form_id", sa.String(length=32), nullable=False),
        sa.Column("submission_id", sa.String(length=32), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["form_id"],
            ["intake_forms.id"],
            name=op.f("fk_intake_outbox_form_id_intake_forms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_intake_outbox_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_outbox")),
    )
    with op.batch_alter_table("intake_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_intake_outbox_delivered_at_next_attempt_at"),
            ["delivered_at", "next_attempt_at"],
            unique=False,
        )
    # The intake's messages go back, for forms that still exist (the old foreign
    # key). The submission id lived only in the payload: the old column gets the
    # message id, which nothing read for delivery.
    new = _table("platform_outbox", *_SHARED, "source_kind", "source_id")
    forms = _table("intake_forms", "id")
    old = _table("intake_outbox", *_SHARED, "form_id", "submission_id")
    rows = sa.select(
        *(new.c[name] for name in _SHARED),
        new.c.source_id.label("form_id"),
        new.c.id.label("submission_id"),
    ).where(
        new.c.source_kind == _INTAKE_FORM,
        sa.select(forms.c.id).where(forms.c.id == new.c.source_id).exists(),
    )
    op.execute(old.insert().from_select([*_SHARED, "form_id", "submission_id"], rows))

    with op.batch_alter_table("platform_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_platform_outbox_source_kind_source_id"))
        batch_op.drop_index(batch_op.f("ix_platform_outbox_delivered_at_next_attempt_at"))
    op.drop_table("platform_outbox")
