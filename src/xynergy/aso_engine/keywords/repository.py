"""All SQL for keywords."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, delete, exists, func, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.aso_engine.keywords.schemas import KeywordFilters
from xynergy.aso_engine.models import Keyword
from xynergy.platform.pagination import PageParams, keyset_page

__all__ = ["KeywordRepository"]

_UNIQUE_KEY = ("tenant_id", "phrase", "locale")
_TABLE = cast(Table, Keyword.__table__)


class KeywordRepository:
    """Queries over ``aso_keywords``; every one is filtered by tenant."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    async def get_for_tenant(self, keyword_id: str, tenant_id: str) -> Keyword | None:
        return await self.session.scalar(
            select(Keyword).where(Keyword.id == keyword_id, Keyword.tenant_id == tenant_id)
        )

    async def exists(self, tenant_id: str, phrase: str, locale: str) -> bool:
        query = select(
            exists().where(
                Keyword.tenant_id == tenant_id, Keyword.phrase == phrase, Keyword.locale == locale
            )
        )
        return bool(await self.session.scalar(query))

    async def add(self, keyword: Keyword) -> Keyword:
        self.session.add(keyword)
        await self.session.flush()
        return keyword

    async def delete_for_tenant(self, keyword_id: str, tenant_id: str) -> bool:
        """Delete one keyword; False when the tenant has no such keyword."""
        result = await self.session.execute(
            delete(Keyword)
            .where(Keyword.id == keyword_id, Keyword.tenant_id == tenant_id)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    def _has_tag(self, tag: str) -> ColumnElement[bool]:
        # tags is a JSON list; membership is spelled differently per database.
        if self.dialect == "postgresql":
            return sql_cast(Keyword.tags, JSONB).contains([tag])
        members = func.json_each(Keyword.tags).table_valued("value")
        return exists(select(members.c.value).where(members.c.value == tag))

    async def page_for_tenant(
        self, tenant_id: str, filters: KeywordFilters, params: PageParams
    ) -> Sequence[Keyword]:
        query = select(Keyword).where(Keyword.tenant_id == tenant_id)
        if filters.locale is not None:
            query = query.where(Keyword.locale == filters.locale)
        if filters.intent is not None:
            query = query.where(Keyword.intent == filters.intent)
        if filters.phrase_prefix:
            # autoescape: % and _ in the prefix match themselves.
            query = query.where(Keyword.phrase.startswith(filters.phrase_prefix, autoescape=True))
        if filters.tag is not None:
            query = query.where(self._has_tag(filters.tag))
        query = keyset_page(
            query, created_column=Keyword.created_at, id_column=Keyword.id, params=params
        )
        return (await self.session.scalars(query)).all()

    async def insert_ignoring_existing(
        self, rows: Sequence[dict[str, Any]], *, tenant_id: str, created_at: datetime
    ) -> set[str]:
        """Insert ``rows`` of ``tenant_id`` in one executemany; the ids actually inserted.

        ``tenant_id`` and the timestamps are bound once for the batch, not per row.

        A row whose (tenant, phrase, locale) exists already is skipped by the
        database (ON CONFLICT DO NOTHING), so no row is looked up first.
        """
        if not rows:
            return set()
        statement: postgresql.Insert | sqlite.Insert
        if self.dialect == "postgresql":
            statement = postgresql.insert(_TABLE)
        elif self.dialect == "sqlite":
            statement = sqlite.insert(_TABLE)
        else:
            raise NotImplementedError(f"bulk insert is not implemented for {self.dialect}")
        statement = statement.values(
            tenant_id=tenant_id, created_at=created_at, updated_at=created_at
        ).on_conflict_do_nothing(index_elements=list(_UNIQUE_KEY))
        # RETURNING with many parameter sets is SQLAlchemy's "insertmanyvalues":
        # multi-row INSERTs in pages; skipped rows return nothing.
        result = await self.session.execute(statement.returning(_TABLE.c.id), list(rows))
        return set(result.scalars())
