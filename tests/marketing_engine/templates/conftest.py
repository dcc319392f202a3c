"""Fixtures: the platform on SQLite and PostgreSQL (offline AI provider)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from tests.marketing_engine.campaigns.harness import MarketingApi, marketing_api
from xynergy.platform.config import Settings


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(database_url=database_url)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[MarketingApi]:
    async with marketing_api(settings) as running_api:
        yield running_api
