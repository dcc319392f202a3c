"""Identical concurrent calls share one computation (singleflight), within a bound.

The first caller of a key runs the computation; callers arriving while it runs
await the same result (or exception). The map holds only calls in flight, each
removed when it ends, and never more than ``max_in_flight``: past the bound a
caller computes on its own rather than grow the map. A caller that goes away
does not cancel the computation for the others (``asyncio.shield``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["SharedCalls"]

KeyT = TypeVar("KeyT", bound=Hashable)
ResultT = TypeVar("ResultT")


class SharedCalls(Generic[KeyT, ResultT]):
    """One computation per key at a time, shared by every concurrent caller."""

    def __init__(self, max_in_flight: int) -> None:
        self._max_in_flight = max_in_flight
        self._in_flight: dict[KeyT, asyncio.Future[ResultT]] = {}

    def __len__(self) -> int:
        return len(self._in_flight)

    async def run(self, key: KeyT, compute: Callable[[], Awaitable[ResultT]]) -> ResultT:
        """``compute()``'s result, shared with every caller of ``key`` meanwhile."""
        pending = self._in_flight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        if len(self._in_flight) >= self._max_in_flight:
            return await compute()
        future: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            result = await compute()
            future.set_result(result)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it; no "never retrieved" noise
            raise
        finally:
            self._in_flight.pop(key, None)
        return result
