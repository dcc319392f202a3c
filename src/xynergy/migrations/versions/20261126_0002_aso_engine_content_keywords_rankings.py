"""aso engine content keywords rankings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 13:25:14.180633
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "aso_content",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=1000), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("priority_rank", sa.Integer(), nullable=False),
        sa.Column("target_keywords", sa.JSON(), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_aso_content_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aso_content")),
    )
    with op.batch_alter_table("aso_content", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_aso_content_tenant_id_created_at_id"),
            ["tenant_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_aso_content_tenant_id_priority_rank_created_at_id"),
            ["tenant_id", "priority_rank", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_aso_content_tenant_id_status_updated_at"),
            ["tenant_id", "status", "updated_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_aso_content_tenant_id_updated_at_id"),
            ["tenant_id", "updated_at", "id"],
            unique=False,
        )

    op.create_table(
        "aso_keywords",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("phrase", sa.String(length=1000), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("target_url", sa.String(length=8192), nullable=True),
        sa.Column("intent", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_aso_keywords_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aso_keywords")),
        sa.UniqueConstraint(
            "tenant_id", "phrase", "locale", name=op.f("uq_aso_keywords_tenant_id_phrase_locale")
        ),
    )
    with op.batch_alter_table("aso_keywords", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_aso_keywords_tenant_id_created_at_id"),
            ["tenant_id", "created_at", "id"],
            unique=False,
        )

    op.create_table(
        "aso_content_keywords",
        sa.Column("content_id", sa.String(length=32), nullable=False),
        sa.Column("phrase", sa.String(length=1000), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["content_id"],
            ["aso_content.id"],
            name=op.f("fk_aso_content_keywords_content_id_aso_content"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_aso_content_keywords_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("content_id", "phrase", name=op.f("pk_aso_content_keywords")),
    )
    with op.batch_alter_table("aso_content_keywords", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_aso_content_keywords_tenant_id_phrase"),
            ["tenant_id", "phrase"],
            unique=False,
        )

    op.create_table(
        "aso_rankings",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("keyword_id", sa.String(length=32), nullable=False),
        sa.Column("engine", sa.String(length=32), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("url", sa.String(length=8192), nullable=True),
        sa.Column("observed_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["keyword_id"],
            ["aso_keywords.id"],
            name=op.f("fk_aso_rankings_keyword_id_aso_keywords"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_aso_rankings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aso_rankings")),
        sa.UniqueConstraint(
            "keyword_id",
            "engine",
            "locale",
            "observed_on",
            name=op.f("uq_aso_rankings_keyword_id_engine_locale_observed_on"),
        ),
    )
    with op.batch_alter_table("aso_rankings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_aso_rankings_tenant_id_keyword_id_observed_on"),
            ["tenant_id", "keyword_id", "observed_on"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_aso_rankings_tenant_id_observed_on"),
            ["tenant_id", "observed_on"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("aso_rankings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_aso_rankings_tenant_id_observed_on"))
        batch_op.drop_index(batch_op.f("ix_aso_rankings_tenant_id_keyword_id_observed_on"))

    op.drop_table("aso_rankings")
    with op.batch_alter_table("aso_content_keywords", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_aso_content_keywords_tenant_id_phrase"))

    op.drop_table("aso_content_keywords")
    with op.batch_alter_table("aso_keywords", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_aso_keywords_tenant_id_created_at_id"))

    op.drop_table("aso_keywords")
    with op.batch_alter_table("aso_content", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_aso_content_tenant_id_updated_at_id"))
        batch_op.drop_index(batch_op.f("ix_aso_content_tenant_id_status_updated_at"))
        batch_op.drop_index(batch_op.f("ix_aso_content_tenant_id_priority_rank_created_at_id"))
        batch_op.drop_index(batch_op.f("ix_aso_content_tenant_id_created_at_id"))

    op.drop_table("aso_content")
