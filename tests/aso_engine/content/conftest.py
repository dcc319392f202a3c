"""A running ASO Engine with keys for two tenants, and helpers over its content API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from tests.helpers import auth, issue_key, running
from xynergy.aso_engine.app import create_aso_engine_app
from xynergy.aso_engine.models import ContentKeyword, ContentPiece
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform

CONTENT = "/api/content"
READ_WRITE = ("content:read", "content:write")


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
        body = {"title": "A title", "author": "ann", **fields}
        response = await self.client.post(CONTENT, json=body, headers=headers or self.headers)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def list_all(self, headers: dict[str, str] | None = None, **params: Any) -> list[Any]:
        """Every item of a list, walked two at a time."""
        items: list[Any] = []
        query: dict[str, Any] = {"limit": 2, **params}
        for _ in range(100):
            response = await self.client.get(CONTENT, params=query, headers=headers or self.headers)
            assert response.status_code == 200, response.text
            page = response.json()
            assert len(page["items"]) <= 2
            items.extend(page["items"])
            if page["next_cursor"] is None:
                return items
            query["cursor"] = page["next_cursor"]
        pytest.fail("pagination did not terminate")

    async def count(self, headers: dict[str, str] | None = None, **params: Any) -> int:
        response = await self.client.get(
            CONTENT + "/count", params=params, headers=headers or self.headers
        )
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"count"}
        return int(response.json()["count"])

    async def rows(self, **where: Any) -> int:
        """Content rows in the database matching ``where`` (all tenants)."""
        query = select(func.count()).select_from(ContentPiece).filter_by(**where)
        async with self.platform.sessionmaker() as session:
            return int(await session.scalar(query) or 0)

    async def stored(self, content_id: str) -> ContentPiece | None:
        async with self.platform.sessionmaker() as session:
            return await session.get(ContentPiece, content_id)

    async def keyword_rows(self, content_id: str) -> list[tuple[str, str]]:
        """(phrase, tenant_id) of a piece's keyword rows, sorted."""
        query = select(ContentKeyword.phrase, ContentKeyword.tenant_id).where(
            ContentKeyword.content_id == content_id
        )
        async with self.platform.sessionmaker() as session:
            return sorted((phrase, tenant) for phrase, tenant in await session.execute(query))


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(database_url=database_url)


async def started(app: FastAPI, client: httpx.AsyncClient) -> Api:
    platform: Platform = app.state.platform
    tenant_id, issued = await issue_key(platform, tenant="acme", scopes=READ_WRITE)
    other_id, other = await issue_key(platform, tenant="globex", scopes=READ_WRITE)
    return Api(app, client, platform, tenant_id, auth(issued.secret), other_id, auth(other.secret))


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    app = create_aso_engine_app(settings)
    async with running(app) as client:
        yield await started(app, client)
