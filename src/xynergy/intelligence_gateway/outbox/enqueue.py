"""Adding a webhook notification to the outbox, inside the submission's transaction.

The outbox row commits (or rolls back) together with its submission, so a
notification exists exactly when the submission does; the dispatcher delivers it
later, however long the receiver is down.

The row (in the platform's outbox) is added by one ``INSERT … SELECT … WHERE
EXISTS (the submission)``, run whether or not the submission was stored: a
duplicate submission (a beta application with a known e-mail) issues the very
statements a new one does and simply adds nothing, so the public answer's time
does not depend on it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.intelligence_gateway.models import IntakeForm, Submission
from xynergy.intelligence_gateway.outbox.resolver import INTAKE_FORM
from xynergy.platform.db.base import new_id, utcnow
from xynergy.platform.outbox import enqueue, render_payload

__all__ = ["SUBMISSION_CREATED", "enqueue_webhook", "webhook_payload"]

SUBMISSION_CREATED = "submission.created"


def webhook_payload(
    *, message_id: str, event: str, form: IntakeForm, submission: Submission
) -> dict[str, Any]:
    """The JSON document a receiver gets; ``id`` is the delivery id it de-duplicates on."""
    return {
        "id": message_id,
        "event": event,
        "form": {"id": form.id, "public_id": form.public_id, "kind": form.kind},
        "submission": {
            "id": submission.id,
            "kind": submission.kind,
            "status": submission.status,
            "email": submission.email,
            "name": submission.name,
            "company": submission.company,
            "subject": submission.subject,
            "body": submission.body,
            "source": submission.source,
            "utm": dict(submission.utm or {}),
            "created_at": submission.created_at.isoformat(),
        },
        "created_at": utcnow().isoformat(),
    }


async def enqueue_webhook(
    session: AsyncSession, *, form: IntakeForm, submission: Submission
) -> None:
    """Add the submission's notification to the outbox, in the caller's transaction,
    if the submission's row exists there (pending objects are flushed first).

    Does nothing when the form has no webhook. The payload is rendered now, so the
    submission's ``id`` and ``created_at`` must be known: when they are still
    unset (column defaults only apply at flush) they are assigned here, on the
    caller's object, before anything is flushed. ``submission`` may be an object
    never added to the session, describing a row inserted another way (or not at
    all: then nothing is added). The caller commits; the dispatcher picks the row
    up by polling (``OutboxDispatcher.notify()`` after commit makes it sooner in
    this process).
    """
    if not form.webhook_url:
        return
    if submission.id is None:
        submission.id = new_id()
    if submission.created_at is None:
        submission.created_at = utcnow()
    message_id = new_id()
    payload = webhook_payload(
        message_id=message_id, event=SUBMISSION_CREATED, form=form, submission=submission
    )
    await session.flush()
    await enqueue(
        session,
        tenant_id=submission.tenant_id,
        source_kind=INTAKE_FORM,
        source_id=form.id,
        event=SUBMISSION_CREATED,
        payload=render_payload(payload),
        message_id=message_id,
        only_if=select(Submission.id).where(Submission.id == submission.id).exists(),
    )
