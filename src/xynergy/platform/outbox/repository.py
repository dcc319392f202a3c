"""All SQL of the outbox: add messages, claim due ones under a lease, record outcomes.

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

Only the source kinds this process has a resolver for are claimed: a replica
serving other services leaves the rows it could not address to one that can.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Exists,
    Result,
    and_,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform.outbox.models import OutboxMessage

__all__ = ["ClaimedMessage", "OutboxRepository"]

_ERROR_MAX_CHARS = 500  # the column's width


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """One claimed row; its destination is resolved separately, at delivery time."""

    id: str
    tenant_id: str
    source_kind: str
    source_id: str
    event: str
    payload: str
    attempts: int  # after this claim; the fencing token
    created_at: datetime


def _pending() -> list[ColumnElement[bool]]:
    return [OutboxMessage.delivered_at.is_(None), OutboxMessage.failed_at.is_(None)]


class OutboxRepository:
    """The outbox table, as enqueuers and the dispatcher use it."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, values: dict[str, Any], *, only_if: Exists | None = None) -> None:
        """Insert one message built from ``values``; with ``only_if``, only when it holds.

        ``INSERT … SELECT <values> WHERE EXISTS (…)``: the same statement adds the
        row or nothing, with no read before it (the caller's condition, e.g. that
        the row the message reports on exists in this transaction).
        """
        if only_if is None:
            await self.session.execute(insert(OutboxMessage).values(values))
            return
        columns = OutboxMessage.__table__.c
        row = select(*(literal(value, columns[name].type) for name, value in values.items()))
        await self.session.execute(
            insert(OutboxMessage).from_select(list(values), row.where(only_if))
        )

    async def discard_source(self, *, tenant_id: str, source_kind: str, source_id: str) -> None:
        """Delete every message of one source (the source itself is being deleted)."""
        await self.session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.source_kind == source_kind,
                OutboxMessage.source_id == source_id,
                OutboxMessage.tenant_id == tenant_id,
            )
        )

    async def claim_due(
        self, *, now: datetime, lease: timedelta, limit: int, kinds: Collection[str]
    ) -> list[ClaimedMessage]:
        """Lease up to ``limit`` due messages of ``kinds``, oldest due first."""
        if not kinds:
            return []
        due = (
            select(OutboxMessage.id)
            .where(
                *_pending(),
                OutboxMessage.source_kind.in_(sorted(kinds)),
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
                OutboxMessage.source_kind,
                OutboxMessage.source_id,
                OutboxMessage.event,
                OutboxMessage.payload,
                OutboxMessage.attempts,
                OutboxMessage.created_at,
            )
            .execution_options(synchronize_session=False)
        )
        return [
            ClaimedMessage(
                id=row.id,
                tenant_id=row.tenant_id,
                source_kind=row.source_kind,
                source_id=row.source_id,
                event=row.event,
                payload=row.payload,
                attempts=row.attempts,
                created_at=row.created_at,
            )
            for row in claimed.all()
        ]

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
