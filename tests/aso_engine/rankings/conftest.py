"""A running ASO Engine with two tenants, each holding keywords, for the rankings tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.helpers import auth, issue_key, running
from xynergy.aso_engine.app import create_aso_engine_app
from xynergy.aso_engine.config import AsoSettings
from xynergy.aso_engine.models import Keyword, RankingObservation
from xynergy.platform.config import Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.runtime import Platform

# The ASO default (6 h) set explicitly, as the platform cache reads namespace TTLs.
TRENDING_TTL = {"trending": 21600.0}
SCOPES = ("keywords:read", "keywords:write")


def today() -> date:
    return datetime.now(UTC).date()


def days_ago(days: int) -> str:
    return (today() - timedelta(days=days)).isoformat()


@dataclass
class Tenant:
    """A tenant's id and a key holding both keywords scopes."""

    id: str
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        return auth(self.secret)


@dataclass
class Aso:
    """A running ASO Engine: its client, platform and two tenants."""

    client: httpx.AsyncClient
    platform: Platform
    acme: Tenant
    globex: Tenant

    async def add_keyword(self, tenant: Tenant, phrase: str, locale: str = "en-US") -> str:
        """Insert a keyword row directly (not through the keywords API)."""
        async with unit_of_work(self.platform.sessionmaker) as session:
            keyword = Keyword(tenant_id=tenant.id, phrase=phrase, locale=locale, tags=[])
            session.add(keyword)
            await session.flush()
            return keyword.id

    async def record(self, tenant: Tenant, *observations: dict[str, Any]) -> httpx.Response:
        return await self.client.post(
            "/api/rankings", json={"observations": list(observations)}, headers=tenant.headers
        )

    async def ranking_count(self, **where: Any) -> int:
        query = select(func.count()).select_from(RankingObservation).filter_by(**where)
        async with self.platform.sessionmaker() as session:
            return int(await session.scalar(query) or 0)

    async def positions(self, keyword_id: str) -> list[tuple[str, str, date, int | None]]:
        query = (
            select(
                RankingObservation.engine,
                RankingObservation.locale,
                RankingObservation.observed_on,
                RankingObservation.position,
            )
            .where(RankingObservation.keyword_id == keyword_id)
            .order_by(RankingObservation.observed_on, RankingObservation.engine)
        )
        async with self.platform.sessionmaker() as session:
            return [tuple(row) for row in (await session.execute(query)).all()]  # type: ignore[misc]


def observation(
    keyword_id: str,
    position: int | None,
    observed_on: str | None = None,
    *,
    engine: str = "google",
    locale: str = "en-US",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "keyword_id": keyword_id,
        "engine": engine,
        "locale": locale,
        "position": position,
        "observed_on": observed_on or today().isoformat(),
        **extra,
    }


@asynccontextmanager
async def aso_engine(settings: Settings, aso: AsoSettings | None = None) -> AsyncIterator[Aso]:
    app = create_aso_engine_app(settings, aso=aso)
    async with running(app) as client:
        platform: Platform = app.state.platform
        acme_id, acme_key = await issue_key(platform, tenant="acme", scopes=SCOPES)
        globex_id, globex_key = await issue_key(platform, tenant="globex", scopes=SCOPES)
        yield Aso(
            client, platform, Tenant(acme_id, acme_key.secret), Tenant(globex_id, globex_key.secret)
        )


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(database_url=database_url, cache_ttls=TRENDING_TTL)


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[Aso]:
    async with aso_engine(settings) as running_engine:
        yield running_engine
