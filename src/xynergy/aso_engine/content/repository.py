"""All SQL for content pieces and their target keywords."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.aso_engine.content.schemas import ContentFilters
from xynergy.aso_engine.models import ContentKeyword, ContentPiece
from xynergy.platform.pagination import KeysetValue, PageParams, keyset_page, keyset_page_by

__all__ = ["PRIORITY_KEYSET", "ContentRepository"]

# The priority order: highest first, then newest; the id makes it total.
PRIORITY_KEYSET = (ContentPiece.priority_rank, ContentPiece.created_at, ContentPiece.id)


def _conditions(tenant_id: str, filters: ContentFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [ContentPiece.tenant_id == tenant_id]
    if filters.status is not None:
        conditions.append(ContentPiece.status == filters.status)
    if filters.priority is not None:
        conditions.append(ContentPiece.priority == filters.priority)
    if filters.updated_since is not None:
        conditions.append(ContentPiece.updated_at >= filters.updated_since)
    if filters.keyword is not None:
        conditions.append(
            exists().where(
                ContentKeyword.content_id == ContentPiece.id,
                ContentKeyword.tenant_id == tenant_id,
                ContentKeyword.phrase == filters.keyword,
            )
        )
    return conditions


class ContentRepository:
    """Queries over ``aso_content`` and ``aso_content_keywords``; every one is tenant-scoped."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, *, tenant_id: str, content_id: str) -> ContentPiece | None:
        return await self.session.scalar(
            select(ContentPiece).where(
                ContentPiece.id == content_id, ContentPiece.tenant_id == tenant_id
            )
        )

    async def add(self, piece: ContentPiece) -> ContentPiece:
        self.session.add(piece)
        await self.session.flush()
        await self._insert_keywords(piece)
        return piece

    async def replace_keywords(self, piece: ContentPiece) -> None:
        """Make the keyword rows match ``piece.target_keywords``."""
        await self.session.execute(
            delete(ContentKeyword).where(ContentKeyword.content_id == piece.id)
        )
        await self._insert_keywords(piece)

    async def _insert_keywords(self, piece: ContentPiece) -> None:
        if not piece.target_keywords:
            return
        rows = [
            {"content_id": piece.id, "phrase": phrase, "tenant_id": piece.tenant_id}
            for phrase in piece.target_keywords
        ]
        await self.session.execute(insert(ContentKeyword), rows)

    async def delete(self, piece: ContentPiece) -> None:
        # Explicit, not left to ON DELETE CASCADE: correct even where a database
        # connection runs without foreign-key enforcement.
        await self.session.execute(
            delete(ContentKeyword).where(ContentKeyword.content_id == piece.id)
        )
        await self.session.delete(piece)
        await self.session.flush()

    async def flush(self) -> None:
        await self.session.flush()

    async def page_by_created(
        self, *, tenant_id: str, filters: ContentFilters, params: PageParams
    ) -> Sequence[ContentPiece]:
        query = keyset_page(
            self._filtered(tenant_id, filters),
            created_column=ContentPiece.created_at,
            id_column=ContentPiece.id,
            params=params,
        )
        return (await self.session.scalars(query)).all()

    async def page_by_priority(
        self,
        *,
        tenant_id: str,
        filters: ContentFilters,
        after: Sequence[KeysetValue] | None,
        limit: int,
    ) -> Sequence[ContentPiece]:
        query = keyset_page_by(
            self._filtered(tenant_id, filters), columns=PRIORITY_KEYSET, after=after, limit=limit
        )
        return (await self.session.scalars(query)).all()

    async def count(self, *, tenant_id: str, filters: ContentFilters) -> int:
        query = (
            select(func.count()).select_from(ContentPiece).where(*_conditions(tenant_id, filters))
        )
        return int(await self.session.scalar(query) or 0)

    @staticmethod
    def _filtered(tenant_id: str, filters: ContentFilters) -> Select[Any]:
        return select(ContentPiece).where(*_conditions(tenant_id, filters))
