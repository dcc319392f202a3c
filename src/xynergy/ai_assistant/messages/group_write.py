"""Rows of many turns written in one transaction (a group commit).

A reply is stored after its model call. With many turns at once, one transaction
per reply (one SQLite write lock, one commit each) makes the writers queue in
SQLite's busy handler, which sleeps in growing steps. Rows waiting at the same
moment are written together instead: whichever turn takes the lock writes every
row queued while the previous group was committing. No background task: each
turn waits for the commit of its own row, so it reports only what is stored.

Each row is its own statement with its own result. If a group's transaction
fails, its rows are written again one transaction each, so a bad row fails its
own turn only. A group is committed even when the turn that started it is
cancelled (shutdown): the other turns in it are waiting for their rows.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.platform.db.session import unit_of_work
from xynergy.platform.exceptions import UpstreamUnavailable

__all__ = ["GroupWriter", "Job"]

T = TypeVar("T")
Job = Callable[[AsyncSession], Awaitable[T]]
_Entry = tuple[Job[Any], "asyncio.Future[Any]"]


class GroupWriter:
    """Runs write jobs in shared transactions of at most ``max_group`` jobs."""

    def __init__(self, max_group: int) -> None:
        self._max_group = max_group
        self._lock = asyncio.Lock()
        # One entry per turn in flight at most: TurnRunner.claim() bounds its callers.
        self._queue: deque[_Entry] = deque()  # guard: allow XG005 bounded by claim()

    async def write(self, sessionmaker: async_sessionmaker[AsyncSession], job: Job[T]) -> T:
        """``job``'s result once its transaction has committed (or its error)."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((job, future))
        while not future.done():
            async with self._lock:
                if future.done():
                    break
                group = [
                    self._queue.popleft() for _ in range(min(self._max_group, len(self._queue)))
                ]
                if group:
                    # Shielded: cancelling this turn must not strand the others' rows.
                    await asyncio.shield(
                        asyncio.create_task(
                            _commit(sessionmaker, group), name="assistant-group-commit"
                        )
                    )
        return future.result()


async def _commit(sessionmaker: async_sessionmaker[AsyncSession], group: list[_Entry]) -> None:
    try:
        async with unit_of_work(sessionmaker) as session:
            results = [await job(session) for job, _ in group]
    except Exception as exc:
        if len(group) == 1:
            _settle(group[0][1], error=exc)
            return
        for entry in group:
            await _commit(sessionmaker, [entry])
        return
    except BaseException:  # cancelled mid-commit: nobody may wait forever
        for _, future in group:
            _settle(future, error=UpstreamUnavailable("The row could not be stored."))
        raise
    for (_, future), result in zip(group, results, strict=True):
        _settle(future, result=result)


def _settle(
    future: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
