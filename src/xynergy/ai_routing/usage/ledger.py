"""The usage ledger: every AI call's cost, written in batches off the request path.

``record()`` is what a request pays: an append to a bounded in-memory queue, no
I/O. A background task writes the queue in batches (one executemany INSERT per
batch) every ``ledger_flush_seconds``, or as soon as ``ledger_batch_max``
events are waiting. Events leave the queue only once written, so a failed
write (database down) is retried by the next flush; meanwhile the queue's
bound holds and the overflow is dropped and counted, never blocking a request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from datetime import UTC
from itertools import islice
from typing import Any

from prometheus_client import Counter
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.usage.events import UsageEvent
from xynergy.ai_routing.usage.models import (
    MODEL_MAX_CHARS,
    PROVIDER_MAX_CHARS,
    REQUEST_ID_MAX_CHARS,
    STATUS_MAX_CHARS,
    TASK_MAX_CHARS,
)
from xynergy.ai_routing.usage.repository import UsageRepository
from xynergy.platform.db.base import new_id
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.logging import get_logger
from xynergy.platform.monitoring import PlatformMetrics

__all__ = ["DROPPED_METRIC", "UsageLedger"]

log = get_logger(__name__)

DROPPED_METRIC = "xynergy_ai_ledger_dropped"
# Errors a retry cannot fix: the rows themselves are refused (e.g. their tenant
# was deleted). Anything else (connection lost, database locked) is retried.
_REFUSED_ROWS = (IntegrityError, DataError)


def _dropped_counter(metrics: PlatformMetrics) -> Counter:
    return metrics.service_metric(
        Counter, DROPPED_METRIC, "Usage events not written to the ledger, by reason.", ["reason"]
    )


def _row(event: UsageEvent) -> dict[str, Any]:
    occurred_at = event.occurred_at
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=UTC)
    occurred_at = occurred_at.astimezone(UTC)
    return {
        "id": new_id(),
        "tenant_id": event.tenant_id,
        "key_id": event.key_id,
        "request_id": event.request_id[:REQUEST_ID_MAX_CHARS],
        "task": event.task[:TASK_MAX_CHARS],
        "model": event.model[:MODEL_MAX_CHARS],
        "provider": event.provider[:PROVIDER_MAX_CHARS],
        "input_tokens": event.input_tokens,
        "output_tokens": event.output_tokens,
        "cost_nanos": event.cost_nanos,
        "cache_hit": event.cache_hit,
        "deduplicated": event.deduplicated,
        "latency_ms": event.latency_ms,
        "status": event.status[:STATUS_MAX_CHARS],
        "occurred_at": occurred_at,
        "day": occurred_at.date(),
    }


class UsageLedger:
    """Bounded, batched, write-behind ledger of :class:`UsageEvent`."""

    def __init__(
        self,
        *,
        ai: AiSettings,
        sessionmaker: async_sessionmaker[AsyncSession],
        metrics: PlatformMetrics,
    ) -> None:
        self._ai = ai
        self._sessionmaker = sessionmaker
        self._pending: deque[UsageEvent] = deque()
        self._dropped = _dropped_counter(metrics)
        self._dropping = False
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Events queued and not yet written."""
        return len(self._pending)

    def record(self, event: UsageEvent) -> None:
        """Queue ``event`` for writing; drops (and counts) it when the queue is full."""
        pending = self._pending
        if len(pending) >= self._ai.ledger_queue_max:
            self._dropped.labels(reason="queue_full").inc()
            if not self._dropping:
                # Once per burst: a full queue would otherwise log on every request.
                self._dropping = True
                log.warning("ai.ledger.dropping", queued=len(pending))
            return
        pending.append(event)
        if len(pending) >= self._ai.ledger_batch_max:
            self._wake.set()

    async def start(self) -> None:
        """Start the background writer."""
        if self._task is None:
            self._stopped.clear()
            self._task = asyncio.create_task(self._run(), name="ai-usage-ledger")

    async def stop(self) -> None:
        """Stop the writer after its current flush, then write everything still queued."""
        task, self._task = self._task, None
        if task is not None:
            self._stopped.set()
            self._wake.set()
            await task
        await self.flush()
        if self._pending:
            self._dropped.labels(reason="unwritten_at_stop").inc(len(self._pending))
            log.error("ai.ledger.unwritten_at_stop", events=len(self._pending))
            self._pending.clear()

    async def flush(self) -> int:
        """Write the events queued now, in batches; the number written.

        A failed batch stays queued (with everything after it) for the next
        flush; the failure is logged, not raised.
        """
        written, _failed = await self._flush()
        return written

    async def _flush(self) -> tuple[int, bool]:
        async with self._flush_lock:
            unbatched = len(self._pending)
            # Sizes of the next slices of the queue's front to write, next last.
            slices: list[int] = []
            written = 0
            failed = False
            while slices or unbatched:
                if not slices:
                    slices.append(min(self._ai.ledger_batch_max, unbatched))
                    unbatched -= slices[-1]
                size = slices.pop()
                batch = list(islice(self._pending, 0, size))
                try:
                    await self._insert([_row(event) for event in batch])
                except _REFUSED_ROWS as exc:
                    if size > 1:
                        # Isolate the refused rows by halving; the front half next.
                        half = size // 2
                        slices += [size - half, half]
                        continue
                    self._dropped.labels(reason="refused").inc()
                    log.error(
                        "ai.ledger.event_refused", error=repr(exc), tenant_id=batch[0].tenant_id
                    )
                except Exception as exc:
                    failed = True
                    log.warning(
                        "ai.ledger.write_failed",
                        error=repr(exc),
                        queued=len(self._pending),
                    )
                    break
                else:
                    written += size
                # Written (or refused): only now do the events leave the queue.
                for _ in range(size):
                    self._pending.popleft()
            if len(self._pending) < self._ai.ledger_queue_max:
                self._dropping = False
            return written, failed

    async def _insert(self, rows: list[dict[str, Any]]) -> None:
        async with unit_of_work(self._sessionmaker) as session:
            await UsageRepository(session).insert_many(rows)

    async def _run(self) -> None:
        while not self._stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._ai.ledger_flush_seconds)
            self._wake.clear()
            if self._stopped.is_set():
                return  # stop() flushes what is left
            try:
                _written, failed = await self._flush()
            except Exception as exc:  # never let the writer die
                log.exception("ai.ledger.flush_crashed", error=repr(exc))
                failed = True
            if failed:
                # Wait a full period before retrying rather than spin on a dead
                # database when the queue keeps filling; stop() cuts it short.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), self._ai.ledger_flush_seconds)
