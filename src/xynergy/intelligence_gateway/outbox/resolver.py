"""Where an intake form's notifications go: its webhook URL and signing secrets."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.intelligence_gateway.models import IntakeForm
from xynergy.platform.outbox.resolvers import Destination

__all__ = ["INTAKE_FORM", "resolve_forms"]

INTAKE_FORM = "intake-form"  # the outbox source kind of the intake's messages


async def resolve_forms(
    session: AsyncSession, source_ids: Collection[str]
) -> dict[str, Destination]:
    """The destination of each form still there (bounded by the dispatcher's claim).

    A deleted form is absent (its messages fail); a form whose webhook was removed
    answers without a URL (they fail too, with that reason).
    """
    forms = await session.execute(
        select(
            IntakeForm.id,
            IntakeForm.webhook_url,
            IntakeForm.webhook_secret,
            IntakeForm.previous_webhook_secret,
            IntakeForm.previous_webhook_secret_expires_at,
        )
        .where(IntakeForm.id.in_(sorted(source_ids)))
        .limit(len(source_ids))
    )
    return {
        form.id: Destination(
            url=form.webhook_url,
            secret=form.webhook_secret,
            previous_secret=form.previous_webhook_secret,
            previous_secret_expires_at=form.previous_webhook_secret_expires_at,
        )
        for form in forms
    }
