"""All SQL for ranking observations and trending keywords."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from sqlalchemy import Row, Table, and_, case, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.aso_engine.models import Keyword, RankingObservation
from xynergy.platform.db.upsert import dialect_insert
from xynergy.platform.exceptions import BadRequest

__all__ = [
    "HistoryFilters",
    "RankingRepository",
    "TrendingQuery",
    "decode_history_cursor",
    "encode_history_cursor",
]

_UPSERT_KEY = ("keyword_id", "engine", "locale", "observed_on")
_UPSERT_UPDATES = ("position", "url")


def encode_history_cursor(observed_on: date, row_id: str) -> str:
    """Opaque cursor for the history row ``(observed_on, row_id)``."""
    raw = json.dumps([observed_on.isoformat(), row_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_history_cursor(cursor: str) -> tuple[date, str]:
    """Inverse of :func:`encode_history_cursor`; raises BadRequest on anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(decoded, list) or len(decoded) != 2:
            raise ValueError("a cursor is a two-element list")
        observed, row_id = decoded
        if not isinstance(observed, str) or not isinstance(row_id, str):
            raise ValueError("cursor fields have the wrong types")
        return date.fromisoformat(observed), row_id
    except (ValueError, TypeError, binascii.Error) as exc:
        raise BadRequest("The cursor is not one this API issued.") from exc


@dataclass(frozen=True, slots=True)
class HistoryFilters:
    engine: str | None = None
    locale: str | None = None
    since: date | None = None


@dataclass(frozen=True, slots=True)
class TrendingQuery:
    """Which movements to rank: since ``start``, in ``direction``, at most ``limit``."""

    start: date
    improved: bool
    limit: int
    not_ranked_position: int
    engine: str | None = None
    locale: str | None = None


class RankingRepository:
    """Queries over ``aso_rankings`` (joined with ``aso_keywords`` for ownership)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def owned_keyword_ids(self, tenant_id: str, keyword_ids: Collection[str]) -> set[str]:
        """Which of ``keyword_ids`` belong to ``tenant_id`` (one query)."""
        rows = await self.session.scalars(
            select(Keyword.id).where(Keyword.tenant_id == tenant_id, Keyword.id.in_(keyword_ids))
        )
        return set(rows)

    async def upsert(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert observations; one already recorded for the same key is overwritten."""
        table = cast(Table, RankingObservation.__table__)
        insert = dialect_insert(self.session, table)
        statement = insert.on_conflict_do_update(
            index_elements=list(_UPSERT_KEY),
            set_={name: insert.excluded[name] for name in _UPSERT_UPDATES},
        )
        await self.session.execute(statement, list(rows))

    async def history_page(
        self,
        *,
        tenant_id: str,
        keyword_id: str,
        filters: HistoryFilters,
        limit: int,
        after: tuple[date, str] | None,
    ) -> Sequence[RankingObservation]:
        """Newest first, positioned after ``after``; one extra row tells if more exist."""
        observed, row_id = RankingObservation.observed_on, RankingObservation.id
        query = select(RankingObservation).where(
            RankingObservation.tenant_id == tenant_id,
            RankingObservation.keyword_id == keyword_id,
        )
        if filters.engine is not None:
            query = query.where(RankingObservation.engine == filters.engine)
        if filters.locale is not None:
            query = query.where(RankingObservation.locale == filters.locale)
        if filters.since is not None:
            query = query.where(observed >= filters.since)
        if after is not None:
            position = tuple_(literal(after[0], observed.type), literal(after[1], row_id.type))
            query = query.where(tuple_(observed, row_id) < position)
        query = query.order_by(observed.desc(), row_id.desc()).limit(limit + 1)
        return (await self.session.scalars(query)).all()

    async def keyword_exists(self, *, tenant_id: str, keyword_id: str) -> bool:
        found = await self.session.scalar(
            select(Keyword.id).where(Keyword.id == keyword_id, Keyword.tenant_id == tenant_id)
        )
        return found is not None

    async def trending(self, *, tenant_id: str, query: TrendingQuery) -> Sequence[Row[Any]]:
        """Per (keyword, engine, locale): first vs latest position since ``query.start``.

        One bounded scan of the tenant's observations in the window (index
        ``(tenant_id, observed_on)``), numbered from both ends per series.
        """
        obs = RankingObservation
        series = (obs.keyword_id, obs.engine, obs.locale)
        scan = select(
            *series,
            func.coalesce(obs.position, query.not_ranked_position).label("position"),
            func.row_number()
            .over(partition_by=series, order_by=obs.observed_on.asc())
            .label("from_start"),
            func.row_number()
            .over(partition_by=series, order_by=obs.observed_on.desc())
            .label("from_end"),
        ).where(obs.tenant_id == tenant_id, obs.observed_on >= query.start)
        if query.engine is not None:
            scan = scan.where(obs.engine == query.engine)
        if query.locale is not None:
            scan = scan.where(obs.locale == query.locale)
        numbered = scan.subquery("numbered")
        ends = (
            select(
                numbered.c.keyword_id,
                numbered.c.engine,
                numbered.c.locale,
                func.max(case((numbered.c.from_start == 1, numbered.c.position))).label("start"),
                func.max(case((numbered.c.from_end == 1, numbered.c.position))).label("latest"),
            )
            .where(or_(numbered.c.from_start == 1, numbered.c.from_end == 1))
            .group_by(numbered.c.keyword_id, numbered.c.engine, numbered.c.locale)
            .subquery("ends")
        )
        change = (ends.c.start - ends.c.latest).label("change")
        moved = change > 0 if query.improved else change < 0
        statement = (
            select(
                ends.c.keyword_id,
                Keyword.phrase,
                ends.c.locale,
                ends.c.engine,
                ends.c.start,
                ends.c.latest,
                change,
            )
            .join(Keyword, and_(Keyword.id == ends.c.keyword_id, Keyword.tenant_id == tenant_id))
            .where(moved)
            .order_by(
                change.desc() if query.improved else change.asc(),
                ends.c.keyword_id,
                ends.c.engine,
                ends.c.locale,
            )
            .limit(query.limit)
        )
        return (await self.session.execute(statement)).all()
