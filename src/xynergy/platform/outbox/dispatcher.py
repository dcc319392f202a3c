"""The background dispatcher: claim due outbox rows, deliver them, record outcomes.

One per process, started and stopped with the platform (``Platform.outbox``).
Delivery is at-least-once. A row is leased when claimed; if the process dies
mid-delivery the lease expires and another dispatcher (or this one, restarted)
sends it again. Receivers de-duplicate on ``X-Xynergy-Delivery``, which makes the
effect exactly once. Polling every ``outbox_poll_seconds`` is the guarantee;
:meth:`OutboxDispatcher.notify` only makes an in-process wake-up sooner.

The loop claims no more rows than it has free delivery slots, so a row's lease
only has to cover one delivery (``outbox_webhook_timeout_seconds``) plus its
writes, never a queue behind slow receivers. Each claimed batch's destinations
are resolved in one call per source kind, just before delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import defaultdict
from datetime import datetime, timedelta

from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.platform.breaker import Breakers
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.http import OutboundHTTP
from xynergy.platform.logging import get_logger
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.net_policy import Resolver
from xynergy.platform.outbox.delivery import DeliveryResult, deliver
from xynergy.platform.outbox.repository import ClaimedMessage, OutboxRepository
from xynergy.platform.outbox.resolvers import Destination, DestinationResolver, OutboxResolvers

__all__ = ["OutboxDispatcher", "backoff_seconds"]

log = get_logger(__name__)

DELIVERIES_METRIC = "xynergy_webhook_deliveries"
# Stands for "could not be looked up this time" (retried), unlike a missing
# destination (the source is gone: failed). Compared by identity.
_LOOKUP_FAILED = Destination(url=None)
BACKLOG_METRIC = "xynergy_outbox_backlog"


def backoff_seconds(attempts: int, *, base: float, maximum: float) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(maximum, base * 2**attempts)]."""
    # Capping the exponent first keeps 2**attempts from growing without bound.
    ceiling = min(maximum, base * 2 ** min(attempts, 62))
    return random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret


class _OutboxMetrics:
    """Deliveries by source kind and outcome, and the backlog, on the platform's registry."""

    def __init__(self, metrics: PlatformMetrics) -> None:
        self.deliveries = metrics.service_metric(
            Counter,
            DELIVERIES_METRIC,
            "Webhook delivery attempts by source kind and outcome.",
            ["kind", "outcome"],
        )
        self.backlog = metrics.service_metric(
            Gauge, BACKLOG_METRIC, "Webhook notifications neither delivered nor given up on."
        )


class OutboxDispatcher:
    """Delivers the webhook outbox in the background; several replicas may run one each."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        http: OutboundHTTP,
        breakers: Breakers,
        metrics: PlatformMetrics,
        resolvers: OutboxResolvers | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.http, self.breakers = http, breakers
        self.resolvers = resolvers or OutboxResolvers()
        self.resolver = resolver  # DNS; None: the system resolver
        self._metrics = _OutboxMetrics(metrics)
        self._semaphore = asyncio.Semaphore(settings.outbox_concurrency)
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        # Claimed and not yet recorded: given back on shutdown rather than left
        # locked until their lease runs out.
        # At most one claim's worth per free delivery slot (outbox_concurrency), or one
        # batch in run_once; each entry is removed once its outcome is recorded.
        self._unfinished: dict[str, ClaimedMessage] = {}  # guard: allow XG005 bounded by claims
        self._stopping = False

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background loop (idempotent)."""
        if self._loop_task is None:
            self._stopping = False
            self._loop_task = asyncio.create_task(self._run_forever(), name="platform-outbox")

    async def stop(self) -> None:
        """Stop claiming; give in-flight deliveries one webhook timeout, then cancel
        them, and give back (unlock) whatever was claimed but not delivered."""
        if self._loop_task is not None:
            # Asked, not cancelled: a claim that has committed must not be lost
            # between the database and the delivery tasks.
            self._stopping = True
            self._wake.set()
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(
                    self._loop_task, self.settings.outbox_webhook_timeout_seconds
                )
            self._loop_task = None
        if self._in_flight:
            _, pending = await asyncio.wait(
                set(self._in_flight), timeout=self.settings.outbox_webhook_timeout_seconds
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._release_unfinished()

    async def _release_unfinished(self) -> None:
        if not self._unfinished:
            return
        try:
            async with unit_of_work(self.sessionmaker) as session:
                repository = OutboxRepository(session)
                for message in self._unfinished.values():
                    await repository.release(message)
        except Exception:
            # Their leases expire and they are sent then; nothing is lost.
            log.warning("outbox.release_failed", exc_info=True)
        self._unfinished.clear()

    def register(self, kind: str, resolver: DestinationResolver) -> None:
        """Deliver messages of ``kind``, resolving their destinations with ``resolver``."""
        self.resolvers.register(kind, resolver)
        self._wake.set()

    def notify(self) -> None:
        """Wake the loop now (e.g. after a commit that enqueued a message)."""
        self._wake.set()

    # --- work -----------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim one batch of due messages, deliver them all, and return how many."""
        messages = await self._claim(self.settings.outbox_batch)
        destinations = await self._destinations(messages)
        await asyncio.gather(
            *(self._deliver_one(message, destinations.get(message.id)) for message in messages)
        )
        return len(messages)

    async def _run_forever(self) -> None:
        errors = 0
        while not self._stopping:
            free = self.settings.outbox_concurrency - len(self._in_flight)
            if free <= 0:
                await asyncio.wait(set(self._in_flight), return_when=asyncio.FIRST_COMPLETED)
                continue
            wanted = min(free, self.settings.outbox_batch)
            try:
                messages = await self._claim(wanted)
            except Exception:
                # The database is unwell: log, back off, keep going.
                errors += 1
                log.exception("outbox.claim_failed", consecutive=errors)
                await self._idle(self._error_pause(errors))
                continue
            errors = 0
            if self._stopping:
                self._unfinished.update((message.id, message) for message in messages)
                return
            destinations = await self._destinations(messages)
            for message in messages:
                task = asyncio.create_task(
                    self._deliver_one(message, destinations.get(message.id)), name="webhook"
                )
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            if len(messages) < wanted:
                await self._refresh_backlog()
                await self._idle(self.settings.outbox_poll_seconds)

    def _error_pause(self, errors: int) -> float:
        ceiling = max(self.settings.outbox_poll_seconds, self.settings.outbox_backoff_max_seconds)
        return min(ceiling, self.settings.outbox_poll_seconds * 2 ** min(errors, 16))

    async def _idle(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    async def _claim(self, limit: int) -> list[ClaimedMessage]:
        if not self.resolvers.kinds:
            return []  # this process sends nothing: not even a session is opened
        lease = timedelta(seconds=self.settings.outbox_lease_seconds)
        async with unit_of_work(self.sessionmaker) as session:
            return await OutboxRepository(session).claim_due(
                now=utcnow(), lease=lease, limit=limit, kinds=self.resolvers.kinds.keys()
            )

    async def _destinations(self, messages: list[ClaimedMessage]) -> dict[str, Destination]:
        """Each message's destination, by message id; one lookup per source kind.

        A lookup that fails leaves its messages without one this time: they are
        retried (not failed), since the source may well still exist.
        """
        by_kind: defaultdict[str, set[str]] = defaultdict(set)
        for message in messages:
            by_kind[message.source_kind].add(message.source_id)
        found: dict[tuple[str, str], Destination] = {}
        for kind, source_ids in by_kind.items():
            resolve = self.resolvers.get(kind)
            try:
                if resolve is None:
                    raise LookupError(f"no resolver for {kind!r}")
                async with unit_of_work(self.sessionmaker) as session:
                    answer = await resolve(session, source_ids)
            except Exception:
                log.exception("outbox.resolve_failed", kind=kind)
                found.update(((kind, source_id), _LOOKUP_FAILED) for source_id in source_ids)
                continue
            found.update(((kind, key), value) for key, value in answer.items())
        return {
            message.id: destination
            for message in messages
            if (destination := found.get((message.source_kind, message.source_id))) is not None
        }

    async def _refresh_backlog(self) -> None:
        if not self.resolvers.kinds:
            return  # nothing is sent from this process: no query every poll
        try:
            async with unit_of_work(self.sessionmaker) as session:
                self._metrics.backlog.set(await OutboxRepository(session).backlog())
        except Exception:
            log.warning("outbox.backlog_unavailable", exc_info=True)

    async def _deliver_one(self, message: ClaimedMessage, destination: Destination | None) -> None:
        self._unfinished[message.id] = message
        async with self._semaphore:
            try:
                if destination is _LOOKUP_FAILED:
                    result = DeliveryResult("retry", "the destination could not be looked up")
                else:
                    result = await deliver(
                        message,
                        destination,
                        settings=self.settings,
                        http=self.http,
                        breakers=self.breakers,
                        resolver=self.resolver,
                    )
            except Exception as exc:
                # A bug or an unexpected library error: treat as a retry, never crash.
                log.exception("outbox.delivery_crashed", message_id=message.id)
                result = DeliveryResult("retry", f"internal error: {type(exc).__name__}")
            try:
                await self._record(message, result)
                del self._unfinished[message.id]
            except Exception:
                # The lease expires and the message is retried; nothing is lost.
                log.exception("outbox.record_failed", message_id=message.id)

    async def _record(self, message: ClaimedMessage, result: DeliveryResult) -> None:
        now = utcnow()
        outcome: str = result.outcome
        async with unit_of_work(self.sessionmaker) as session:
            repository = OutboxRepository(session)
            if result.outcome == "delivered":
                await repository.mark_delivered(message.id, now=now)
            elif result.outcome == "failed" or self._given_up(message, now):
                outcome = "failed"
                await repository.mark_failed(message, now=now, error=result.error or "")
            else:
                delay = backoff_seconds(
                    message.attempts,
                    base=self.settings.outbox_backoff_base_seconds,
                    maximum=self.settings.outbox_backoff_max_seconds,
                )
                await repository.schedule_retry(
                    message,
                    next_attempt_at=now + timedelta(seconds=delay),
                    error=result.error or result.outcome,
                )
        self._metrics.deliveries.labels(kind=message.source_kind, outcome=outcome).inc()
        log_event = log.info if outcome == "delivered" else log.warning
        log_event(
            "outbox.delivery",
            message_id=message.id,
            kind=message.source_kind,
            outcome=outcome,
            attempts=message.attempts,
            status=result.status,
            error=result.error,
        )

    def _given_up(self, message: ClaimedMessage, now: datetime) -> bool:
        age = (now - message.created_at).total_seconds()
        return age >= self.settings.outbox_give_up_after_seconds
