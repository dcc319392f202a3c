"""The record of one Idempotency-Key: claim it for a run, then store or release it.

Each step is its own short unit of work, apart from the request's: a pending row
must be visible to concurrent repeats at once, and a write that rolls back must
not take its record with it.

Storing or releasing the outcome can meet a database that just went away (the
request's own statements failed with it, or it committed just before). Left
pending, the record would answer every retry 409 until the pending timeout, and
then let the write run again even if it had committed: so that step is retried
in the background, every ``database_unavailable_retry_after_seconds`` (when the
client is told to come back), until it lands or the pending timeout passes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.responses import Response

from xynergy.platform.config import Settings
from xynergy.platform.db.base import new_id, utcnow
from xynergy.platform.db.busy import database_busy, database_unavailable
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.idempotency_models import IdempotencyRecord, RecordState
from xynergy.platform.idempotency_repository import IdempotencyRepository
from xynergy.platform.logging import get_logger

__all__ = ["Claim", "IdempotencyStore"]

# Outcomes a client is expected to retry: storing them would replay the failure.
_NOT_STORED_STATUSES = frozenset({401, 403, 408, 409, 425, 429})
_FIRST_SERVER_ERROR = 500
_STORED_HEADERS = ("content-type", "location")
# Insert, or find and settle the row in the way: a row released or expired between
# two statements costs one more round; more rounds than this is churn.
_CLAIM_ROUNDS = 3
# Outcomes being stored again in the background (database unreachable); past
# this many, a record is left to its pending timeout.
_MAX_RETRYING = 1000

log = get_logger(__name__)

Step = Callable[[IdempotencyRepository], Awaitable[object]]


def _may_take_over(record: IdempotencyRecord, fingerprint: str | None, now: datetime) -> bool:
    """A pending run past its deadline crashed; the same request may run in its place
    (another request with the key is answered 422 instead)."""
    same = fingerprint is None or record.fingerprint in (None, fingerprint)
    return record.state == RecordState.PENDING and record.locked_until <= now and same


@dataclass(frozen=True, slots=True)
class Claim:
    """A run's hold on a key: only its owner completes or releases the record."""

    record_id: str
    owner: str


class OutcomeRetries:
    """The background writes of outcomes that met an unreachable database: the
    platform owns them, so they are named, bounded and cancelled at shutdown (a
    record they did not settle is taken over after its pending timeout)."""

    def __init__(self, max_tasks: int = _MAX_RETRYING) -> None:
        self._max_tasks = max_tasks
        self._tasks: set[asyncio.Task[None]] = set()  # guard: allow XG005 bounded by max_tasks
        self._stopped = False

    def __len__(self) -> int:
        return len(self._tasks)

    def start(self, retry: Awaitable[None]) -> bool:
        """Run ``retry`` in the background; False (and ``retry`` closed) when full or stopped."""
        if self._stopped or len(self._tasks) >= self._max_tasks:
            if asyncio.iscoroutine(retry):
                retry.close()
            return False
        task = asyncio.ensure_future(retry)
        task.set_name("idempotency-outcome-retry")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def stop(self) -> None:
        """Cancel the retries still waiting (before the engine they write to closes)."""
        self._stopped = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class IdempotencyStore:
    """One key's record: claim it, then store or release the outcome."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        tenant_id: str,
        key: str,
        retries: OutcomeRetries,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._tenant_id = tenant_id
        self._key = key
        self._retries = retries

    async def claim(self, fingerprint: str | None) -> Claim | IdempotencyRecord | None:
        """Claim the key for a new run, or the record already holding it (None: the
        row kept changing under us, as good as in progress).

        Committed at once: concurrent repeats must see the pending row while the
        request runs. A busy or unreachable database raises the SQLAlchemy error
        the app's handlers answer 503 (nothing ran).
        """
        owner = new_id()
        for _ in range(_CLAIM_ROUNDS):
            now = utcnow()
            locked_until, expires_at = self._deadlines(now)
            record_id = new_id()
            async with unit_of_work(self._sessionmaker) as session:
                records = IdempotencyRepository(session)
                if await records.insert_pending(
                    record_id=record_id,
                    tenant_id=self._tenant_id,
                    key=self._key,
                    fingerprint=fingerprint,
                    owner=owner,
                    now=now,
                    locked_until=locked_until,
                    expires_at=expires_at,
                ):
                    return Claim(record_id, owner)
                record = await records.get(tenant_id=self._tenant_id, key=self._key)
                if record is None:
                    continue  # released since the insert: claim it next round
                if record.expires_at <= now:
                    await records.delete_expired_record(record, now=now)
                    continue
                if _may_take_over(record, fingerprint, now):
                    if await records.take_over(
                        record,
                        owner=owner,
                        fingerprint=fingerprint,
                        locked_until=locked_until,
                        expires_at=expires_at,
                    ):
                        log.warning("idempotency.taken_over", tenant_id=self._tenant_id)
                        return Claim(record.id, owner)
                    continue
                return record
        return None

    def _deadlines(self, now: datetime) -> tuple[datetime, datetime]:
        pending = self._settings.idempotency_pending_timeout_seconds
        # A record never expires while its first run may still be going.
        lifetime = max(self._settings.idempotency_ttl_seconds, pending)
        return now + timedelta(seconds=pending), now + timedelta(seconds=lifetime)

    async def finish(self, claim: Claim, fingerprint: str | None, response: Response) -> None:
        """Store ``response`` for replay, or release the key if it should run again.

        Never raises: the write already committed, and failing its answer now would
        only make the client retry it. A record left pending is taken over after
        the pending timeout.
        """
        body: Any = getattr(response, "body", None)
        status = response.status_code
        if (
            not isinstance(body, bytes)
            or status >= _FIRST_SERVER_ERROR
            or status in _NOT_STORED_STATUSES
        ):
            await self.release(claim)
            return
        kept = body if len(body) <= self._settings.idempotency_max_response_bytes else None
        headers = {
            name: response.headers[name] for name in _STORED_HEADERS if name in response.headers
        }

        async def complete(records: IdempotencyRepository) -> object:
            stored = await records.complete(
                record_id=claim.record_id,
                owner=claim.owner,
                fingerprint=fingerprint,
                status_code=status,
                body=kept,
                headers=headers,
            )
            if not stored:
                log.warning("idempotency.claim_lost", tenant_id=self._tenant_id)
            return stored

        await self._settle("idempotency.store_failed", complete)

    async def release(self, claim: Claim) -> None:
        """Delete the pending record so that a retry runs (never raises)."""

        async def release(records: IdempotencyRepository) -> None:
            await records.release(record_id=claim.record_id, owner=claim.owner)

        await self._settle("idempotency.release_failed", release)

    async def _settle(self, event: str, step: Step) -> None:
        """Run ``step`` in a unit of work of its own; again later if the database is away."""
        try:
            await self._write(step)
        except Exception as exc:
            retried = self._unreachable(exc) and self._retries.start(self._retry(event, step))
            log.warning(event, error=type(exc).__name__, retried_in_background=retried)

    async def _write(self, step: Step) -> None:
        # Shielded: a cancelled request still settles its key.
        with anyio.CancelScope(shield=True):
            async with unit_of_work(self._sessionmaker) as session:
                await step(IdempotencyRepository(session))

    def _unreachable(self, exc: BaseException) -> bool:
        seconds = self._settings.database_unavailable_retry_after_seconds
        return (
            database_unavailable(exc, retry_after_seconds=seconds) is not None
            or database_busy(exc, retry_after_seconds=seconds) is not None
        )

    async def _retry(self, event: str, step: Step) -> None:
        settings = self._settings
        deadline = time.monotonic() + settings.idempotency_pending_timeout_seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(settings.database_unavailable_retry_after_seconds)
            try:
                await self._write(step)
            except Exception as exc:
                if not self._unreachable(exc):
                    break
                continue
            log.info(f"{event.removesuffix('_failed')}_retried", tenant_id=self._tenant_id)
            return
        log.warning(f"{event}_for_good", tenant_id=self._tenant_id)
