"""One unit of work per request: commit on success, roll back on error.

Services only ``flush()``; the commit happens here, once, before the response is
sent (``scope="function"``), so a client never sees success for a write that then
fails to commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

__all__ = ["SessionDep", "get_session", "on_commit", "unit_of_work"]

_AFTER_COMMIT = "xynergy_after_commit"


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
            await session.rollback()
            raise
        await session.commit()
        for callback in session.info.pop(_AFTER_COMMIT, []):
            await callback()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: the request's unit of work."""
    async with unit_of_work(request.app.state.platform.sessionmaker) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
