"""A running ASO Engine with keyword keys for two tenants, and helpers over its API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
import pytest
from sqlalchemy import func, select

from tests.aso_engine.api import TwoTenantApi, start_two_tenants
from tests.helpers import running
from xynergy.aso_engine.app import create_aso_engine_app
from xynergy.aso_engine.config import AsoSettings
from xynergy.aso_engine.models import Keyword
from xynergy.platform.config import Settings

KEYWORDS = "/api/keywords"
IMPORT = "/api/keywords/bulk-import"
READ_WRITE = ("keywords:read", "keywords:write")
CSV = {"Content-Type": "text/csv"}
NDJSON = {"Content-Type": "application/x-ndjson"}


@dataclass
class Api(TwoTenantApi):
    """The keywords API of a running ASO Engine."""

    collection: ClassVar[str] = KEYWORDS
    defaults: ClassVar[dict[str, Any]] = {"phrase": "running shoes", "locale": "en-US"}

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
        yield await start_two_tenants(Api, app, client, READ_WRITE)
