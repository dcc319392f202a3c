"""The usage ledger: every AI call's cost, written in batches off the request path.

``record()`` is what a request pays: an append to a bounded in-memory queue, no
I/O. A background task writes the queue in batches (one executemany INSERT per
batch) every ``ledger_flush_seconds``, or as soon as ``ledger_batch_max``
events are waiting. Events leave the queue only once written, so a failed
write (database down) is retried by the next flush; meanwhile the queue's
bound holds and the overflow is dropped and counted, never blocking a request.
The queue and its writer are the platform's :class:`WriteBehind`; this module
says what an event's row is and where it goes.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from prometheus_client import Counter
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
from xynergy.ai_routing.usage.repository import DAILY_SUMS, UsageRepository
from xynergy.platform.db.base import new_id
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.logging import get_logger
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.write_behind import WriteBehind

__all__ = ["DROPPED_METRIC", "UsageLedger"]

log = get_logger(__name__)

DROPPED_METRIC = "xynergy_ai_ledger_dropped"


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
        "saved_nanos": event.saved_nanos,
        "cache_hit": event.cache_hit,
        "deduplicated": event.deduplicated,
        "latency_ms": event.latency_ms,
        "status": event.status[:STATUS_MAX_CHARS],
        "occurred_at": occurred_at,
        "day": occurred_at.date(),
    }


_DAILY_GROUP = ("tenant_id", "day", "key_id", "model", "task")


def _daily(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The batch's sums per daily-rollup group, in key order (so concurrent writers
    lock rows in one order and cannot deadlock each other)."""
    sums: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        group = (row["tenant_id"], row["day"], row["key_id"] or "", row["model"], row["task"])
        total = sums.get(group)
        if total is None:
            total = sums[group] = dict(zip(_DAILY_GROUP, group, strict=True)) | dict.fromkeys(
                DAILY_SUMS, 0
            )
        total["requests"] += 1
        total["input_tokens"] += row["input_tokens"]
        total["output_tokens"] += row["output_tokens"]
        total["cost_nanos"] += row["cost_nanos"]
        total["saved_nanos"] += row["saved_nanos"]
        total["cache_hits"] += int(row["cache_hit"])
        total["deduplicated"] += int(row["deduplicated"])
        total["errors"] += int(row["status"] != "ok")
    return [sums[group] for group in sorted(sums)]


class UsageLedger:
    """Bounded, batched, write-behind ledger of :class:`UsageEvent`."""

    def __init__(
        self,
        *,
        ai: AiSettings,
        sessionmaker: async_sessionmaker[AsyncSession],
        metrics: PlatformMetrics,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._metrics = metrics
        self._writer: WriteBehind[UsageEvent] = WriteBehind(
            name="ai.ledger",
            write=self._insert,
            dropped=_dropped_counter(metrics),
            queue_max=ai.ledger_queue_max,
            batch_max=ai.ledger_batch_max,
            flush_seconds=ai.ledger_flush_seconds,
        )

    @property
    def pending(self) -> int:
        """Events queued and not yet written."""
        return self._writer.pending

    def record(self, event: UsageEvent) -> None:
        """Queue ``event`` for writing; drops (and counts) it when the queue is full."""
        # The per-minute rollup counts every event, written to the ledger or not.
        self._metrics.rollups.ai(
            event.tenant_id,
            event.model,
            input_tokens=event.input_tokens,
            output_tokens=event.output_tokens,
            cost_nanos=event.cost_nanos,
            cache_hit=event.cache_hit,
            error=event.status != "ok",
        )
        self._writer.record(event)

    async def start(self) -> None:
        """Start the background writer."""
        self._writer.start()

    async def stop(self) -> None:
        """Stop the writer after its current flush, then write everything still queued."""
        await self._writer.stop()

    async def flush(self) -> int:
        """Write the events queued now, in batches; the number written.

        A failed batch stays queued (with everything after it) for the next
        flush; the failure is logged, not raised.
        """
        return await self._writer.flush()

    async def _insert(self, events: list[UsageEvent]) -> None:
        rows = [_row(event) for event in events]
        # One transaction: the daily rollup never counts a batch the ledger lost,
        # nor misses one it kept.
        async with unit_of_work(self._sessionmaker) as session:
            repository = UsageRepository(session)
            await repository.insert_many(rows)
            await repository.add_daily(_daily(rows))
