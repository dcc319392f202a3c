"""A bounded, batched, write-behind queue: rows written off the request path.

``record()`` is what a caller pays: an append to a bounded in-memory queue, no
I/O. A background task writes the queue in batches every ``flush_seconds``, or
as soon as ``batch_max`` items are waiting. Items leave the queue only once
written, so a failed write (database down) is retried by the next flush;
meanwhile the queue's bound holds and the overflow is dropped and counted,
never blocking a caller. Rows the database refuses (a deleted tenant's) are
isolated by halving the batch and dropped one by one, counted as ``refused``.

Lifted from the AI usage ledger's writer so the platform's rollups and the
ledger share one implementation of these rules.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from itertools import islice
from typing import Generic, TypeVar

from prometheus_client import Counter
from sqlalchemy.exc import DataError, IntegrityError

from xynergy.platform.logging import get_logger

__all__ = ["WriteBehind"]

log = get_logger(__name__)

T = TypeVar("T")

# Errors a retry cannot fix: the rows themselves are refused (e.g. their tenant
# was deleted). Anything else (connection lost, database locked) is retried.
_REFUSED_ROWS = (IntegrityError, DataError)


class WriteBehind(Generic[T]):
    """Queue items with :meth:`record`; a task writes them with ``write`` in batches."""

    def __init__(
        self,
        *,
        name: str,
        write: Callable[[list[T]], Awaitable[None]],
        dropped: Counter,
        queue_max: int,
        batch_max: int,
        flush_seconds: float,
    ) -> None:
        """Args:
        name: Names the task and prefixes log events (``<name>.dropping``).
        write: Writes one batch in one transaction; raises to keep it queued.
        dropped: A counter with one label, ``reason`` (queue_full, refused,
            unwritten_at_stop).
        queue_max: Items held at most; more are dropped and counted.
        batch_max: Items per write at most (and the size that wakes the task).
        flush_seconds: Longest an item waits before a write is tried.
        """
        self._name = name
        self._write = write
        self._dropped = dropped
        self._queue_max = queue_max
        self._batch_max = batch_max
        self._flush_seconds = flush_seconds
        self._pending: deque[T] = deque()  # guard: allow XG005 bounded by queue_max in record()
        self._dropping = False
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Items queued and not yet written."""
        return len(self._pending)

    def record(self, item: T) -> bool:
        """Queue ``item`` for writing; False (dropped and counted) when the queue is full."""
        pending = self._pending
        if len(pending) >= self._queue_max:
            self._dropped.labels(reason="queue_full").inc()
            if not self._dropping:
                # Once per burst: a full queue would otherwise log on every call.
                self._dropping = True
                log.warning(self._name + ".dropping", queued=len(pending))
            return False
        pending.append(item)
        if len(pending) >= self._batch_max:
            self._wake.set()
        return True

    def start(self) -> None:
        """Start the background writer."""
        if self._task is None:
            self._stopped.clear()
            self._task = asyncio.create_task(self._run(), name=self._name)

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
            log.error(self._name + ".unwritten_at_stop", items=len(self._pending))
            self._pending.clear()

    async def flush(self) -> int:
        """Write the items queued now, in batches; the number written.

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
                    slices.append(min(self._batch_max, unbatched))
                    unbatched -= slices[-1]
                size = slices.pop()
                batch = list(islice(self._pending, 0, size))
                try:
                    await self._write(batch)
                except _REFUSED_ROWS as exc:
                    if size > 1:
                        # Isolate the refused rows by halving; the front half next.
                        half = size // 2
                        slices += [size - half, half]
                        continue
                    self._dropped.labels(reason="refused").inc()
                    log.error(self._name + ".item_refused", error=repr(exc))
                except Exception as exc:
                    failed = True
                    log.warning(
                        self._name + ".write_failed", error=repr(exc), queued=len(self._pending)
                    )
                    break
                else:
                    written += size
                # Written (or refused): only now do the items leave the queue.
                for _ in range(size):
                    self._pending.popleft()
            if len(self._pending) < self._queue_max:
                self._dropping = False
            return written, failed

    async def _run(self) -> None:
        while not self._stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_seconds)
            self._wake.clear()
            if self._stopped.is_set():
                return  # stop() flushes what is left
            try:
                _written, failed = await self._flush()
            except Exception as exc:  # never let the writer die
                log.exception(self._name + ".flush_crashed", error=repr(exc))
                failed = True
            if failed:
                # Wait a full period before retrying rather than spin on a dead
                # database when the queue keeps filling; stop() cuts it short.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), self._flush_seconds)
