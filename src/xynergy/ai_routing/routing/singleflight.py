"""In-flight deduplication: identical concurrent requests share one upstream call.

A :class:`Flight` is one upstream call running in its own task. Its items (the
deltas of a stream, or the one answer of a whole call) are kept in order, so a
request that joins late replays them from the start and then follows live.
Callers only follow: a caller that goes away (client disconnect, cancellation)
stops following and takes nothing down with it; the call finishes for the others
and for the cache. Flights leave the map when they end, with or without error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Generic, TypeVar

from xynergy.platform.exceptions import UpstreamUnavailable

__all__ = ["Flight", "SingleFlight"]

T = TypeVar("T")


class Flight(Generic[T]):
    """The ordered items of one shared call, and how it ended."""

    def __init__(self, max_items: int) -> None:
        self._items: list[T] = []
        self._max_items = max_items
        self._changed = asyncio.Event()
        self._error: BaseException | None = None
        self.finished = False
        self.followers = 0

    def push(self, item: T) -> None:
        """Append an item and wake every follower."""
        if len(self._items) >= self._max_items:
            raise OverflowError("shared call produced more items than the buffer allows")
        self._items.append(item)
        self._wake()

    def finish(self, error: BaseException | None = None) -> None:
        """Mark the end; followers see ``error`` (if any) after the last item."""
        if not self.finished:
            self.finished = True
            self._error = error
            self._wake()

    def _wake(self) -> None:
        # A fresh event per change: followers woken by the old one re-check the
        # list, and nobody has to clear an event others may still be waiting on.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def follow(self) -> AsyncIterator[T]:
        """Every item from the first, live until the end; re-raises the call's error."""
        index = 0
        self.followers += 1
        try:
            while True:
                if index < len(self._items):
                    item = self._items[index]
                    index += 1
                    yield item
                    continue
                if self.finished:
                    if self._error is not None:
                        raise self._error
                    return
                await self._changed.wait()
        finally:
            self.followers -= 1


class SingleFlight(Generic[T]):
    """A bounded map of running flights by key."""

    def __init__(self, *, max_entries: int, max_items: int) -> None:
        self._flights: dict[str, Flight[T]] = {}
        # One task per running flight, discarded when done: as many as requests in flight.
        self._tasks: set[asyncio.Task[None]] = set()  # guard: allow XG005 one per flight
        self._max_entries = max_entries
        self._max_items = max_items

    def __len__(self) -> int:
        return len(self._flights)

    def join(
        self, key: str, producer: Callable[[Flight[T]], Coroutine[Any, Any, None]]
    ) -> tuple[Flight[T], bool]:
        """The running flight for ``key``, or a new one running ``producer``.

        Returns (flight, joined): ``joined`` is True when another request started it.
        Past ``max_entries`` the call runs unshared rather than grow the map.
        """
        running = self._flights.get(key)
        if running is not None and not running.finished:
            return running, True
        flight: Flight[T] = Flight(self._max_items)
        shared = len(self._flights) < self._max_entries
        if shared:
            self._flights[key] = flight
        task = asyncio.create_task(self._run(key, flight, producer, shared), name="ai-flight")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return flight, False

    async def _run(
        self,
        key: str,
        flight: Flight[T],
        producer: Callable[[Flight[T]], Coroutine[Any, Any, None]],
        shared: bool,
    ) -> None:
        try:
            await producer(flight)
            flight.finish()
        except asyncio.CancelledError:
            # Only shutdown cancels a flight; its followers get a clean 503.
            flight.finish(UpstreamUnavailable("The gateway is shutting down."))
            raise
        except Exception as exc:
            flight.finish(exc)
        finally:
            if shared and self._flights.get(key) is flight:
                del self._flights[key]

    async def close(self) -> None:
        """Cancel every running call (shutdown); their followers get a 503 error."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
