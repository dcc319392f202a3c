"""Storing one public submission: sanitised, checked for spam, never duplicated.

Spam is stored with its reasons (status ``spam``), never dropped, and only a
submission that is not spam notifies the form's webhook: the outbox would
otherwise hand every bot's post to the tenant's systems. A spam row takes no
e-mail dedupe key, so a bot that used someone's address first cannot keep that
person's own application out.

A beta application with a known e-mail and one with a new e-mail run the same
SQL statements and both write (see the repository's insert and
:func:`enqueue_webhook`), so neither the answer nor its time tells a visitor
whether an address applied before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.form_tokens import FormTokens
from xynergy.intelligence_gateway.models import IntakeForm, Submission
from xynergy.intelligence_gateway.outbox.enqueue import enqueue_webhook
from xynergy.intelligence_gateway.submissions import spam
from xynergy.intelligence_gateway.submissions.public_repository import (
    PublicSubmissionRepository,
)
from xynergy.intelligence_gateway.submissions.public_schemas import (
    BetaApplicationCreate,
    PublicSubmission,
)
from xynergy.platform.db.base import new_id, utcnow

__all__ = ["Arrival", "submit"]

STATUS_NEW = "new"
STATUS_SPAM = "spam"


@dataclass(frozen=True, slots=True)
class Arrival:
    """What the request says about a submission besides its body."""

    client_ip: str
    origin: str | None
    idempotency_key: str | None


def _spam_reasons(
    *,
    form: IntakeForm,
    data: PublicSubmission,
    arrival: Arrival,
    bounds: IntakeSettings,
    tokens: FormTokens,
) -> list[str]:
    reasons: list[str] = []
    if data.nickname:
        reasons.append(spam.HONEYPOT)
    token_problem = tokens.problem(data.form_token, form.public_id)
    if token_problem is not None:
        reasons.append(token_problem)
    # Counted on what was sent: sanitising drops the links an href held.
    if data.links_sent > bounds.spam_max_links:
        reasons.append(spam.TOO_MANY_LINKS)
    if arrival.origin is not None and arrival.origin not in form.allowed_origins:
        reasons.append(spam.ORIGIN_NOT_ALLOWED)
    return reasons


async def submit(
    session: AsyncSession,
    *,
    form: IntakeForm,
    data: PublicSubmission,
    arrival: Arrival,
    bounds: IntakeSettings,
    tokens: FormTokens,
    ip_key: bytes,
    now: datetime | None = None,
) -> bool:
    """Store ``data`` sent to ``form``; False when it duplicates an earlier submission
    (same e-mail on a beta form, or same idempotency key), which stores nothing new."""
    now = now or utcnow()
    repository = PublicSubmissionRepository(session)
    content_hash = spam.content_hash(data.body)
    reasons = _spam_reasons(form=form, data=data, arrival=arrival, bounds=bounds, tokens=tokens)
    repeats = await repository.count_same_content(
        form_id=form.id,
        content_hash=content_hash,
        since=now - timedelta(seconds=bounds.spam_repeat_window_seconds),
        limit=bounds.spam_repeat_threshold,
    )
    if repeats >= bounds.spam_repeat_threshold:
        reasons.append(spam.REPEATED_CONTENT)
    is_beta = isinstance(data, BetaApplicationCreate)
    values: dict[str, Any] = {
        "id": new_id(),
        "tenant_id": form.tenant_id,
        "form_id": form.id,
        "kind": form.kind,
        "status": STATUS_SPAM if reasons else STATUS_NEW,
        # Sanitised (and bounded by the columns) by the schema's text types.
        "email": data.email,
        "name": data.name,
        "company": getattr(data, "company", None),
        "website": getattr(data, "website", None),
        "subject": getattr(data, "subject", None),
        "body": data.body,
        "source": data.source,
        "utm": data.utm,
        "spam_reasons": reasons,
        "content_hash": content_hash,
        "client_ip_hash": spam.client_ip_hash(arrival.client_ip, ip_key),
        # The address is ASCII once normalised; its case never makes a second applicant.
        "dedupe_key": data.email.lower() if is_beta and not reasons else None,
        "idempotency_key": arrival.idempotency_key,
        "created_day": now.date(),
        "created_at": now,
        "updated_at": now,
    }
    stored = await repository.insert_unless_duplicate(values)
    if not reasons:
        # Also after a duplicate, when it adds nothing: the same statements either way.
        await enqueue_webhook(session, form=form, submission=Submission(**values))
    return stored
