"""All SQL of the public intake path.

The public path has no tenant context: a form is found by its public id, and
every submission row then carries that form's tenant.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.intelligence_gateway.models import IntakeForm, Submission

__all__ = ["PublicSubmissionRepository"]


class PublicSubmissionRepository:
    """Form lookup, the repeated-content count and the duplicate-proof insert."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def active_form(self, public_id: str) -> IntakeForm | None:
        return await self.session.scalar(
            select(IntakeForm).where(IntakeForm.public_id == public_id, IntakeForm.active.is_(True))
        )

    async def count_same_content(
        self, *, form_id: str, content_hash: str, since: datetime, limit: int
    ) -> int:
        """Submissions to ``form_id`` with ``content_hash`` since ``since``, counted up to ``limit``.

        The LIMIT inside bounds the work however often a text was repeated; the
        (form_id, content_hash, created_at) index serves the whole query.
        """
        window = (
            select(literal(1))
            .where(
                Submission.form_id == form_id,
                Submission.content_hash == content_hash,
                Submission.created_at >= since,
            )
            .limit(limit)
            .subquery()
        )
        return int(await self.session.scalar(select(func.count()).select_from(window)) or 0)

    async def insert_unless_duplicate(self, values: dict[str, Any]) -> Submission | None:
        """Insert one submission; None when its e-mail (per form) or its idempotency key
        (per form) is taken already.

        INSERT ... ON CONFLICT DO NOTHING: the unique constraints decide, so two
        concurrent identical requests cannot both insert, and nothing is looked up
        first.
        """
        dialect = self.session.get_bind().dialect.name
        statement: postgresql.Insert | sqlite.Insert
        if dialect == "postgresql":
            statement = postgresql.insert(Submission)
        elif dialect == "sqlite":
            statement = sqlite.insert(Submission)
        else:
            raise NotImplementedError(f"the intake insert is not implemented for {dialect}")
        inserted = statement.values(**values).on_conflict_do_nothing().returning(Submission)
        return (await self.session.scalars(inserted)).first()
