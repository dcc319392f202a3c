"""All SQL of the webhook outbox: claim due rows under a lease, record outcomes.

Claiming is one statement, ``UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING``,
run first in its own transaction, correct on both databases:

* PostgreSQL: the inner SELECT takes ``FOR UPDATE SKIP LOCKED``, so replicas
  claiming at the same moment lock disjoint rows instead of both reading the
  same ones (without it, READ COMMITTED lets two UPDATEs claim one row).
* SQLite: one writer at a time, and a write statement reads the newest
  snapshot, so the SELECT and the UPDATE see the same rows; ``FOR UPDATE`` is
  not emitted.

A claim sets ``locked_until`` (the lease) and increments ``attempts``. The new
``attempts`` value is the claim's fencing token: outcomes are written only
``WHERE attempts = <token>``, so a dispatcher whose lease expired (and whose row
another replica re-claimed) cannot overwrite the newer claim's outcome. A
successful delivery is recorded regardless, since it is a fact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Result,
    and_,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.intelligence_gateway.models import IntakeForm, OutboxMessage, Submission

__all__ = ["ClaimedMessage", "OutboxRepository"]

_ERROR_MAX_CHARS = 500  # the column's width


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """One claimed row and what delivering it needs from its form."""

    id: str
    tenant_id: str
    event: str
    payload: str
    attempts: int  # after this claim; the fencing token
    created_at: datetime
    webhook_url: str | None
    # Secrets stay out of repr: a logged or printed message must not leak them.
    webhook_secret: str | None = field(repr=False)
    # A rotated-out secret and the end of its grace period (see signing_secrets).
    previous_webhook_secret: str | None = field(default=None, repr=False)
    previous_webhook_secret_expires_at: datetime | None = None

    def signing_secrets(self, now: datetime) -> tuple[str, ...]:
        """The secrets that sign a delivery sent at ``now``: the current one, then
        the previous one while its grace period lasts; none when the form has none."""
        if not self.webhook_secret:
            return ()
        expires = self.previous_webhook_secret_expires_at
        if self.previous_webhook_secret and expires is not None and now < expires:
            return (self.webhook_secret, self.previous_webhook_secret)
        return (self.webhook_secret,)


@dataclass(frozen=True, slots=True)
class _Webhook:
    """What delivering needs from a form."""

    url: str | None = None
    secret: str | None = field(default=None, repr=False)
    previous_secret: str | None = field(default=None, repr=False)
    previous_secret_expires_at: datetime | None = None


_NO_WEBHOOK = _Webhook()


def _pending() -> list[ColumnElement[bool]]:
    return [OutboxMessage.delivered_at.is_(None), OutboxMessage.failed_at.is_(None)]


class OutboxRepository:
    """The outbox table, as the dispatcher uses it."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_if_submission_exists(self, values: dict[str, Any]) -> None:
        """Insert one message built from ``values`` if its submission's row exists.

        ``INSERT … SELECT <values> WHERE EXISTS (…)``: the same statement adds the
        row or nothing, with no read before it.
        """
        columns = OutboxMessage.__table__.c
        row = select(*(literal(value, columns[name].type) for name, value in values.items()))
        submitted = select(Submission.id).where(Submission.id == values["submission_id"])
        await self.session.execute(
            insert(OutboxMessage).from_select(list(values), row.where(submitted.exists()))
        )

    async def claim_due(
        self, *, now: datetime, lease: timedelta, limit: int
    ) -> list[ClaimedMessage]:
        """Lease up to ``limit`` due, unleased rows (oldest due first) and return them.

        Must be the first statement of its transaction (see the module docstring).
        """
        due = (
            select(OutboxMessage.id)
            .where(
                *_pending(),
                OutboxMessage.next_attempt_at <= now,
                or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),
            )
            .order_by(OutboxMessage.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claimed = await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(due.scalar_subquery()))
            .values(locked_until=now + lease, attempts=OutboxMessage.attempts + 1)
            .returning(
                OutboxMessage.id,
                OutboxMessage.tenant_id,
                OutboxMessage.form_id,
                OutboxMessage.event,
                OutboxMessage.payload,
                OutboxMessage.attempts,
                OutboxMessage.created_at,
            )
            .execution_options(synchronize_session=False)
        )
        rows = claimed.all()
        if not rows:
            return []
        forms = await self.session.execute(
            select(
                IntakeForm.id,
                IntakeForm.webhook_url,
                IntakeForm.webhook_secret,
                IntakeForm.previous_webhook_secret,
                IntakeForm.previous_webhook_secret_expires_at,
            ).where(IntakeForm.id.in_({row.form_id for row in rows}))
        )
        webhooks = {
            form.id: _Webhook(
                url=form.webhook_url,
                secret=form.webhook_secret,
                previous_secret=form.previous_webhook_secret,
                previous_secret_expires_at=form.previous_webhook_secret_expires_at,
            )
            for form in forms
        }
        claimed_messages = []
        for row in rows:
            # A deleted form cascades to its rows; no URL here means the webhook
            # was removed after the submission.
            webhook = webhooks.get(row.form_id, _NO_WEBHOOK)
            claimed_messages.append(
                ClaimedMessage(
                    id=row.id,
                    tenant_id=row.tenant_id,
                    event=row.event,
                    payload=row.payload,
                    attempts=row.attempts,
                    created_at=row.created_at,
                    webhook_url=webhook.url,
                    webhook_secret=webhook.secret,
                    previous_webhook_secret=webhook.previous_secret,
                    previous_webhook_secret_expires_at=webhook.previous_secret_expires_at,
                )
            )
        return claimed_messages

    async def mark_delivered(self, message_id: str, *, now: datetime) -> None:
        """Record a successful delivery (whoever holds the lease now)."""
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.delivered_at.is_(None))
            .values(delivered_at=now, locked_until=None, last_error=None)
            .execution_options(synchronize_session=False)
        )

    async def schedule_retry(
        self, message: ClaimedMessage, *, next_attempt_at: datetime, error: str
    ) -> bool:
        """Release the lease and set the next attempt; False if the claim was superseded."""
        result = await self.session.execute(
            update(OutboxMessage)
            .where(*self._fenced(message))
            .values(
                next_attempt_at=next_attempt_at,
                locked_until=None,
                last_error=error[:_ERROR_MAX_CHARS],
            )
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) > 0

    async def mark_failed(self, message: ClaimedMessage, *, now: datetime, error: str) -> bool:
        """Give up on a message: it stays in the table, marked failed, never retried."""
        result = await self.session.execute(
            update(OutboxMessage)
            .where(*self._fenced(message))
            .values(failed_at=now, locked_until=None, last_error=error[:_ERROR_MAX_CHARS])
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) > 0

    async def release(self, message: ClaimedMessage) -> bool:
        """Give a claimed message back unsent (shutdown): due again at once."""
        result = await self.session.execute(
            update(OutboxMessage)
            .where(*self._fenced(message))
            .values(locked_until=None)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) > 0

    async def backlog(self) -> int:
        """Messages neither delivered nor failed (an index range count)."""
        count = await self.session.scalar(
            select(func.count()).select_from(OutboxMessage).where(*_pending())
        )
        return int(count or 0)

    @staticmethod
    def _fenced(message: ClaimedMessage) -> Sequence[ColumnElement[bool]]:
        return [
            and_(OutboxMessage.id == message.id, OutboxMessage.attempts == message.attempts),
            *_pending(),
        ]


def _rowcount(result: Result[Any]) -> int:
    # UPDATE results are cursor results; Session.execute is typed as the base class.
    return cast(CursorResult[Any], result).rowcount
