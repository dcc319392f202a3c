"""Fixtures: the platform on SQLite and PostgreSQL, and a local OpenAI-protocol upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.ai_routing.fakes import FakeOpenAI
from tests.ai_routing.gateway import http_model, write_catalogue
from tests.marketing_engine.campaigns.harness import MarketingApi, marketing_api
from xynergy.platform.config import Settings


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(database_url=database_url)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[MarketingApi]:
    """The platform with the AI Routing Engine's default, offline provider."""
    async with marketing_api(settings) as running_api:
        yield running_api


@pytest.fixture
async def upstream() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
async def upstream_api(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    upstream: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[MarketingApi]:
    """The platform whose AI Routing Engine routes every task to the local fake.

    The AI engine's own answer cache is off: a second identical request must be
    answered by the Marketing Engine's step cache, not by that one.
    """
    catalogue = write_catalogue(
        tmp_path / "catalogue.json",
        providers=[{"name": "fake", "kind": "openai", "base_url": upstream.base_url}],
        models=[http_model("m", "fake")],
    )
    monkeypatch.setenv("XYNERGY_AI_CATALOGUE", str(catalogue))
    monkeypatch.setenv("XYNERGY_AI_CACHE_ENABLED", "false")
    async with marketing_api(make_settings()) as running_api:
        yield running_api
