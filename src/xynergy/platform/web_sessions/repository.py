"""All SQL of browser sessions (``web_sessions``); every statement is bounded."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import cast

from sqlalchemy import CursorResult, Table, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform.web_sessions.models import WebSession

__all__ = ["WebSessionRepository"]


def _rowcount(result: object) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0


class WebSessionRepository:
    """Queries over ``web_sessions``."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: WebSession) -> None:
        """Insert ``row`` (its token hash is fresh: 256 random bits)."""
        self.session.add(row)
        await self.session.flush()

    async def get(self, token_hash: str) -> WebSession | None:
        """The session whose cookie token hashes to ``token_hash``."""
        return await self.session.get(WebSession, token_hash)

    async def delete(self, token_hash: str) -> bool:
        """Delete one session; whether it existed."""
        result = await self.session.execute(
            delete(WebSession).where(WebSession.token_hash == token_hash)
        )
        return _rowcount(result) > 0

    async def keep_newest_of_key(self, *, key_id: str, keep: int, limit: int) -> list[str]:
        """Delete ``key_id``'s sessions beyond its ``keep`` newest (at most ``limit``
        per call); the token hashes deleted."""
        beyond = (
            select(WebSession.token_hash)
            .where(WebSession.key_id == key_id)
            .order_by(WebSession.created_at.desc(), WebSession.token_hash.desc())
            .offset(keep)
            .limit(limit)
        )
        hashes = list((await self.session.scalars(beyond)).all())
        if hashes:
            await self.session.execute(delete(WebSession).where(WebSession.token_hash.in_(hashes)))
        return hashes

    async def purge_expired(self, *, now: datetime, limit: int) -> int:
        """Delete at most ``limit`` sessions expired at ``now``, oldest first; how many went."""
        expired = (
            select(WebSession.token_hash)
            .where(WebSession.expires_at <= now)
            .order_by(WebSession.expires_at)
            .limit(limit)
        )
        hashes = list((await self.session.scalars(expired)).all())
        if not hashes:
            return 0
        result = await self.session.execute(
            delete(WebSession).where(WebSession.token_hash.in_(hashes))
        )
        return _rowcount(result)

    async def record_last_seen(self, seen_at: Mapping[str, datetime]) -> None:
        """Write batched last-seen times in one executemany, never moving one backwards."""
        if not seen_at:
            return
        table = cast(Table, WebSession.__table__)
        statement = (
            update(table)
            .where(
                table.c.token_hash == bindparam("hash"),
                table.c.last_seen_at < bindparam("seen_at"),
            )
            .values(last_seen_at=bindparam("seen_at"))
        )
        await self.session.execute(
            statement,
            [{"hash": token_hash, "seen_at": moment} for token_hash, moment in seen_at.items()],
        )
