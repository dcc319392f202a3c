"""All SQL of the public intake path.

The public path has no tenant context: a form is found by its public id, and
every submission row then carries that form's tenant.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.intelligence_gateway.models import IntakeForm, Submission
from xynergy.platform.db.upsert import DialectInsert, dialect_insert

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

    async def insert_unless_duplicate(self, values: dict[str, Any]) -> bool:
        """Insert one submission; False when its e-mail (per form) or its idempotency key
        (per form) is taken already.

        One INSERT ... ON CONFLICT: the unique constraints decide, so two concurrent
        identical requests cannot both insert, and nothing is looked up first.

        A beta application (``dedupe_key`` set) that meets a known e-mail is not
        skipped but takes ``DO UPDATE``, rewriting the key with the value it
        already has: a real write that changes nothing. A known e-mail then costs
        what a new one does (the same statement, one row written, a commit that
        must reach the disk), so the time of the answer does not tell whether an
        address applied before, as its bytes do not.
        """
        statement = self._insert(values)
        if values.get("dedupe_key") is None:
            skipping = statement.on_conflict_do_nothing().returning(Submission.id)
            return await self.session.scalar(skipping) is not None
        upsert = statement.on_conflict_do_update(
            index_elements=[Submission.form_id, Submission.dedupe_key],
            set_={"dedupe_key": statement.excluded.dedupe_key},
        ).returning(Submission.id)
        if values.get("idempotency_key") is None:
            return await self.session.scalar(upsert) == values["id"]
        # A used idempotency key with an unknown e-mail violates the other unique
        # constraint, which DO UPDATE cannot name too; the savepoint keeps the
        # request's transaction usable. Both e-mail paths still run alike.
        try:
            async with self.session.begin_nested():
                row_id = await self.session.scalar(upsert)
        except IntegrityError:
            return False
        return row_id == values["id"]

    def _insert(self, values: dict[str, Any]) -> DialectInsert:
        return dialect_insert(self.session, Submission).values(**values)
