"""A running ASO Engine with keyword keys for two tenants, and helpers over its API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from tests.helpers import auth, issue_key, running
from xynergy.aso_engine.app import create_aso_engine_app
from xynergy.aso_engine.config import AsoSettings
from xynergy.aso_engine.models import Keyword
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform

KEYWORDS = "/api/keywords"
IMPORT = "/api/keywords/bulk-import"
READ_WRITE = ("keywords:read", "keywords:write")
CSV = {"Content-Type": "text/csv"}
NDJSON = {"Content-Type": "application/x-ndjson"}


@dataclass
class Api:
    """A running ASO Engine; ``headers`` act for tenant acme, ``other`` for tenant globex."""

    app: FastAPI
    client: httpx.AsyncClient
    platform: Platform
    tenant_id: str
    headers: dict[str, str]
    other_tenant_id: str
    other: dict[str, str]

    async def create(self, headers: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
        body = {"phrase": "running shoes", "locale": "en-US", **fields}
        response = await self.client.post(KEYWORDS, json=body, headers=headers or self.headers)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def list_all(self, headers: dict[str, str] | None = None, **params: Any) -> list[Any]:
        """Every item of a list, walked two at a time."""
        items: list[Any] = []
        query: dict[str, Any] = {"limit": 2, **params}
        for _ in range(200):
            response = await self.client.get(
                KEYWORDS, params=query, headers=headers or self.headers
            )
            assert response.status_code == 200, response.text
            page = response.json()
            assert len(page["items"]) <= 2
            items.extend(page["items"])
            if page["next_cursor"] is None:
                return items
            query["cursor"] = page["next_cursor"]
        pytest.fail("pagination did not terminate")

    async def import_file(
        self, content: Any, headers: dict[str, str] | None = None, **params: Any
    ) -> httpx.Response:
        return await self.client.post(
            IMPORT, content=content, params=params, headers={**self.headers, **(headers or CSV)}
        )

    async def stored(self, tenant_id: str | None = None) -> int:
        """Rows in aso_keywords for ``tenant_id`` (acme by default), counted in SQL."""
        query = (
            select(func.count())
            .select_from(Keyword)
            .where(Keyword.tenant_id == (tenant_id or self.tenant_id))
        )
        async with self.platform.sessionmaker() as session:
            return int(await session.scalar(query) or 0)

    async def phrases(self) -> set[tuple[str, str]]:
        query = select(Keyword.phrase, Keyword.locale).where(Keyword.tenant_id == self.tenant_id)
        async with self.platform.sessionmaker() as session:
            return {(phrase, locale) for phrase, locale in (await session.execute(query)).all()}


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(database_url=database_url)


@pytest.fixture
def aso_settings() -> AsoSettings:
    return AsoSettings()


@pytest.fixture
async def api(settings: Settings, aso_settings: AsoSettings) -> AsyncIterator[Api]:
    app = create_aso_engine_app(settings, aso=aso_settings)
    async with running(app) as client:
        platform: Platform = app.state.platform
        tenant_id, issued = await issue_key(platform, tenant="acme", scopes=READ_WRITE)
        other_id, other = await issue_key(platform, tenant="globex", scopes=READ_WRITE)
        yield Api(
            app, client, platform, tenant_id, auth(issued.secret), other_id, auth(other.secret)
        )
