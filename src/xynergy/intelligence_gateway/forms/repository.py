"""All SQL for intake forms; every query is tenant-scoped."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.intelligence_gateway.forms.schemas import FormFilters
from xynergy.intelligence_gateway.models import IntakeForm, Submission
from xynergy.intelligence_gateway.outbox.resolver import INTAKE_FORM
from xynergy.platform.outbox import OutboxRepository
from xynergy.platform.pagination import PageParams, keyset_page

__all__ = ["FormRepository"]


def _conditions(tenant_id: str, filters: FormFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [IntakeForm.tenant_id == tenant_id]
    if filters.kind is not None:
        conditions.append(IntakeForm.kind == filters.kind)
    if filters.active is not None:
        conditions.append(IntakeForm.active.is_(filters.active))
    return conditions


class FormRepository:
    """Queries over ``intake_forms`` (and, on delete, the rows that belong to a form)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, *, tenant_id: str, form_id: str) -> IntakeForm | None:
        return await self.session.scalar(
            select(IntakeForm).where(IntakeForm.id == form_id, IntakeForm.tenant_id == tenant_id)
        )

    async def add(self, form: IntakeForm) -> IntakeForm:
        self.session.add(form)
        await self.session.flush()
        return form

    async def flush(self) -> None:
        await self.session.flush()

    async def page(
        self, *, tenant_id: str, filters: FormFilters, params: PageParams
    ) -> Sequence[IntakeForm]:
        query = keyset_page(
            select(IntakeForm).where(*_conditions(tenant_id, filters)),
            created_column=IntakeForm.created_at,
            id_column=IntakeForm.id,
            params=params,
        )
        return (await self.session.scalars(query)).all()

    async def delete(self, form: IntakeForm) -> None:
        # Explicit, not left to ON DELETE CASCADE: correct even where a database
        # connection runs without foreign-key enforcement.
        await OutboxRepository(self.session).discard_source(
            tenant_id=form.tenant_id, source_kind=INTAKE_FORM, source_id=form.id
        )
        await self.session.execute(
            delete(Submission).where(
                Submission.form_id == form.id, Submission.tenant_id == form.tenant_id
            )
        )
        await self.session.delete(form)
        await self.session.flush()
