"""All SQL of the Idempotency-Key layer (``platform_idempotency_records``).

Each method is one short statement; the caller runs it in its own unit of work,
apart from the request's, so a pending row is visible to concurrent repeats at
once and a rolled-back write never takes its record with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform.db.upsert import dialect_insert
from xynergy.platform.idempotency_models import IdempotencyRecord, RecordState

__all__ = ["IdempotencyRepository"]


def _changed(result: object) -> bool:
    return isinstance(result, CursorResult) and result.rowcount == 1


class IdempotencyRepository:
    """Queries over ``platform_idempotency_records``."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_pending(
        self,
        *,
        record_id: str,
        tenant_id: str,
        key: str,
        fingerprint: str | None,
        owner: str,
        now: datetime,
        locked_until: datetime,
        expires_at: datetime,
    ) -> bool:
        """Insert a pending record; False when (tenant, key) already has one.

        ON CONFLICT DO NOTHING: the unique constraint decides a race between
        concurrent first requests, on SQLite and PostgreSQL alike, without an
        error that would abort a PostgreSQL transaction.
        """
        statement = (
            dialect_insert(self.session, IdempotencyRecord)
            .values(
                id=record_id,
                tenant_id=tenant_id,
                idempotency_key=key,
                fingerprint=fingerprint,
                state=RecordState.PENDING,
                owner=owner,
                locked_until=locked_until,
                created_at=now,
                expires_at=expires_at,
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
        )
        return _changed(await self.session.execute(statement))

    async def get(self, *, tenant_id: str, key: str) -> IdempotencyRecord | None:
        """The record of ``key`` in ``tenant_id`` (at most one: the pair is unique)."""
        return await self.session.scalar(
            select(IdempotencyRecord)
            .where(
                IdempotencyRecord.tenant_id == tenant_id,
                IdempotencyRecord.idempotency_key == key,
            )
            .limit(1)
        )

    async def take_over(
        self,
        record: IdempotencyRecord,
        *,
        owner: str,
        fingerprint: str | None,
        locked_until: datetime,
        expires_at: datetime,
    ) -> bool:
        """Make ``owner`` run a stale pending record; False if another run got it first.

        Compare-and-set on the previous owner: of concurrent takers, one wins.
        """
        statement = (
            update(IdempotencyRecord)
            .where(
                IdempotencyRecord.id == record.id,
                IdempotencyRecord.owner == record.owner,
                IdempotencyRecord.state == RecordState.PENDING,
            )
            .values(
                owner=owner,
                fingerprint=fingerprint,
                locked_until=locked_until,
                expires_at=expires_at,
            )
        )
        return _changed(await self.session.execute(statement))

    async def complete(
        self,
        *,
        record_id: str,
        owner: str,
        fingerprint: str | None,
        status_code: int,
        body: bytes | None,
        headers: Mapping[str, str],
    ) -> bool:
        """Store the response of ``owner``'s run; False if its claim was taken over."""
        statement = (
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == record_id, IdempotencyRecord.owner == owner)
            .values(
                state=RecordState.DONE,
                fingerprint=fingerprint,
                status_code=status_code,
                response_body=body,
                response_headers=dict(headers),
            )
        )
        return _changed(await self.session.execute(statement))

    async def release(self, *, record_id: str, owner: str) -> None:
        """Delete ``owner``'s pending record, so the next request with its key runs."""
        await self.session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.id == record_id,
                IdempotencyRecord.owner == owner,
                IdempotencyRecord.state == RecordState.PENDING,
            )
        )

    async def delete_expired_record(self, record: IdempotencyRecord, *, now: datetime) -> None:
        """Delete ``record`` if it is still the expired row that was read."""
        await self.session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.id == record.id, IdempotencyRecord.expires_at <= now
            )
        )

    async def purge_expired(self, *, now: datetime, limit: int) -> int:
        """Delete at most ``limit`` expired records, oldest first; how many went."""
        expired = (
            select(IdempotencyRecord.id)
            .where(IdempotencyRecord.expires_at <= now)
            .order_by(IdempotencyRecord.expires_at)
            .limit(limit)
        )
        ids = list((await self.session.scalars(expired)).all())
        if not ids:
            return 0
        result = await self.session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(ids))
        )
        return result.rowcount if isinstance(result, CursorResult) else 0
