"""Progress of runs, published as they happen, for live views (WebSocket, SSE).

In process only: the steps' records in the database are the truth, and a
watcher on another replica reads them; this bus lets a watcher on the replica
executing the run hear at once instead of at its next poll. Each subscriber has
a bounded queue; one that falls behind is dropped, never buffered without bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from xynergy.platform.logging import get_logger

__all__ = ["RunEvent", "RunEvents", "Subscription"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RunEvent:
    run_id: str
    type: str  # run.started, step.started, step.succeeded, step.failed, step.waiting, run.finished
    data: dict[str, Any]


@dataclass(slots=True)
class Subscription:
    queue: asyncio.Queue[RunEvent]
    dropped: bool = False


@dataclass(slots=True)
class RunEvents:
    """Subscribers by run id; each one's queue holds at most ``queue_size`` events."""

    queue_size: int = 256
    # guard: allow XG005 one entry per open live connection, bounded by the connection caps
    _subscribers: dict[str, set[int]] = field(default_factory=dict)
    # guard: allow XG005 same bound as above
    _subscriptions: dict[int, Subscription] = field(default_factory=dict)
    # Every event, whatever its run (metrics); one per app, added by code at start-up.
    _observers: list[Callable[[RunEvent], None]] = field(default_factory=list)

    def observe(self, observer: Callable[[RunEvent], None]) -> Callable[[], None]:
        """Call ``observer`` with every event (it must not block); returns its removal."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer) if observer in self._observers else None

    def publish(self, event: RunEvent) -> None:
        for observer in self._observers:
            try:
                observer(event)
            except Exception:
                # An observer (metrics) never breaks the run that published.
                log.exception("runtime.event_observer_failed", event=event.type)
        for key in self._subscribers.get(event.run_id, ()):
            subscription = self._subscriptions[key]
            if subscription.dropped:
                continue
            try:
                subscription.queue.put_nowait(event)
            except asyncio.QueueFull:
                # A slow consumer: it is told and closed by its connection's loop.
                subscription.dropped = True

    @contextmanager
    def subscribe(self, run_id: str) -> Iterator[Subscription]:
        subscription = Subscription(asyncio.Queue(self.queue_size))
        key = id(subscription)
        self._subscriptions[key] = subscription
        self._subscribers.setdefault(run_id, set()).add(key)
        try:
            yield subscription
        finally:
            self._subscriptions.pop(key, None)
            keys = self._subscribers.get(run_id)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._subscribers[run_id]

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)
