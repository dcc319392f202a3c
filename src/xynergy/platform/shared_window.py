"""A result computed at most once per window, shared by every caller meanwhile.

Used by the readiness probe (platform/readiness.py) and the dashboard's status
(platform_dashboard/status/): callers within the window get the last result; the first
caller after it starts one computation in a task of its own, and everyone
arriving while it runs awaits that task (shielded: a caller that goes away does
not cancel it for the others). The state is one result and one task.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["SharedWindow", "Stamped"]

ResultT = TypeVar("ResultT")


@dataclass(frozen=True, slots=True)
class Stamped(Generic[ResultT]):
    """A result and when its computation finished (``time.monotonic()``)."""

    value: ResultT
    finished: float

    def age(self) -> float:
        """Seconds since the computation finished."""
        return max(0.0, time.monotonic() - self.finished)


class SharedWindow(Generic[ResultT]):
    """At most one computation per ``window_seconds``, shared by concurrent callers."""

    def __init__(self, *, window_seconds: float, task_name: str) -> None:
        self._window = window_seconds
        self._task_name = task_name
        self._last: Stamped[ResultT] | None = None
        self._in_flight: asyncio.Task[Stamped[ResultT]] | None = None

    async def current(self, compute: Callable[[], Awaitable[ResultT]]) -> Stamped[ResultT]:
        """The last result if younger than the window, else the (one) computation's."""
        last = self._last
        if last is not None and last.age() < self._window:
            return last
        if self._in_flight is None:
            self._in_flight = asyncio.create_task(self._run(compute), name=self._task_name)
        return await asyncio.shield(self._in_flight)

    async def _run(self, compute: Callable[[], Awaitable[ResultT]]) -> Stamped[ResultT]:
        try:
            value = await compute()
            result = Stamped(value, time.monotonic())
            self._last = result
            return result
        finally:
            self._in_flight = None

    async def close(self) -> None:
        """Cancel a computation still in flight (at shutdown)."""
        task, self._in_flight = self._in_flight, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
