"""Fixtures: the platform (SQLite and PostgreSQL) with the offline provider, or a local fake."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.ai_assistant.harness import AssistantApi, assistant_api
from tests.ai_routing.fakes import FakeOpenAI
from tests.ai_routing.gateway import http_model, write_catalogue
from xynergy.platform.config import Settings


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(database_url=database_url)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[AssistantApi]:
    """The platform with the AI Routing Engine's default, offline provider."""
    async with assistant_api(settings) as running_api:
        yield running_api


@pytest.fixture
async def upstream() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake_catalogue(tmp_path: Path, upstream: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every model call goes to the local fake, model ``m``."""
    catalogue = write_catalogue(
        tmp_path / "catalogue.json",
        providers=[{"name": "fake", "kind": "openai", "base_url": upstream.base_url}],
        models=[http_model("m", "fake")],
    )
    monkeypatch.setenv("XYNERGY_AI_CATALOGUE", str(catalogue))
    monkeypatch.setenv("XYNERGY_ASSISTANT_DEFAULT_MODEL", "m")


@pytest.fixture
async def upstream_api(
    make_settings: Callable[..., Settings], fake_catalogue: None
) -> AsyncIterator[AssistantApi]:
    """The platform whose AI Routing Engine answers through the local fake (SQLite)."""
    async with assistant_api(make_settings()) as running_api:
        yield running_api
