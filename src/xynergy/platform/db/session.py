"""One unit of work per request: commit on success, roll back on error.

Services only ``flush()``; the commit happens here, once, before the response is
sent (``scope="function"``), so a client never sees success for a write that then
fails to commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

__all__ = ["SessionDep", "get_session", "on_commit", "unit_of_work"]

_AFTER_COMMIT = "xynergy_after_commit"
# A cleanup outlives at most this many further cancellations of its caller (each one
# a deliberate task.cancel(), never a spin); past that it finishes on its own.
_CLEANUP_CANCELS_MAX = 64


def on_commit(session: AsyncSession, callback: Callable[[], Awaitable[None]]) -> None:
    """Run ``callback`` after ``session``'s unit of work commits (never on rollback).

    For side effects other processes must not see before the data is durable,
    such as broadcasting a key revocation.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session that commits when the block succeeds and rolls back otherwise."""
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            session.info.pop(_AFTER_COMMIT, None)
            # Run to its end even if the caller is cancelled (again) meanwhile: the
            # rollback returns the connection to the pool, whose reset a second
            # cancellation would cut (a task stopped at shutdown is cancelled by the
            # drain and by its own parent), logging "Exception during reset" and
            # throwing the connection away.
            await _to_completion(session.rollback())
            raise
        await session.commit()
        for callback in session.info.pop(_AFTER_COMMIT, []):
            await callback()


async def _to_completion(cleanup: Coroutine[Any, Any, None]) -> None:
    """Await ``cleanup`` in a task of its own until it ends, then re-raise any
    cancellation of the caller that arrived meanwhile (as SQLAlchemy's own session
    close does on exit)."""
    task = asyncio.create_task(cleanup, name="db-session-cleanup")
    cancelled: asyncio.CancelledError | None = None
    for _ in range(_CLEANUP_CANCELS_MAX):
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            if task.done():
                raise
            cancelled = exc
            continue
        except Exception:
            if cancelled is None:
                raise
            break  # the cancellation wins: the caller is being stopped anyway
        break
    if cancelled is not None:
        raise cancelled


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: the request's unit of work."""
    async with unit_of_work(request.app.state.platform.sessionmaker) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
