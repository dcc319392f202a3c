"""A running ASO Engine with keys for two tenants, and helpers over its content API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from tests.aso_engine.api import TwoTenantApi, start_two_tenants
from tests.helpers import running
from xynergy.aso_engine.app import create_aso_engine_app
from xynergy.aso_engine.models import ContentKeyword, ContentPiece
from xynergy.platform.config import Settings

CONTENT = "/api/content"
READ_WRITE = ("content:read", "content:write")


@dataclass
class Api(TwoTenantApi):
    """The content API of a running ASO Engine."""

    collection: ClassVar[str] = CONTENT
    defaults: ClassVar[dict[str, Any]] = {"title": "A title", "author": "ann"}

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
    return await start_two_tenants(Api, app, client, READ_WRITE)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    app = create_aso_engine_app(settings)
    async with running(app) as client:
        yield await started(app, client)
